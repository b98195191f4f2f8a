"""A severity change re-times the pending escalation step (found by audit: the timer kept the old
severity's due time, then several steps paged in one instant once it fired).

rotations/platform.yaml: steps at 0/15/30/60m, ack_timeout SEV1 5m, so SEV1 pages at 0/5/10/15m.
The clock advances minute by minute and the scheduler's `fire_due` runs at each, as the 1 s tick would.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.core.alerts import Alert, Notification
from bot.core.incident import Severity
from bot.service import alertmanager, lifecycle
from bot.service.context import Context, StormPolicy
from bot.service.declare import declare
from bot.service.timers import fire_due
from bot.store.db import reading
from bot.store.tables import Incident, Page
from tests.harness import FixedClock, service_context

T0 = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    ctx = service_context(tmp_path, FixedClock(T0), storm=StormPolicy(threshold=2))
    yield ctx
    ctx.engine.dispose()


def run_until(ctx: Context, minutes: int, start: int = 0) -> None:
    for m in range(start, minutes + 1):
        ctx.clock.t = T0 + timedelta(minutes=m)  # type: ignore[attr-defined]
        fire_due(ctx)


def paged_at(ctx: Context, incident_id: int = 1) -> dict[str, float]:
    """Step key -> minute it paged."""
    with reading(ctx.engine) as s:
        rows = s.exec(select(Page).where(col(Page.incident_id) == incident_id).order_by(col(Page.id)))
        return {p.step_key: (p.paged_at - T0) / timedelta(minutes=1) for p in rows}


def set_at(ctx: Context, minute: int, severity: Severity) -> None:
    ctx.clock.t = T0 + timedelta(minutes=minute)  # type: ignore[attr-defined]
    lifecycle.set_severity(ctx, 1, "slack:U0X", severity)


def test_declared_sev1_pages_at_sev1_pace(ctx: Context) -> None:
    declare(ctx, "U0X", "db down", Severity.SEV1, rotation="platform")
    run_until(ctx, 19)  # round 2 starts at 20m
    assert paged_at(ctx) == {"c0r0s0": 0, "c0r0s1": 5, "c0r0s2": 10, "c0r0s3": 15}


def test_raising_to_sev1_pages_the_next_step_at_the_new_pace(ctx: Context) -> None:
    declare(ctx, "U0X", "db down", Severity.SEV3, rotation="platform")
    run_until(ctx, 1)
    set_at(ctx, 1, Severity.SEV1)
    run_until(ctx, 19, start=1)
    assert paged_at(ctx) == {"c0r0s0": 0, "c0r0s1": 5, "c0r0s2": 10, "c0r0s3": 15}


def test_an_overdue_step_pages_alone_and_the_rest_keep_the_new_gaps(ctx: Context) -> None:
    declare(ctx, "U0X", "db down", Severity.SEV3, rotation="platform")
    run_until(ctx, 12)
    set_at(ctx, 12, Severity.SEV1)  # at SEV1's pace step 2 was due at 5m: it pages now, alone
    run_until(ctx, 26, start=12)
    assert paged_at(ctx) == {"c0r0s0": 0, "c0r0s1": 12, "c0r0s2": 17, "c0r0s3": 22}


def test_lowering_severity_slows_the_next_step(ctx: Context) -> None:
    declare(ctx, "U0X", "db down", Severity.SEV1, rotation="platform")
    run_until(ctx, 7)
    set_at(ctx, 7, Severity.SEV3)  # step 2 paged at 5m; step 3 now waits SEV3's 15m from it
    run_until(ctx, 21, start=7)
    assert paged_at(ctx) == {"c0r0s0": 0, "c0r0s1": 5, "c0r0s2": 20}


def test_a_storm_of_critical_groups_escalates_at_sev1_pace(ctx: Context) -> None:
    for i in range(3):  # threshold 2: the third group opens a storm (SEV3) and raises it to SEV1
        labels = {"alertname": "ApiDown", "team": "platform", "severity": "critical", "shard": str(i)}
        alert = Alert(f"fp{i}", "firing", labels, {"summary": f"api shard {i}"}, T0, None)
        alertmanager.ingest(
            ctx, Notification("bot", "firing", f"g{i}", {"shard": str(i)}, labels, {}, "", (alert,))
        )
    with reading(ctx.engine) as s:
        storm = s.exec(select(Incident).where(col(Incident.source) == "storm")).one()
    assert storm.severity == "SEV1" and storm.id is not None
    run_until(ctx, 11)
    assert paged_at(ctx, storm.id) == {"c0r0s0": 0, "c0r0s1": 5, "c0r0s2": 10}
