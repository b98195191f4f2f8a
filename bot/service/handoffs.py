"""Use cases: handoff notices and user-group sync at each shift change (issue 19, items 3 and 4).

Each layer of a file rotation keeps one pending `handoff` timer (its next handoff, see
`core.handoffs.due_handoff`) and, with notices on, a `handoff_reminder` timer before it. Both are
rows keyed `handoff:<rotation>:<layer>:<instant>` (`reminder:…`) and added once per key
(`store.timers.add_once`), so replicas and restarts plan each one once; the tick claims them with
SKIP LOCKED and fires each in the transaction that enqueues its messages (outbox), so each notice
is sent once. Firing re-reads the effective schedule: a handoff an override has since removed is
dropped, and the person actually on call (overrides included) is told. Then the next one is planned.

Planned when: the bot starts (`start`), a handoff fires (the next one), the schedule changes from
Slack (`schedule_changed` -> `replan`, from just before now: an override starting now is a handoff).
User groups (`slack_usergroup:`) are re-synced at each of those moments, whatever HANDOFF_NOTICES.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.core.handoffs import (
    HANDOFF_KIND,
    LATE,
    REMINDER_KIND,
    channel_text,
    due_handoff,
    handoff_at,
    handoff_key,
    incoming_text,
    is_handoff,
    next_handoff,
    outgoing_text,
    reminder_due,
    reminder_key,
    reminder_text,
)
from bot.core.rotations import Rotation
from bot.service.context import Context
from bot.service.handoff_summary import summary
from bot.service.oncall_overrides import person_text
from bot.service.oncall_schedule import effective_rotation
from bot.store import oncall as oncall_store
from bot.store import outbox, timers
from bot.store.db import transaction
from bot.store.tables import Timer

log = logging.getLogger(__name__)

KINDS = frozenset({HANDOFF_KIND, REMINDER_KIND})
DM_OP, POST_OP, SYNC_OP = "oncall_dm", "handoff_post", "usergroup_sync"
LOOK_BACK = timedelta(days=14)  # overrides older than this do not matter to a handoff now
_TICK = timedelta(microseconds=1)
# Planning and firing take this advisory lock (PostgreSQL) before any key lock, so two of them
# (replicas, a tick and an override) wait for each other instead of deadlocking on key locks.
SERIAL = "handoffs"


def lane(rotation: str, layer: str) -> str:
    return f"handoff:{rotation}:{layer}"


def group_lane(group: str) -> str:
    return f"usergroup:{group}"


def _tracked(ctx: Context, name: str) -> Rotation | None:
    """The file rotation `name` when it has handoffs to act on (notices on, or a user group)."""
    catalog = ctx.rotations
    rotation = catalog.rotations.get(name) if catalog else None
    if rotation is None or rotation.source != "file":
        return None
    return rotation if ctx.handoff_notices or rotation.slack_usergroups else None


def start(ctx: Context) -> None:
    """At start: plan every layer's next handoff, and sync every user group once (a group edited
    by hand is repaired). Idempotent, so every replica may run it."""
    if ctx.rotations is None or not any(_tracked(ctx, name) for name in ctx.rotations.rotations):
        return  # nothing to plan: no write transaction at all
    now = ctx.clock()
    try:
        with transaction(ctx.engine) as session:
            timers.lock_key(session, SERIAL)
            for name in ctx.rotations.rotations:
                rotation = _tracked(ctx, name)
                if rotation is not None:
                    plan(ctx, session, name, rotation.layers, now, now)
                    sync_groups(session, rotation, rotation.layers, now)
    except Exception:  # never stops the start: the next change or restart plans again
        log.exception("could not plan the handoffs at start")
        return
    ctx.wake()


def replan(ctx: Context, session: Session, name: str, now: datetime) -> None:
    """The on-call of `name` changed (in this transaction): plan from just before now, sync groups."""
    rotation = _tracked(ctx, name)
    if rotation is None:
        return
    timers.lock_key(session, SERIAL)
    plan(ctx, session, name, rotation.layers, now - _TICK, now)
    sync_groups(session, rotation, rotation.layers, now)


def plan(
    ctx: Context, session: Session, name: str, layers: Iterable[str], after: datetime, now: datetime
) -> None:
    rotation = effective_rotation(ctx, session, name, min(after, now) - LOOK_BACK)
    for layer in layers:
        at = due_handoff(rotation, layer, after, now)
        if at is None:
            continue
        payload = {"rotation": name, "layer": layer, "at": at.isoformat()}
        timers.add_once(session, HANDOFF_KIND, handoff_key(name, layer, at), at, payload)
        remind = reminder_due(at, rotation.handoff_reminder, now) if ctx.handoff_notices else None
        if remind is not None:
            timers.add_once(session, REMINDER_KIND, reminder_key(name, layer, at), remind, payload)


def sync_groups(session: Session, rotation: Rotation, layers: Iterable[str], now: datetime) -> None:
    """Enqueue a sync of each user group holding one of `layers` (coalesced per group)."""
    wanted = set(layers)
    for group, held in rotation.slack_usergroups.items():
        if wanted & set(held):
            outbox.enqueue(
                session, group_lane(group), SYNC_OP, now, {"group": group, "rotation": rotation.name}
            )


def on_timer(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    timers.lock_key(session, SERIAL)
    if timers.fired_before(session, timer):
        timer.status = "cancelled"
        return
    name, layer = str(timer.payload.get("rotation")), str(timer.payload.get("layer"))
    at = datetime.fromisoformat(str(timer.payload.get("at")))
    base = _tracked(ctx, name)
    if base is None or layer not in base.layers:
        return  # the files changed (or notices were turned off) since it was planned
    rotation = effective_rotation(ctx, session, name, min(at, now) - LOOK_BACK)
    if timer.kind == REMINDER_KIND:
        if ctx.handoff_notices and at > now and is_handoff(rotation, layer, at):
            _remind(ctx, session, rotation, layer, at, late=now - timer.due_at > LATE, now=now)
        return
    later = next_handoff(rotation, layer, at)
    if is_handoff(rotation, layer, at) and (later is None or later > now):
        _hand_over(ctx, session, rotation, layer, at, now)
    else:
        log.info("handoff of %s %s at %s no longer happens (or a later one did)", name, layer, at)
    sync_groups(session, base, [layer], now)
    plan(ctx, session, name, [layer], at, now)


def _hand_over(
    ctx: Context, session: Session, rotation: Rotation, layer: str, at: datetime, now: datetime
) -> None:
    h = handoff_at(rotation, layer, at)
    late = now - at > LATE
    oncall_store.audit(
        session,
        now,
        "bot",
        "handoff",
        rotation.name,
        layer,
        f"{h.outgoing} -> {h.incoming}" + (" (announced late)" if late else ""),
        {"at": at.isoformat(), "from": h.outgoing, "to": h.incoming, "late": late},
    )
    if not ctx.handoff_notices:
        return
    people = ctx.rotations.people if ctx.rotations else {}
    zone, where = rotation.timezone, lane(rotation.name, layer)
    incoming, outgoing = people.get(h.incoming), people.get(h.outgoing)
    done = summary(ctx, session, rotation.name, h.outgoing, h.outgoing_since, at)
    _dm(session, where, h.incoming, incoming_text(h, incoming, zone, late), now)
    _dm(session, where, h.outgoing, outgoing_text(h, done, outgoing, zone, late), now)
    if rotation.channel:
        text = channel_text(h, person_text(ctx, h.incoming), person_text(ctx, h.outgoing), zone, late)
        outbox.enqueue(session, where, POST_OP, now, {"channel": rotation.channel, "text": text})


def _remind(
    ctx: Context, session: Session, rotation: Rotation, layer: str, at: datetime, *, late: bool, now: datetime
) -> None:
    h = handoff_at(rotation, layer, at)
    person = ctx.rotations.people.get(h.incoming) if ctx.rotations else None
    _dm(
        session,
        lane(rotation.name, layer),
        h.incoming,
        reminder_text(h, person, rotation.timezone, late),
        now,
    )


def _dm(session: Session, where: str, person: str, text: str, now: datetime) -> None:
    outbox.enqueue(session, where, DM_OP, now, {"person": person, "text": text})
