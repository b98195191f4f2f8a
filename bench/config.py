"""Durations and sizes of every section, full and --quick."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # 1. webhooks: open-loop steps until saturation, then a closed-loop run
    steps_rps: tuple[int, ...]
    step_seconds: float
    warmup_groups: int
    settle_seconds: float  # between steps: let the outbox catch up (bounded)
    closed_concurrency: int
    closed_seconds: float
    saturation_p99_ms: float  # a step whose p99 is above this counts as saturated
    # 2. time to page
    page_seconds: float
    page_wait_seconds: float
    # 3. escalation
    timers: int  # pending escalation timers in the database
    timers_due: int  # how many of them fall due during the window (the rest stay pending)
    idle_seconds: float
    timer_window_seconds: float
    timer_wait_seconds: float
    # 4. storm
    storm_alerts: int
    storm_groups: int
    storm_seconds: float
    storm_wait_seconds: float
    # 5. memory
    memory_incidents: int
    memory_traffic_seconds: float
    # 6. peer
    peer_seconds: float


FULL = Profile(
    name="full",
    steps_rps=(10, 25, 35, 50, 70, 100, 140, 200, 400, 800, 1600),
    step_seconds=10,
    warmup_groups=100,
    settle_seconds=15,
    closed_concurrency=16,
    closed_seconds=10,
    saturation_p99_ms=1000,
    page_seconds=20,
    page_wait_seconds=45,
    timers=10_000,
    timers_due=1_000,
    idle_seconds=30,
    timer_window_seconds=60,
    timer_wait_seconds=60,
    storm_alerts=10_000,
    storm_groups=500,
    storm_seconds=60,
    storm_wait_seconds=60,
    memory_incidents=10_000,
    memory_traffic_seconds=20,
    peer_seconds=15,
)

QUICK = Profile(
    name="quick",
    steps_rps=(10, 25, 50, 100, 200, 400),
    step_seconds=3,
    warmup_groups=30,
    settle_seconds=3,
    closed_concurrency=16,
    closed_seconds=3,
    saturation_p99_ms=1000,
    page_seconds=4,
    page_wait_seconds=20,
    timers=1_000,
    timers_due=200,
    idle_seconds=5,
    timer_window_seconds=10,
    timer_wait_seconds=30,
    storm_alerts=1_000,
    storm_groups=50,
    storm_seconds=10,
    storm_wait_seconds=30,
    memory_incidents=1_000,
    memory_traffic_seconds=4,
    peer_seconds=4,
)
