"""The outbox claim's rules, straight against the store (SQLite and PostgreSQL), and the schema's
migrations against the models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event
from sqlmodel import Session, SQLModel, select

from bot.store import outbox
from bot.store.db import make_engine, transaction, upgrade
from bot.store.tables import Outbox

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def add(engine: Engine, *rows: tuple[str, str, int]) -> None:
    """(lane, op, priority) rows, enqueued in this order."""
    with transaction(engine) as session:
        for lane, op, prio in rows:
            outbox.enqueue(session, lane, op, NOW, priority=prio)


def claim(engine: Engine, limit: int = 8, **kw) -> list[tuple[str, str]]:
    with transaction(engine) as session:
        return [(r.lane, r.op) for r in outbox.claim(session, "me", NOW, limit, LEASE, **kw)]


def test_only_lane_heads_most_urgent_first(engine):
    add(
        engine,
        ("inc:1", "say", outbox.NORMAL),
        ("inc:1", "invite", outbox.NORMAL),  # waits for the say before it
        ("page:1", "page", outbox.PAGE),
        ("inc:2", "say", outbox.NORMAL),
    )
    assert claim(engine) == [("page:1", "page"), ("inc:1", "say"), ("inc:2", "say")]
    assert claim(engine) == []  # the rest of inc:1 waits for its leased head


def lanes(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(r.lane, r.op) for r in session.exec(select(Outbox).order_by(Outbox.id))]


def test_a_sync_enqueued_again_right_after_itself_in_one_transaction_is_one_row(engine):
    """Opening an incident asks for a card refresh several times; one row does it, and a sync
    after another call still moves behind that call."""
    statements: list[str] = []
    with transaction(engine) as session:
        outbox.enqueue(session, "inc:1", "sync", NOW, priority=outbox.COSMETIC)

        def seen(_conn, _cursor, statement, *_rest) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        outbox.enqueue(session, "inc:1", "sync", NOW, priority=outbox.COSMETIC)
        event.remove(engine, "before_cursor_execute", seen)
        assert statements == []  # not even the DELETE of the row before it
        outbox.enqueue(session, "inc:2", "sync", NOW, priority=outbox.COSMETIC)
        outbox.enqueue(session, "inc:1", "say", NOW)
        outbox.enqueue(session, "inc:1", "sync", NOW, priority=outbox.COSMETIC)
    assert lanes(engine) == [("inc:2", "sync"), ("inc:1", "say"), ("inc:1", "sync")]


def test_a_sync_undone_with_its_savepoint_is_enqueued_again(engine):
    with transaction(engine) as session:
        with pytest.raises(RuntimeError), session.begin_nested():
            outbox.enqueue(session, "inc:1", "sync", NOW, priority=outbox.COSMETIC)
            raise RuntimeError("this row failed")
        outbox.enqueue(session, "inc:1", "sync", NOW, priority=outbox.COSMETIC)
    assert lanes(engine) == [("inc:1", "sync")]


def test_a_lane_stays_in_order_when_a_later_row_is_more_urgent(engine):
    add(engine, ("inc:1", "sync", outbox.COSMETIC), ("inc:1", "create_channel", outbox.PAGE))
    assert claim(engine) == [("inc:1", "sync")]


def test_cosmetic_rows_wait_for_pages(engine):
    add(
        engine,
        ("page:1", "page", outbox.PAGE),
        ("inc:2", "say", outbox.NORMAL),
        ("inc:3", "sync", outbox.COSMETIC),
    )
    assert claim(engine) == [("page:1", "page"), ("inc:2", "say")]  # not beside a page
    assert claim(engine, pages_in_flight=True) == []  # nor while one is in flight
    assert claim(engine) == [("inc:3", "sync")]


def test_held_operations_are_not_claimed(engine):
    add(engine, ("page:1", "page", outbox.PAGE), ("inc:2", "pd_event", outbox.NORMAL))
    assert claim(engine, held_ops=frozenset({"page"})) == [("inc:2", "pd_event")]
    assert claim(engine) == [("page:1", "page")]


def test_claim_stays_cheap_behind_a_long_backlog(engine):
    """Thousands of lanes pending: the claim walks the ready index, it does not group them all."""
    add(engine, *[(f"inc:{i}", "say", outbox.NORMAL) for i in range(3000)])
    add(engine, ("page:9", "page", outbox.PAGE))
    assert claim(engine, limit=2) == [("page:9", "page"), ("inc:0", "say")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_migrations_match_the_models(engine):
    """A model change without its migration would leave deployed databases behind."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], diff


def test_a_round_records_its_deliveries_and_one_failing_completion_holds_up_no_other(engine):
    """Finished deliveries are settled together in the next round's transaction; when one row's
    completion raises, the others are still recorded and that row stays leased for a retry."""
    from bot.worker import Worker

    add(engine, ("inc:1", "good", outbox.NORMAL), ("inc:2", "bad", outbox.NORMAL))
    add(engine, ("inc:1", "after", outbox.NORMAL))  # claimable once its lane's head is settled
    delivered: list[str] = []

    def fails(session: Session) -> None:
        raise RuntimeError("a bug in a completion")

    async def handle(row: Outbox):
        delivered.append(row.op)
        return fails if row.op == "bad" else None

    worker = Worker(engine, {"good": handle, "bad": handle, "after": handle}, lambda: NOW)
    asyncio.run(worker.drain(5))
    assert sorted(delivered) == ["after", "bad", "good"]
    with transaction(engine) as session:
        rows = {row.op: row for row in session.exec(select(Outbox))}
    assert rows["good"].status == rows["after"].status == "sent"
    assert rows["bad"].status == "pending" and rows["bad"].lease_until is not None  # retried later


def test_a_page_committed_while_every_slot_is_busy_starts_at_once(engine):
    """Eight slow channel messages fill the worker's slots; a page committed meanwhile takes the one
    slot kept for pages instead of waiting for a message to finish. Nothing else gets that slot."""
    from bot.worker import Worker

    add(engine, *[(f"inc:{i}", "say", outbox.NORMAL) for i in range(9)])
    started: dict[str, float] = {}

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        release, eight, paged, everything = (asyncio.Event() for _ in range(4))

        def seen(row: Outbox) -> None:
            started[row.lane] = loop.time()
            for reached, count in ((eight, 8), (everything, 11)):
                if len(started) >= count:
                    reached.set()

        async def slow(row: Outbox):
            seen(row)
            await release.wait()

        async def page(row: Outbox):
            seen(row)
            paged.set()

        worker = Worker(engine, {"say": slow, "page": page}, lambda: NOW, concurrency=8)
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(eight.wait(), 10)
        add(engine, ("page:1", "page", outbox.PAGE), ("inc:99", "say", outbox.NORMAL))
        committed = loop.time()
        worker.wake()
        await asyncio.wait_for(paged.wait(), 5)
        assert started["page:1"] - committed < 1.0
        assert "inc:8" not in started and "inc:99" not in started  # the kept slot is for pages only
        release.set()
        await asyncio.wait_for(everything.wait(), 10)
        await worker.stop(1)
        running.cancel()

    asyncio.run(scenario())
    assert len(started) == 11


def test_a_new_incidents_page_goes_before_the_channel_work_of_earlier_incidents(tmp_path):
    """Found in a benchmark run with a backlog: every row of a new incident (its channel, card, pin,
    invite and channel line) had the page's priority, so a later incident's page was claimed only
    after the channel work of every incident before it."""
    from bot.core.alerts import Alert, Notification
    from bot.service import alertmanager
    from tests.harness import FixedClock, service_context

    ctx = service_context(tmp_path, FixedClock(NOW))

    def fire(group: int) -> None:
        labels = {"alertname": "ApiDown", "team": "platform", "shard": str(group)}
        alert = Alert(f"fp{group}", "firing", labels, {"summary": f"shard {group}"}, NOW, None)
        note = Notification("bot", "firing", f"g{group}", {"shard": str(group)}, labels, {}, "", (alert,))
        alertmanager.ingest(ctx, note)

    try:
        for group in range(4):
            fire(group)
        with transaction(ctx.engine) as session:
            first = [r.op for r in outbox.claim(session, "me", NOW, 4, LEASE)]
        assert first == ["page"] * 4
        with transaction(ctx.engine) as session:
            ops = {r.op for r in outbox.claim(session, "me", NOW, 8, LEASE)}
        assert {"create_channel"} <= ops <= {"create_channel", "announce"}
    finally:
        ctx.engine.dispose()
