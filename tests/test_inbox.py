"""The inbox (issue 20, DESIGN rule 6 "Accept, then work"): a webhook is authenticated, validated
and stored as one inbox row, then answered 202 with the row's id; the drain applies rows in
arrival order per group, retries a failing row with backoff, parks it after 5 attempts (said once
in the announce channel, counted in /metrics, listed and retried by `incidentbot inbox`), and
deletes processed rows after INBOX_RETENTION. A crash before a batch commits loses nothing and
doubles nothing."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, func, select

from bot.service import inbox as drain
from bot.service.inbox import Applied
from bot.store import inbox
from bot.store.db import make_engine, transaction, upgrade
from bot.store.inbox_table import InboxRow
from bot.store.tables import Incident, Outbox
from tests.harness import (
    ROOT,
    FixedClock,
    inbox_row,
    post_alertmanager,
    processed,
    run_cli,
    wait_until,
)
from tests.test_flow_pagerduty import pd_event, post_pd

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager-0.25"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def firing(group: str = "g1", summary: str = "API error rate above 5%") -> dict[str, Any]:
    payload = json.loads((FIXTURES / "firing-single-alert.json").read_text())
    payload["groupKey"] = f'{{}}:{{alertname="{group}"}}'
    payload["commonAnnotations"]["summary"] = summary
    return payload


def resolved(payload: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    out["status"] = "resolved"
    for alert in out["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-11-22T23:50:00Z"
    return out


def rows(engine) -> list[InboxRow]:
    with Session(engine) as session:
        return list(session.exec(select(InboxRow).order_by(col(InboxRow.id))))


# -- accept ----------------------------------------------------------------------------------------
def test_a_webhook_is_answered_202_with_its_inbox_id_and_its_decision_is_recorded_on_the_row(start_bot):
    bot = start_bot()
    r = post_alertmanager(bot.url, firing())
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "accepted", "inbox": r.json()["inbox"]}
    first = processed(bot, r)
    assert first["status"] == "done" and first["decision"] == "first notification"
    assert (
        processed(bot, post_alertmanager(bot.url, firing()))["decision"] == "repeat or retry, nothing changed"
    )
    last = processed(bot, post_alertmanager(bot.url, resolved(firing())))
    assert last == {**last, "decision": "all alerts resolved", "incident": first["incident"]}
    stored = rows(bot.ctx.engine)
    assert [row.source for row in stored] == ["alertmanager"] * 3
    assert stored[0].group_key.endswith('|{}:{alertname="g1"}') and stored[0].payload["version"] == "4"
    assert len({row.lane for row in stored}) == 1 and all(row.done_at for row in stored)


def test_refused_requests_store_no_row(start_bot):
    """400/401/422 exactly as before: nothing reaches the inbox."""
    bot = start_bot()
    assert post_alertmanager(bot.url, firing(), token="wrong").status_code == 401
    assert post_alertmanager(bot.url, b"{not json").status_code == 400
    assert post_alertmanager(bot.url, {**firing(), "version": "3"}).status_code == 422
    assert post_pd(bot, pd_event("incident.triggered"), secret="wrong-secret").status_code == 401
    assert rows(bot.ctx.engine) == []


def test_a_pagerduty_redelivery_is_a_duplicate_at_insert(start_bot):
    """The same event.id, or the same X-Webhook-Id, is refused when it is stored: one row only."""
    bot = start_bot()
    first = post_pd(bot, pd_event("incident.triggered"), webhook_id="WH-1")
    assert first.status_code == 202, first.text
    assert processed(bot, first)["decision"] == "opened"
    again = post_pd(bot, pd_event("incident.triggered"), webhook_id="WH-2")
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    same_delivery = post_pd(bot, pd_event("incident.acknowledged", "01OTHEREVENT"), webhook_id="WH-1")
    assert same_delivery.status_code == 200 and same_delivery.json() == {"status": "duplicate"}
    assert [(row.source, row.decision) for row in rows(bot.ctx.engine)] == [("pagerduty", "opened")]
    ignored = pd_event("incident.triggered", "01IGNORED")
    ignored["event"]["event_type"] = "service.updated"
    r = post_pd(bot, ignored)
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    assert len(rows(bot.ctx.engine)) == 1


def test_503_while_the_database_cannot_take_the_row(start_bot, monkeypatch):
    bot = start_bot()

    def down(*args: Any, **kwargs: Any) -> int:
        raise OperationalError("INSERT INTO inbox", {}, Exception("connection refused"))

    monkeypatch.setattr(inbox, "accept", down)
    r = post_alertmanager(bot.url, firing())
    assert r.status_code == 503 and "retry later" in r.text
    assert post_pd(bot, pd_event("incident.triggered")).status_code == 503
    monkeypatch.undo()
    assert processed(bot, post_alertmanager(bot.url, firing()))["decision"] == "first notification"


# -- drain: order, batches, crashes ----------------------------------------------------------------
@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def accept(engine, group: str, n: int, at: datetime = NOW) -> list[int]:
    return [inbox.accept(engine, "test", group, {"group": group, "n": i}, at) for i in range(n)]


def test_rows_of_one_group_are_claimed_in_arrival_order_one_head_per_group(engine):
    a = accept(engine, "A", 3)
    b = accept(engine, "B", 2)
    with transaction(engine) as session:
        assert [r.id for r in inbox.claim(session, NOW, 10)] == [a[0], b[0]]
        session.rollback()
    order: list[tuple[str, int]] = []

    def record(ctx, session, row):
        order.append((row.group_key, row.payload["n"]))
        return Applied("seen", None, False)

    ctx = _ctx(engine)
    while drain.apply_batch(ctx, {"test": record}, 10).claimed:
        pass
    assert [n for g, n in order if g == "A"] == [0, 1, 2] and [n for g, n in order if g == "B"] == [0, 1]
    assert {row.status for row in rows(engine)} == {"done"}


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_replicas_share_the_inbox_and_never_take_a_later_row_of_a_group_another_holds(engine):
    """FOR UPDATE SKIP LOCKED: a second claimer passes over the heads the first one holds, and does
    not take the next row of those groups either (their head is still pending)."""
    a = accept(engine, "A", 2)
    b = accept(engine, "B", 1)
    with transaction(engine) as first:
        assert [r.id for r in inbox.claim(first, NOW, 1)] == [a[0]]
        with transaction(engine) as second:
            assert [r.id for r in inbox.claim(second, NOW, 10)] == [b[0]]
            second.rollback()
        first.rollback()


def _ctx(engine, clock=None, **fields: Any):
    from bot.service.context import Context

    return Context(engine=engine, clock=clock or FixedClock(NOW), **fields)


class Crash(BaseException):
    """A process dying mid-batch (not an Exception: no savepoint catches it)."""


def test_a_crash_in_the_middle_of_a_batch_loses_and_doubles_nothing(engine):
    accept(engine, "A", 1)
    accept(engine, "B", 1)
    applied: list[str] = []

    def crash_on_b(ctx, session, row):
        if row.group_key == "B":
            raise Crash
        session.add(Outbox(lane=row.group_key, op="say", payload={}, not_before=NOW, created_at=NOW))
        applied.append(row.group_key)
        return Applied("seen", None, True)

    with pytest.raises(Crash):
        drain.apply_batch(_ctx(engine), {"test": crash_on_b}, 10)
    assert {row.status for row in rows(engine)} == {"pending"}  # A's effect rolled back with it
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Outbox)).one() == 0

    def ok(ctx, session, row):
        session.add(Outbox(lane=row.group_key, op="say", payload={}, not_before=NOW, created_at=NOW))
        return Applied("seen", None, True)

    assert drain.apply_batch(_ctx(engine), {"test": ok}, 10).claimed == 2
    assert drain.apply_batch(_ctx(engine), {"test": ok}, 10).claimed == 0
    with Session(engine) as session:
        assert sorted(session.exec(select(Outbox.lane))) == ["A", "B"]


def test_a_row_that_raises_rolls_its_batch_back_once_and_the_rest_is_applied_row_by_row(engine):
    """Rows are applied without a savepoint each; one that raises undoes its whole batch, which is
    claimed again with a savepoint per row: the others are applied once, and the failing one alone
    waits for its retry."""
    for group in ("A", "B", "C"):
        accept(engine, group, 1)
    calls: list[str] = []

    def breaks_b(ctx, session, row):
        calls.append(row.group_key)
        session.add(Outbox(lane=row.group_key, op="say", payload={}, not_before=NOW, created_at=NOW))
        if row.group_key == "B":
            raise ValueError("cannot apply B")
        return Applied("alerts changed", None, True)

    done = drain.apply_batch(_ctx(engine), {"test": breaks_b}, 10, budget=60)  # a slow machine too
    assert calls == ["A", "B", "A", "B", "C"]  # the batch, then row by row
    assert [r.group_key for r, _ in done.applied] == ["A", "C"] and [r.group_key for r in done.failed] == [
        "B"
    ]
    assert {r.group_key: (r.status, r.attempts) for r in rows(engine)} == {
        "A": ("done", 0),
        "B": ("pending", 1),
        "C": ("done", 0),
    }
    with Session(engine) as session:
        assert sorted(session.exec(select(Outbox.lane))) == ["A", "C"]


def test_a_row_that_opens_an_incident_is_committed_at_once_and_counted_once_committed(engine):
    """Its page must not wait for the rest of the batch; /metrics counts the incident after the
    commit, so a batch that is rolled back and applied again counts nothing twice."""
    from bot.inbox_drain import InboxDrain
    from bot.observability import INCIDENTS_OPENED

    accept(engine, "A", 1)
    accept(engine, "B", 1)

    def opens_a(ctx, session, row):
        return Applied(
            "first notification" if row.group_key == "A" else "repeat", None, True, row.group_key == "A"
        )

    opened = INCIDENTS_OPENED.labels("test")
    before = opened._value.get()
    run = InboxDrain(_ctx(engine), appliers={"test": opens_a})
    assert asyncio.run(run.run_once()) == 1  # A alone, committed
    assert opened._value.get() - before == 1
    assert {r.group_key: r.status for r in rows(engine)} == {"A": "done", "B": "pending"}
    assert asyncio.run(run.run_once()) == 1
    assert opened._value.get() - before == 1


def test_a_notification_accepted_before_a_crash_is_processed_by_the_next_start(start_bot, database_url):
    """Accepted (the row committed, the 202 sent), then the process died before its drain ran:
    the next bot applies it at once."""
    engine = make_engine(database_url)
    upgrade(engine)
    payload = firing("crashed")
    row_id = inbox.accept(engine, "alertmanager", f"web|{payload['groupKey']}", payload, NOW)
    bot = start_bot()
    row = inbox_row(bot, row_id)
    assert row["decision"] == "first notification" and row["incident"]
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Incident)).one() == 1
    engine.dispose()


# -- failures: retried, then parked ----------------------------------------------------------------
def test_a_failing_row_is_retried_with_backoff_parked_after_5_attempts_said_once_and_retried_by_the_cli(
    engine, database_url, tmp_path
):
    clock = FixedClock(NOW)
    ctx = _ctx(engine, clock, announce_channel="C0ANNOUNCE")
    (bad,) = accept(engine, "A", 1)
    later = accept(engine, "A", 1)  # waits behind its group's failing head
    (other,) = accept(engine, "B", 1)
    failing = {"on": True}

    def flaky(ctx, session, row):
        if row.group_key == "A" and failing["on"]:
            session.add(Outbox(lane="x", op="say", payload={}, not_before=NOW, created_at=NOW))
            raise ValueError("cannot apply this")
        return Applied("seen", None, False)

    first = drain.apply_batch(ctx, {"test": flaky}, 10)
    assert [r.id for r in first.failed] == [bad] and [r.id for r, _ in first.applied] == [other]
    for _ in range(2, 6):
        assert drain.apply_batch(ctx, {"test": flaky}, 10).claimed == 0  # backing off
        clock.t += timedelta(minutes=10)
        assert [r.id for r in drain.apply_batch(ctx, {"test": flaky}, 10).failed] == [bad]
    row = inbox.get(engine, bad)
    assert row is not None and row.status == "parked" and row.attempts == 5
    assert row.last_error == "ValueError: cannot apply this"
    with Session(engine) as session:
        notices = list(session.exec(select(Outbox).where(col(Outbox.op) == drain.NOTICE_OP)))
        assert session.exec(select(func.count()).where(col(Outbox.op) == "say")).one() == 0
    assert len(notices) == 1 and f"incidentbot inbox retry {bad}" in notices[0].payload["text"]
    # Parked, it no longer holds its group up.
    failing["on"] = False
    assert [r.id for r, _ in drain.apply_batch(ctx, {"test": flaky}, 10).applied] == later

    from bot.observability import DatabaseLooks

    looks = DatabaseLooks()
    looks.refresh(engine, True, ())
    assert looks.inbox_parked == 1 and looks.inbox_pending == 0

    env = {"DATABASE_URL": database_url, "ROTATIONS_DIR": str(ROOT / "rotations")}
    listed = run_cli("inbox", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"{bad}  parked" in listed.stdout and "ValueError: cannot apply this" in listed.stdout
    assert run_cli("inbox", "retry", str(other), cwd=tmp_path, env=env).returncode == 1  # done, not parked
    retried = run_cli("inbox", "retry", str(bad), cwd=tmp_path, env=env)
    assert retried.returncode == 0, retried.stderr
    clock.t = datetime.now(UTC) + timedelta(seconds=1)
    assert [r.id for r, _ in drain.apply_batch(ctx, {"test": flaky}, 10).applied] == [bad]
    assert "no inbox rows" in run_cli("inbox", "list", cwd=tmp_path, env=env).stdout


def test_a_parked_webhook_is_said_once_in_the_announce_channel(start_bot, fake_slack, monkeypatch):
    from bot.service import alertmanager as use_case
    from bot.service import inbox as service

    fake = fake_slack.fake
    announce = fake.create_channel("incidents").id
    monkeypatch.setattr(service, "backoff", lambda attempts: 0.05)

    def broken(ctx, session, note):
        raise RuntimeError("a bug in the use case")

    monkeypatch.setattr(use_case, "apply", broken)
    bot = start_bot(incident_announce_channel=announce)
    row = processed(bot, post_alertmanager(bot.url, firing()))
    assert row["status"] == "parked"

    def said() -> list[str]:
        return [m.get("text", "") for m in fake.messages(announce) if "parked" in m.get("text", "")]

    texts = wait_until(said, 15, what="the parked notice")
    assert f"inbox {row['inbox']}" in texts[0] and "RuntimeError: a bug in the use case" in texts[0]
    metrics = httpx.get(f"{bot.url}/metrics", timeout=10).text
    assert "incidentbot_inbox_parked 1.0" in metrics
    assert len(said()) == 1


# -- observability and retention -------------------------------------------------------------------
def test_metrics_show_the_inbox_depth_and_the_age_of_the_oldest_unprocessed_row(engine):
    from bot.observability import DatabaseLooks

    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    accept(engine, "A", 2, an_hour_ago)
    accept(engine, "B", 1, datetime.now(UTC))
    looks = DatabaseLooks()
    looks.refresh(engine, True, ())
    assert looks.inbox_pending == 3 and 3590 < looks.inbox_oldest_seconds < 3700


def test_processed_rows_are_deleted_after_the_retention_in_small_batches(engine):
    ctx = _ctx(engine, FixedClock(NOW))
    accept(engine, "A", 7)

    def seen(ctx, session, row):
        return Applied("seen", None, False)

    while drain.apply_batch(ctx, {"test": seen}, 10).claimed:
        pass
    accept(engine, "A", 1)  # still pending: kept whatever its age
    assert inbox.prune(engine, NOW, batch=3) == 0  # processed at NOW: not older than the cut
    assert inbox.prune(engine, NOW + timedelta(seconds=1), batch=3) == 7
    assert [row.status for row in rows(engine)] == ["pending"]


def test_inbox_retention_is_a_setting_and_housekeeping_uses_it(engine, tmp_path):
    import asyncio

    from bot.scheduler import Scheduler
    from bot.settings import Settings

    assert Settings(_env_file=None).inbox_retention == "7d"
    clock = FixedClock(NOW)
    ctx = _ctx(engine, clock)
    accept(engine, "A", 2)
    while drain.apply_batch(ctx, {"test": lambda c, s, r: Applied("seen")}, 10).claimed:
        pass
    clock.t = NOW + timedelta(days=2)

    async def housekeeping(retention: timedelta) -> None:
        await Scheduler(ctx, 1.0, retention).housekeeping()

    asyncio.run(housekeeping(timedelta(days=3)))
    assert len(rows(engine)) == 2
    asyncio.run(housekeeping(timedelta(days=1)))
    assert rows(engine) == []


def test_a_new_row_wakes_the_drain_at_once(start_bot):
    """With a 30 s poll, a notification is still applied at once: storing it wakes the drain."""
    bot = start_bot()
    bot.app.state.inbox.poll_seconds = 30
    time.sleep(1.5)  # the wait begun with the old poll is over
    assert processed(bot, post_alertmanager(bot.url, firing()), timeout=3)["decision"] == "first notification"
