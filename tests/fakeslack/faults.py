"""Fault injection rules: which calls to break, how, and for how long.

A fault is a JSON-friendly rule so tests in another process can install it over HTTP::

    {"method": "chat.postMessage", "mode": "ratelimit", "retry_after": 2, "count": 3}

``method`` is an fnmatch pattern ("*", "chat.*", "conversations.create"); ``channel``, if given, is one
for the call's ``channel`` argument ("D*": only posts into DMs). A rule fires for matching calls
after letting ``after`` of them through, at most ``count`` times, only within ``duration`` seconds of being
installed, and each time with ``probability`` (drawn from a per-rule seeded ``random.Random`` so a failing
chaos test replays identically). Without count/probability/duration it fires until cleared.

Modes: ``ratelimit`` (429 + Retry-After), ``error500`` (an HTTP ``status`` with ``error``), ``error``
(HTTP 200 ``{"ok": false, "error": ...}``: Slack refusing the request, e.g. ``restricted_action``),
``slow``, ``drop``, ``timeout``.
"""

from __future__ import annotations

import fnmatch
import random
import time
from dataclasses import dataclass, field
from typing import Any

MODES = ("ratelimit", "error500", "error", "slow", "drop", "timeout")
DEFAULT_DELAY = {"slow": 1.0, "timeout": 30.0}
_SPEC_KEYS = frozenset(
    {
        "method",
        "channel",
        "mode",
        "count",
        "probability",
        "duration",
        "after",
        "retry_after",
        "delay",
        "status",
        "error",
        "seed",
    }
)


@dataclass
class Fault:
    """One installed fault rule plus its bookkeeping (how often it matched and fired)."""

    method: str = "*"
    channel: str | None = None
    mode: str = "ratelimit"
    count: int | None = None
    probability: float | None = None
    duration: float | None = None
    after: int = 0
    retry_after: int = 1
    delay: float | None = None
    status: int = 500
    error: str = "internal_error"
    seed: int = 0
    id: int = 0
    installed_at: float = field(default_factory=time.monotonic)
    matched: int = 0
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}; expected one of {MODES}")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        if self.delay is None:
            self.delay = DEFAULT_DELAY.get(self.mode, 0.0)
        self._rng = random.Random(self.seed)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], *, fault_id: int) -> Fault:
        """Build from the admin JSON shape; unknown keys are an error so typos don't silently do nothing."""
        unknown = set(spec) - _SPEC_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        return cls(**spec, id=fault_id)

    def expired(self, now: float) -> bool:
        """True once the time box or the count is used up."""
        if self.duration is not None and now - self.installed_at > self.duration:
            return True
        return self.count is not None and self.fired >= self.count

    def fires_for(self, method: str, now: float, channel: str | None = None) -> bool:
        """Decide (and account) whether this rule breaks this call."""
        if not fnmatch.fnmatchcase(method, self.method) or self.expired(now):
            return False
        if self.channel is not None and not fnmatch.fnmatchcase(channel or "", self.channel):
            return False
        self.matched += 1
        if self.matched <= self.after:
            return False
        if self.probability is not None and self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the spec plus counters, as recorded on faulted calls and listed by the admin API."""
        return {
            "id": self.id,
            "method": self.method,
            "channel": self.channel,
            "mode": self.mode,
            "count": self.count,
            "probability": self.probability,
            "duration": self.duration,
            "after": self.after,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "status": self.status,
            "error": self.error,
            "seed": self.seed,
            "matched": self.matched,
            "fired": self.fired,
            "expired": self.expired(time.monotonic()),
        }


class FaultBook:
    """The ordered set of installed rules; the first rule that fires wins. Callers hold the fake's lock."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: dict[str, Any]) -> Fault:
        """Install a rule from its JSON spec."""
        fault = Fault.from_spec(spec, fault_id=self._next_id)
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> bool:
        """Uninstall one rule; False if it did not exist."""
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> None:
        """Uninstall all rules."""
        self._faults.clear()

    def take(self, method: str, channel: str | None = None) -> Fault | None:
        """The rule that breaks this call, if any (consumes one count/probability draw)."""
        now = time.monotonic()
        for fault in self._faults:
            if fault.fires_for(method, now, channel):
                return fault
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        """All installed rules in JSON form."""
        return [fault.to_dict() for fault in self._faults]
