"""The effective schedule as the service loads it: one query, overrides in force at the time asked
(a removed one until its removal), and rows that cannot be overrides left out instead of failing
the page that reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.rotations import on_call
from bot.service.oncall_schedule import effective, effective_rotation
from bot.store.db import reading, transaction
from bot.store.tables import OncallOverride
from tests.harness import FixedClock, service_context

T = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # platform (shipped): alex primary this week


def add(ctx, who: str, start: datetime, end: datetime, **fields) -> None:
    with transaction(ctx.engine) as s:
        s.add(OncallOverride(rotation="platform", layer="primary", who=who, starts_at=start, ends_at=end,
                             created_by="U0X", created_at=start, **fields))  # fmt: skip


def test_removed_overrides_count_until_their_removal(tmp_path) -> None:
    ctx = service_context(tmp_path, FixedClock(T))
    add(ctx, "david", T - timedelta(hours=2), T + timedelta(hours=6), removed_at=T, removed_by="slack:U0X")
    with reading(ctx.engine) as session:
        then = effective_rotation(ctx, session, "platform", T - timedelta(hours=1), T - timedelta(minutes=59))
        now = effective_rotation(ctx, session, "platform", T)
    assert on_call(then, "primary", T - timedelta(hours=1)).person == "david"
    assert on_call(now, "primary", T + timedelta(hours=1)).person == "alex"


def test_a_row_that_cannot_be_an_override_does_not_stop_anyone_reading(tmp_path) -> None:
    ctx = service_context(tmp_path, FixedClock(T))
    add(ctx, "david", T + timedelta(hours=6), T + timedelta(hours=1))  # ends before it starts
    add(ctx, "sarah", T, T + timedelta(hours=1))
    with reading(ctx.engine) as session:
        rotations = effective(ctx, session, None, T)
    assert on_call(rotations["platform"], "primary", T).person == "sarah"
    assert on_call(rotations["platform"], "primary", T + timedelta(hours=3)).person == "alex"
