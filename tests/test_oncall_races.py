"""Issue 19: two overrides of one layer asked at the same moment. The use case locks the layer's
overrides (PostgreSQL: a transaction-level advisory lock; SQLite: its single writer) before it
checks for overlaps, so the second one waits for the first to commit, sees it and is refused.

Deterministic: the first transaction is held open while the second runs in a thread. With the lock
the second cannot finish before the first commits, whatever the timing; without it, it would read
no overlap and write a second override."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.catalog.rotations import load_rotations
from bot.core.errors import BadInput
from bot.core.oncall_changes import Actor
from bot.service import oncall_overrides
from bot.service.context import Context
from bot.store import oncall as store
from bot.store.db import make_engine, transaction, upgrade
from bot.store.tables import OncallOverride
from tests.test_flow_oncall import PEOPLE, PLATFORM

T0 = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


@pytest.fixture
def ctx(database_url, tmp_path):
    directory = tmp_path / "rotations"
    directory.mkdir()
    (directory / "people.yaml").write_text(PEOPLE)
    (directory / "platform.yaml").write_text(PLATFORM.format(channel="C0ONCALL", leads="S0LEADS"))
    catalog, problems = load_rotations(directory)
    assert catalog is not None, problems
    engine = make_engine(database_url)
    upgrade(engine)
    yield Context(engine=engine, clock=lambda: T0, rotations=catalog)
    engine.dispose()


def test_the_second_of_two_overlapping_overrides_waits_and_is_refused(ctx) -> None:
    outcome: dict[str, object] = {}

    def second() -> None:
        try:
            outcome["answer"] = oncall_overrides.override(
                ctx, Actor("U01MIKE", "mike"), "platform", None, "lisa", ["now", "for", "2h"]
            )
        except BadInput as exc:
            outcome["refused"] = str(exc)

    with transaction(ctx.engine) as first:
        store.lock_layer(first, "platform", "primary")
        first.add(
            OncallOverride(
                rotation="platform",
                layer="primary",
                who="david",
                starts_at=T0,
                ends_at=T0 + timedelta(hours=4),
                created_by="U01DAVID",
                created_at=T0,
            )
        )
        first.flush()
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(timeout=2)  # with the lock it is still waiting; the outcome is checked below
    racer.join(timeout=60)
    assert not racer.is_alive()
    assert "overlaps override #" in str(outcome.get("refused")), outcome
    with transaction(ctx.engine) as session:
        assert [o.who for o in session.exec(select(OncallOverride))] == ["david"]
