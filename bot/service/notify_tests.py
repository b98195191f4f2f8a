"""Use cases of test pages: `/oncall test-page` and `incidentbot notify-test <person> [--via X]`.

A test page is a `notification` row with no incident (`test_by` says who asked), one per method the
person has a way to be reached by. It carries an acknowledge link like a real page: acknowledging
it records `confirmed_at`, which proves the method end to end (the provider accepted it, the phone
showed it, the link came back to the bot).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.core.errors import BadInput
from bot.core.notify_rules import METHODS, contact_for
from bot.core.rotations import Person
from bot.core.text import escape
from bot.service.context import Context
from bot.store import outbox
from bot.store.db import transaction
from bot.store.tables import Notification


def person_by_slack(ctx: Context, user: str) -> Person | None:
    people = ctx.rotations.people.values() if ctx.rotations else ()
    return next((p for p in people if p.slack_id == user), None)


def methods_of(person: Person, via: str | None) -> list[str]:
    """Every method the person can be reached by, or just `via` (BadInput if they lack it)."""
    if via is not None:
        if via not in METHODS:
            raise BadInput(f"Unknown method {via!r} (known: {', '.join(METHODS)}).")
        if contact_for(person, via) is None:
            raise BadInput(f"{person.name} has no address for {via} in people.yaml.")
        return [via]
    return [m for m in METHODS if contact_for(person, m)]


def create(ctx: Context, person: Person, methods: list[str], by: str, *, queue: bool) -> list[Notification]:
    """The test rows (and with `queue`, their outbox rows: the worker sends them)."""
    now = ctx.clock()
    rows = []
    with transaction(ctx.engine) as session:
        for method in methods:
            n = Notification(
                person=person.name,
                method=method,
                address=contact_for(person, method) or "",
                created_at=now,
                test_by=by,
            )
            session.add(n)
            session.flush()
            if queue:
                outbox.enqueue(
                    session,
                    f"test:{n.id}",
                    "notify",
                    now,
                    {"notification_id": n.id, "retry_until": now.isoformat()},
                    priority=outbox.NORMAL,
                )
            rows.append(n)
        for n in rows:
            session.expunge(n)
    if queue:
        ctx.wake()
    return rows


def test_page(ctx: Context, user: str) -> str:
    """`/oncall test-page`: test every way the person who typed it can be reached."""
    person = person_by_slack(ctx, user)
    if person is None:
        return "You are not in rotations/people.yaml (by your Slack ID), so there is nothing to test."
    methods = methods_of(person, None)
    create(ctx, person, methods, f"slack:{user}", queue=True)
    names = ", ".join(methods)
    return (
        f"Sending a test page by {names}. Each provider's answer comes to you by DM; acknowledge "
        "each test where it reaches you to confirm that method end to end."
    )


def answered(session: Session, notification_id: int, answer: str, *, ok: bool, now: datetime) -> None:
    """Record what the provider said about a test; tell whoever asked in Slack."""
    n = session.get(Notification, notification_id)
    if n is None:
        return
    n.status, n.answer, n.done_at = ("sent" if ok else "failed"), answer, now
    session.add(n)
    if n.test_by and n.test_by.startswith("slack:"):
        user = n.test_by.removeprefix("slack:")
        head = ":white_check_mark:" if ok else ":x:"
        text = f"{head} Test page by {escape(n.method)}: {escape(answer)}"
        outbox.enqueue(session, f"dm:{user}", "dm", now, {"user": user, "text": text}, priority=outbox.NORMAL)


def confirm(ctx: Context, notification_id: int) -> tuple[bool, str]:
    """The test's acknowledge link was used: (first time, what to show)."""
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        n = session.get(Notification, notification_id)
        if n is None or not n.test_by:
            return False, "This test page is unknown."
        first = n.confirmed_at is None
        n.confirmed_at = n.confirmed_at or now
        session.add(n)
        text = f"The {n.method} test page reached {n.person}: this method works end to end."
        if first and n.test_by.startswith("slack:"):
            user = n.test_by.removeprefix("slack:")
            outbox.enqueue(
                session,
                f"dm:{user}",
                "dm",
                now,
                {"user": user, "text": f":tada: {escape(text)}"},
                priority=outbox.NORMAL,
            )
    if first:
        ctx.wake()
    return first, text
