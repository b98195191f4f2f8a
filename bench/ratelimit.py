"""Slack-like rate limits in front of the fake Slack (the fake itself has no such mode).

Web API methods are limited per workspace by tier (calls per minute, with a short burst);
chat.postMessage is limited to about one message per second per channel. A call over the limit
gets HTTP 429 with `Retry-After` and never reaches the fake, like Slack. Every 429 is kept, with
whether it arrived while an earlier Retry-After for the same bucket was still running (the
client ignored the advice: "unhandled").

Sources: api.slack.com/docs/rate-limits (tiers 1-4: 1+, 20+, 50+, 100+ per minute;
chat.postMessage: 1 per second per channel, short bursts allowed).
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIER = {
    "conversations.create": 2,
    "conversations.setTopic": 2,
    "conversations.list": 2,
    "pins.add": 2,
    "conversations.open": 3,
    "conversations.invite": 3,
    "conversations.history": 3,
    "conversations.info": 3,
    "chat.update": 3,
    "users.lookupByEmail": 3,
    "users.info": 4,
    "auth.test": 4,
}
POST_PER_SECOND_PER_CHANNEL = 1.0
POST_BURST = 3.0


@dataclass
class Bucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    updated: float
    penalty_until: float = 0.0

    def take(self, now: float) -> float:
        """0 if a call may proceed now, else the seconds to wait for the next token."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class Limiter:
    buckets: dict[str, Bucket] = field(default_factory=dict)
    limited: list[dict[str, Any]] = field(default_factory=list)
    allowed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _bucket(self, key: str, rate: float, capacity: float, now: float) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(rate, capacity, capacity, now)
        return bucket

    def check(self, method: str, channel: str | None) -> int | None:
        """None to let the call through, else the Retry-After seconds to answer with."""
        now = time.monotonic()
        if method == "chat.postMessage" and channel:
            key, rate, cap = f"post:{channel}", POST_PER_SECOND_PER_CHANNEL, POST_BURST
        elif method in METHOD_TIER:
            per_minute = TIER_PER_MINUTE[METHOD_TIER[method]]
            # Slack allows short bursts over the per-minute figure; a sixth of a minute's worth.
            key, rate, cap = method, per_minute / 60.0, max(1.0, per_minute / 6)
        else:
            return None
        with self.lock:
            bucket = self._bucket(key, rate, cap, now)
            wait = bucket.take(now)
            if wait == 0:
                self.allowed += 1
                return None
            retry_after = max(1, math.ceil(wait))
            self.limited.append(
                {
                    "method": method,
                    "bucket": key,
                    "wall": time.time(),
                    "retry_after": retry_after,
                    "ignored_previous": now < bucket.penalty_until,
                }
            )
            bucket.penalty_until = max(bucket.penalty_until, now + retry_after)
            return retry_after

    def report(self) -> dict[str, Any]:
        with self.lock:
            by_method: dict[str, int] = {}
            for item in self.limited:
                by_method[item["method"]] = by_method.get(item["method"], 0) + 1
            return {
                "allowed": self.allowed,
                "limited": len(self.limited),
                "limited_by_method": by_method,
                "ignored_retry_after": sum(1 for i in self.limited if i["ignored_previous"]),
            }


def _channel_of(body: bytes, content_type: str) -> str | None:
    try:
        if content_type.startswith("application/json"):
            data = json.loads(body or b"{}")
            return str(data.get("channel")) if isinstance(data, dict) and data.get("channel") else None
        return dict(parse_qsl(body.decode())).get("channel")
    except (ValueError, UnicodeDecodeError):
        return None


class RateLimited:
    """ASGI wrapper: Slack-like 429s on `/api/<method>`, a report at `GET /_bench/ratelimits`."""

    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/_bench/ratelimits":
            await _json(send, 200, self.limiter.report())
            return
        if not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode()
        retry_after = self.limiter.check(path[5:], _channel_of(body, content_type))
        if retry_after is not None:
            await _json(send, 429, {"ok": False, "error": "ratelimited"}, retry_after)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _json(send: Send, status: int, data: Any, retry_after: int | None = None) -> None:
    raw = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
