"""Resolving a storm by hand resolves the groups it holds (found by audit: they stayed open under the
resolved storm, and a new alert firing in one paged nobody). A plain incident is the control: once
resolved, a new alert in its group opens a new incident that pages."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.core.alerts import Alert, Notification
from bot.service import alertmanager, responders
from bot.service.context import Context, StormPolicy
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


def note(group: int, *fps: str) -> Notification:
    alerts = tuple(
        Alert(
            fp,
            "firing",
            {"alertname": "ApiDown", "team": "platform", "shard": str(group), "fp": fp},
            {"summary": f"api shard {group}"},
            T0,
            None,
        )
        for fp in fps
    )
    common = {"alertname": "ApiDown", "team": "platform", "shard": str(group)}
    return Notification("bot", "firing", f"g{group}", {"shard": str(group)}, common, {}, "", alerts)


def page_count(ctx: Context, group: int, storm_id: int) -> int:
    """Pages for any incident of the group, or for the storm that holds it."""
    with reading(ctx.engine) as s:
        ids = set(s.exec(select(Incident.id).where(col(Incident.group_key) == f"bot|g{group}"))) | {storm_id}
        return len([p for p in s.exec(select(Page)) if p.incident_id in ids])


@pytest.mark.parametrize("folded", [False, True])
def test_new_alert_after_a_person_resolved_pages_again(ctx: Context, folded: bool) -> None:
    for i in range(3):  # with threshold 2 the third group folds into a storm
        alertmanager.ingest(ctx, note(i, f"a{i}"))
    with reading(ctx.engine) as s:
        target = s.exec(select(Incident).where(col(Incident.group_key) == "bot|g2")).one()
        storm = s.exec(select(Incident).where(col(Incident.source) == "storm")).one()
        plain = s.exec(select(Incident).where(col(Incident.group_key) == "bot|g0")).one()
    assert target.parent_id == storm.id
    group = 2 if folded else 0
    ctx.clock.t = T0 + timedelta(minutes=2)  # type: ignore[attr-defined]
    responders.resolve(ctx, storm.id if folded else plain.id, "slack:U01ALEX", "looks fixed")
    before = page_count(ctx, group, storm.id)

    # 20 minutes later a NEW alert fires in that group (the old one never resolved).
    ctx.clock.t = T0 + timedelta(minutes=20)  # type: ignore[attr-defined]
    result = alertmanager.ingest(ctx, note(group, f"a{group}", f"new{group}"))
    fire_due(ctx)
    decision = result.reason.value
    assert page_count(ctx, group, storm.id) > before, f"new firing alert paged nobody ({decision})"
