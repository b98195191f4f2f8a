"""Pace Slack Web API calls to Slack's published rate-limit tiers, so a storm is sent at the speed
Slack accepts instead of being answered with 429s.

Token buckets per method (per channel for chat.postMessage, about one a second with short
bursts). A 429 blocks its bucket for Retry-After so other lanes wait too. The pacing is per
process; with several replicas Slack's 429s (honoured by the outbox) remain the backstop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

# Calls per minute by Slack's tiers (Tier 2 = 20+/min, Tier 3 = 50+/min, Tier 4 = 100+/min).
PER_MINUTE = {
    "conversations.create": 20,
    "conversations.setTopic": 20,
    "conversations.archive": 20,
    "conversations.list": 20,
    "pins.add": 20,
    "files_upload_v2": 20,
    "usergroups.list": 20,
    "usergroups.users.list": 20,
    "usergroups.users.update": 20,
    "files.info": 50,
    "conversations.invite": 50,
    "conversations.open": 50,
    "conversations.history": 50,
    "conversations.replies": 50,
    "chat.update": 50,
    "users.lookupByEmail": 50,
    "chat.postEphemeral": 100,
    "views.open": 100,
}
POST_PER_SECOND = 1.0  # chat.postMessage, per channel
POST_BURST = 3
# Slack tolerates short bursts over a tier's per-minute figure; we allow a sixth of a minute's worth.
BURST_SHARE = 1 / 6
# Pace a little under the tiers: calls reserved in order can reach Slack out of order or closer
# together than they were reserved (one slow, the next fast), and Slack counts arrivals.
HEADROOM = 0.9
# A call that would wait longer than this is not held (it would hold a worker slot and outlive its
# lease): the outbox row is retried when the budget allows instead.
MAX_WAIT = 2.0


@dataclass
class _Bucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    stamp: float
    blocked_until: float = 0.0

    def reserve(self, now: float, max_wait: float) -> float:
        """Take a token and return the seconds to wait before using it; or, when that is longer
        than `max_wait`, take nothing and return the (negative) seconds until one is free."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        wait = max(0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate, self.blocked_until - now)
        if wait > max_wait:
            return -wait
        self.tokens -= 1
        return wait


class Pacer:
    def __init__(self, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.scale = scale
        self.clock = clock
        self.buckets: dict[str, _Bucket] = {}

    def _bucket(self, method: str, channel: str | None) -> _Bucket | None:
        if method == "chat.postMessage":
            key, rate, burst = f"{method}:{channel}", POST_PER_SECOND * self.scale, POST_BURST * self.scale
        elif method in PER_MINUTE:
            per_minute = PER_MINUTE[method] * self.scale * HEADROOM
            key, rate, burst = method, per_minute / 60.0, max(1.0, per_minute * BURST_SHARE)
        else:
            return None
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(rate, float(burst), float(burst), self.clock())
        return bucket

    async def wait(self, method: str, channel: str | None = None, max_wait: float = MAX_WAIT) -> float:
        """Wait for the budget; a negative result means "not now, try again in that many seconds"
        (nothing was waited for or taken)."""
        bucket = self._bucket(method, channel)
        if bucket is None:
            return 0.0
        delay = bucket.reserve(self.clock(), max_wait)
        if delay > 0:
            blocked_before = bucket.blocked_until
            await asyncio.sleep(delay)
            # A 429 that came back while we slept (another call's) blocks the bucket anew: honour
            # its Retry-After too rather than be the next 429.
            blocked = bucket.blocked_until - self.clock()
            if bucket.blocked_until > blocked_before and blocked > 0:
                if blocked > max_wait:
                    return -blocked
                await asyncio.sleep(blocked)
                delay += blocked
        return delay

    def rate_limited(self, method: str, channel: str | None, retry_after: float) -> None:
        bucket = self._bucket(method, channel)
        if bucket is not None:
            bucket.blocked_until = max(bucket.blocked_until, self.clock() + retry_after)
