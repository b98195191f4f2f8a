"""Who PagerDuty has on call, cached for a minute: paging asks per step, PagerDuty rate-limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.core.pagerduty import OnCallEntry
from bot.integrations.pagerduty import PagerDutyCallError


class OnCallSource(Protocol):
    def oncalls(
        self, schedule_id: str | None = None, escalation_policy_id: str | None = None
    ) -> list[OnCallEntry]: ...


@dataclass(frozen=True)
class _Cached:
    entries: tuple[OnCallEntry, ...]
    fetched_at: float


class OnCallCache:
    """Who is on call per (schedule, escalation policy), fetched at most once per `ttl` seconds.

    If PagerDuty can't be reached (a recoverable error) the last known answer is returned with
    `stale=True` rather than nothing: an old on-call list beats none in an incident. A non-recoverable
    error (bad token, unknown schedule) is raised, since a stale answer would hide the misconfiguration.
    """

    def __init__(
        self, client: OnCallSource, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str | None, str | None], _Cached] = {}
        self._lock = threading.Lock()

    def get(
        self, schedule_id: str | None = None, escalation_policy_id: str | None = None
    ) -> tuple[list[OnCallEntry], bool]:
        """`(entries, stale)`."""
        key = (schedule_id, escalation_policy_id)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached.fetched_at < self._ttl:
            return list(cached.entries), False
        try:
            entries = self._client.oncalls(schedule_id=schedule_id, escalation_policy_id=escalation_policy_id)
        except PagerDutyCallError as exc:
            if cached is None or not exc.recoverable:
                raise
            return list(cached.entries), True
        with self._lock:
            self._cache[key] = _Cached(tuple(entries), now)
        return list(entries), False

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
