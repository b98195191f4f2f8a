"""Use cases: overrides from Slack (`/oncall override`, the Remove button) and their listing.

Each change is one transaction: the layer's overrides are locked (`store.oncall.lock_layer`), the
permission (`core.oncall_changes`) and the overlap rule are checked against what is stored now, the
override rows and an audit row are written, and `schedule_changed` runs. The permission is first
checked outside the write transaction too, so a user-group lookup (Slack) never holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.core.errors import BadInput
from bot.core.oncall_changes import Actor, Why, place, require_allowed
from bot.core.rotations import Rotation
from bot.core.schedule import covered_people
from bot.core.text import escape
from bot.core.when import Span, check_span, local_text, parse_when, slack_date
from bot.service.context import Context
from bot.service.oncall_schedule import effective, effective_rotation, file_rotation, schedule_changed
from bot.service.responders import Answer
from bot.store import oncall as store
from bot.store.db import reading, transaction
from bot.store.tables import OncallOverride

REASON_MAX = 300


@dataclass(frozen=True)
class OverrideView:
    """One override for `/oncall overrides`: from Slack (`id`, removable) or from the file."""

    id: int | None
    rotation: str
    layer: str
    who: str
    start: datetime
    end: datetime
    zone: ZoneInfo
    reason: str = ""
    created_by: str | None = None


def person_text(ctx: Context, name: str) -> str:
    """A mention when the person has a Slack ID in people.yaml, else their name (escaped)."""
    person = ctx.rotations.people.get(name) if ctx.rotations else None
    if person is not None and person.slack_id:
        return f"<@{person.slack_id}>"
    return escape(person.display_name if person and person.display_name else name)


def pick_layer(rotation: Rotation, layer: str | None) -> str:
    if layer is None:
        return "primary" if "primary" in rotation.layers else next(iter(rotation.layers))
    if layer not in rotation.layers:
        known = ", ".join(rotation.layers)
        raise BadInput(f"Rotation {rotation.name} has no layer {escape(repr(layer))}. Layers: {known}.")
    return layer


def span_of(rotation: Rotation, words: list[str], now: datetime) -> tuple[Span, str]:
    """`<when>` in the rotation's zone, checked, and the words after it (a reason)."""
    zone = ZoneInfo(rotation.timezone)
    span, rest = parse_when(words, now, zone)
    return check_span(span, now, zone), " ".join(rest)[:REASON_MAX]


def allowed(ctx: Context, rotation: Rotation, actor: Actor, taker: str, covered: list[str]) -> Why:
    return require_allowed(
        actor,
        rotation.name,
        taker=taker,
        covered=covered,
        rotation_admins=rotation.admins,
        admins=ctx.incident_admins,
        in_group=ctx.in_user_group,
    )


def override(
    ctx: Context, actor: Actor, rotation_name: str, layer_name: str | None, who: str, words: list[str]
) -> Answer:
    rotation = file_rotation(ctx, rotation_name)
    layer = pick_layer(rotation, layer_name)
    assert ctx.rotations is not None
    if who not in ctx.rotations.people:
        raise BadInput(f"{escape(who)} is not in people.yaml, so the bot cannot put them on call.")
    now = ctx.clock()
    span, reason = span_of(rotation, words, now)
    with reading(ctx.engine) as session:  # Slack may be asked about user groups: not under the lock
        before = effective_rotation(ctx, session, rotation.name, now)
    allowed(ctx, rotation, actor, who, covered_people(before, layer, span.start, span.end))
    with transaction(ctx.engine) as session:
        store.lock_layer(session, rotation.name, layer)
        current = effective_rotation(ctx, session, rotation.name, now)
        covered = covered_people(current, layer, span.start, span.end)
        why = allowed(ctx, rotation, actor, who, covered)
        row, replaced = add(ctx, session, actor, rotation, layer, who, span, now, reason=reason, why=why)
    zone = ZoneInfo(rotation.timezone)
    instead = [p for p in covered if p != who]
    text = (
        f"{person_text(ctx, who)} covers {rotation.name} {layer} from {slack_date(span.start, zone)} "
        f"to {slack_date(span.end, zone)}"
        + (f", instead of {', '.join(person_text(ctx, p) for p in instead)}" if instead else "")
        + (
            f"; this replaces your earlier override #{', #'.join(str(i) for i in replaced)}"
            if replaced
            else ""
        )
        + f" (override #{row.id})."
    )
    return Answer(text, changed=True)


def add(
    ctx: Context,
    session: Session,
    actor: Actor,
    rotation: Rotation,
    layer: str,
    who: str,
    span: Span,
    now: datetime,
    *,
    reason: str = "",
    asked_by: str | None = None,
    swap_id: int | None = None,
    why: Why = Why.TAKER,
) -> tuple[OncallOverride, list[int]]:
    """Store an override under the overlap rule (the layer is locked by the caller): the new row
    and the ids of the overrides it replaced. `asked_by`: whose earlier overrides it may replace
    (default: the actor's)."""
    existing = store.active(session, rotation.name, now)
    placement = place(
        layer, span.start, span.end, asked_by or actor.slack_user, [store.as_existing(r) for r in existing]
    )
    zone = ZoneInfo(rotation.timezone)
    if placement.conflict is not None:
        other = placement.conflict
        raise BadInput(
            f"That overlaps override #{other.id}: {escape(other.who)} covers {rotation.name} {layer} from "
            f"{local_text(other.start, zone)} to {local_text(other.end, zone)}; remove it first "
            f"(`/oncall overrides {rotation.name}`) or pick another time."
        )
    actor_ref = f"slack:{actor.slack_user}"
    replaced = []
    for old in existing:
        if any(r.id == old.id for r in placement.replaces):
            old.removed_at, old.removed_by = now, actor_ref
            session.add(old)
            replaced.append(old.id)
            store.audit(
                session,
                now,
                actor_ref,
                "override_replaced",
                rotation.name,
                layer,
                f"override #{old.id} ({old.who}) replaced",
                {"override": old.id},
            )
    row = OncallOverride(
        rotation=rotation.name,
        layer=layer,
        who=who,
        starts_at=span.start,
        ends_at=span.end,
        created_by=actor.slack_user,
        created_at=now,
        reason=reason,
        swap_id=swap_id,
    )
    session.add(row)
    session.flush()
    store.audit(
        session,
        now,
        actor_ref,
        "override_added",
        rotation.name,
        layer,
        f"{who} covers {layer} {local_text(span.start, zone)} - {local_text(span.end, zone)}"
        + (f" ({reason})" if reason else ""),
        {
            "override": row.id,
            "who": who,
            "start": span.start.isoformat(),
            "end": span.end.isoformat(),
            "replaced": replaced,
            "allowed_because": why.name.lower(),
            "swap": swap_id,
        },
    )
    schedule_changed(ctx, session, rotation.name, now, why=f"override #{row.id} added")
    return row, [i for i in replaced if i is not None]


def remove(ctx: Context, actor: Actor, override_id: int) -> Answer:
    """The Remove button: the override stops now (the part that happened stays in the history)."""
    now = ctx.clock()
    with reading(ctx.engine) as session:
        row = session.get(OncallOverride, override_id)
        if row is None:
            raise BadInput(f"There is no override #{override_id}.")
        if row.removed_at is not None or row.ends_at <= now:
            return Answer(f"Override #{override_id} is no longer in effect; nothing to remove.")
        rotation = file_rotation(ctx, row.rotation)
        without = effective_rotation(ctx, session, row.rotation, now, without=[override_id])
    start = max(row.starts_at, now)
    why = allowed(ctx, rotation, actor, row.who, covered_people(without, row.layer, start, row.ends_at))
    with transaction(ctx.engine) as session:
        store.lock_layer(session, row.rotation, row.layer)
        stored = session.get(OncallOverride, override_id, with_for_update=True)
        assert stored is not None
        if stored.removed_at is not None:
            return Answer(f"Override #{override_id} was removed already.")
        stored.removed_at, stored.removed_by = now, f"slack:{actor.slack_user}"
        session.add(stored)
        store.audit(
            session,
            now,
            f"slack:{actor.slack_user}",
            "override_removed",
            stored.rotation,
            stored.layer,
            f"override #{override_id} ({stored.who}) removed",
            {"override": override_id, "allowed_because": why.name.lower()},
        )
        schedule_changed(ctx, session, stored.rotation, now, why=f"override #{override_id} removed")
    return Answer(
        f"Override #{override_id} removed: {stored.rotation} {stored.layer} is back to its schedule.",
        changed=True,
    )


def listing(ctx: Context, rotation_name: str | None) -> list[OverrideView]:
    """Current and future overrides, from Slack and from the files, by rotation and start."""
    if rotation_name is not None:
        file_rotation(ctx, rotation_name)
    now = ctx.clock()
    with reading(ctx.engine) as session:
        rotations = effective(ctx, session, None if rotation_name is None else [rotation_name], now)
        rows = {r.id: r for name in rotations for r in store.active(session, name, now)}
    views: list[OverrideView] = []
    for name, rotation in rotations.items():
        zone = ZoneInfo(rotation.timezone)
        for o in rotation.overrides:
            if o.end <= now:
                continue
            row = rows.get(store.id_of(o.ref) or -1)
            views.append(
                OverrideView(
                    row.id if row else None,
                    name,
                    o.layer,
                    o.who,
                    o.start,
                    o.end,
                    zone,
                    row.reason if row else "",
                    row.created_by if row else None,
                )
            )
    return sorted(views, key=lambda v: (v.rotation, v.start, v.layer))
