"""Load generators: open-loop (fixed arrival rate) and closed-loop (N clients back to back).

Open loop measures latency from each request's *scheduled* send time, so a server that falls
behind is charged for the queueing it causes (no coordinated omission). Bodies are rendered
before the run so the generator spends its CPU on sending, not on JSON.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.payloads import Kind, Request
from bench.stats import summary_ms

MAX_CONNECTIONS = 256  # open-loop cap on concurrent requests (requests beyond it queue here)
REQUEST_TIMEOUT = 30.0


@dataclass
class Sample:
    kind: Kind
    tag: str
    scheduled: float  # time.time() the request was due to be sent
    sent: float  # time.time() just before it was written
    latency: float  # seconds from `scheduled` to the complete answer
    status: int  # HTTP status, 0 for a client-side error


@dataclass
class LoadResult:
    mode: str
    offered_rps: float | None
    duration: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if 200 <= s.status < 300]

    @property
    def span(self) -> float:
        """From the first scheduled send to the last answer (>= duration when answers straggle)."""
        if not self.samples:
            return self.duration
        first = min(s.scheduled for s in self.samples)
        last = max(s.scheduled + s.latency for s in self.samples)
        return max(self.duration, last - first)

    @property
    def achieved_rps(self) -> float:
        """Answered OK per second over the span: a backlog that drains late does not count as kept up."""
        return len(self.ok) / self.span if self.span else 0.0

    def summary(self) -> dict[str, Any]:
        errors: dict[str, int] = {}
        for s in self.samples:
            if not 200 <= s.status < 300:
                errors[str(s.status)] = errors.get(str(s.status), 0) + 1
        return {
            "mode": self.mode,
            "offered_rps": self.offered_rps,
            "achieved_rps": round(self.achieved_rps, 1),
            "duration_s": round(self.duration, 2),
            "span_s": round(self.span, 2),
            "requests": len(self.samples),
            "errors": errors,
            "latency": summary_ms([s.latency for s in self.ok]),
        }


class Target:
    """Where and how to send: URL and headers (bearer token for incidentbot; none for alerta)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"


async def _send(session: aiohttp.ClientSession, target: Target, req: Request, scheduled: float) -> Sample:
    sent = time.time()
    status = 0
    try:
        async with session.post(target.url, data=req.body, headers=target.headers) as resp:
            status = resp.status
            await resp.read()
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    return Sample(req.kind, req.tag, scheduled, sent, time.time() - scheduled, status)


def _session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))


async def scheduled(
    target: Target, items: Sequence[tuple[float, Request]], offered: float | None
) -> LoadResult:
    """Send each request at its offset (seconds from start), whatever the answers do."""
    async with _session(MAX_CONNECTIONS) as session:
        start = time.time() + 0.05
        tasks: list[asyncio.Task[Sample]] = []
        for offset, req in sorted(items, key=lambda item: item[0]):
            due = start + offset
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(session, target, req, due)))
        samples = list(await asyncio.gather(*tasks))
    duration = max((offset for offset, _ in items), default=0.0)
    if offered:
        duration = len(items) / offered
    return LoadResult("open", offered, duration, samples)


async def open_loop(target: Target, requests: Sequence[Request], rate: float) -> LoadResult:
    """Send `requests` at `rate` per second (evenly spaced); duration = len(requests) / rate."""
    return await scheduled(target, [(i / rate, req) for i, req in enumerate(requests)], rate)


async def closed_loop(
    target: Target, requests: Sequence[Request], concurrency: int, duration: float
) -> LoadResult:
    """`concurrency` clients each sending back to back for `duration` seconds (or until out of bodies)."""
    samples: list[Sample] = []
    it = iter(requests)
    async with _session(concurrency) as session:
        start = time.time()
        stop_at = start + duration

        async def client() -> None:
            while time.time() < stop_at:
                req = next(it, None)
                if req is None:
                    return
                samples.append(await _send(session, target, req, time.time()))

        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.time() - start
    return LoadResult(f"closed-{concurrency}", None, elapsed, samples)


async def warm_up(target: Target, requests: Sequence[Request], concurrency: int = 4) -> LoadResult:
    """Send bodies with a few clients (e.g. to create the groups that repeats will hit)."""
    return await closed_loop(target, requests, concurrency, duration=600)
