"""Who is on call, as text for `/oncall`, `/oncall me` and `incidentbot oncall`: the effective
schedule (the files with the overrides made from Slack, `oncall_schedule.effective`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.catalog.rotations import Catalog
from bot.core.errors import BadInput
from bot.core.pagerduty import OnCallEntry
from bot.core.rotations import Person, Rotation, hands_over, on_call_all
from bot.core.schedule import runs, shifts_between
from bot.core.text import escape, slack_date
from bot.core.when import slack_date as rotation_date
from bot.service.context import Context
from bot.service.oncall_schedule import effective
from bot.store.db import reading

UPCOMING_SHOWN = 3  # overrides ahead listed under a rotation (all: `/oncall overrides`)

# (schedule id, escalation policy id) -> (entries, stale): `OnCallCache.get` in production.
PagerDutyLookup = Callable[[str | None, str | None], tuple[list[OnCallEntry], bool]]


def describe(
    catalog: Catalog,
    name: str | None,
    at: datetime,
    *,
    slack: bool,
    pagerduty: PagerDutyLookup | None = None,
    rotations: Mapping[str, Rotation] | None = None,
) -> str:
    """Each layer's person and when the shift ends, for one rotation or all of them. Rotations
    whose on-call lives in PagerDuty are read from it (`pagerduty`), per escalation level.
    `rotations`: the effective schedules (default: the files alone)."""
    if name and name not in catalog.rotations:
        known = ", ".join(sorted(catalog.rotations))
        raise BadInput(f"There is no rotation named {escape(repr(name))}. Rotations: {known}.")
    names = [name] if name else list(catalog.rotations)
    parts = []
    for rotation_name in names:
        rotation = (rotations or catalog.rotations)[rotation_name]
        title = f"*{rotation_name}*" if slack else rotation_name
        groups = _groups(rotation, None, slack=slack)
        lines = [f"{title} ({rotation.timezone}){groups}"]
        if rotation.source != "file":
            lines += _from_pagerduty(catalog, rotation, pagerduty, slack=slack)
        else:
            zone = ZoneInfo(rotation.timezone)
            for layer, shift in on_call_all(rotation, at).items():
                person = catalog.people.get(shift.person)
                who = _who(person, shift.person, slack=slack)
                note = " (override)" if shift.override else ""
                handover = hands_over(rotation, layer, shift)
                until = (
                    f"until {_until(handover, zone, person, slack=slack)}"
                    if handover
                    else "(no handover scheduled)"
                )
                lines.append(f"  • {layer}: {who}{note} {until}{_groups(rotation, layer, slack=slack)}")
            lines += _ahead(catalog, rotation, at, zone, slack=slack)
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _groups(rotation: Rotation, layer: str | None, *, slack: bool) -> str:
    """The user groups kept equal to the whole rotation (`layer` None) or to one layer only."""
    every = tuple(rotation.layers)
    ids = [g for g, held in rotation.slack_usergroups.items() if (held == every) == (layer is None)]
    ids = [g for g in ids if layer is None or layer in rotation.slack_usergroups[g]]
    shown = [f"<!subteam^{g}>" if slack else f"@{g}" for g in ids]
    return f" {' '.join(shown)}" if shown else ""


def _who(person: Person | None, fallback: str, *, slack: bool) -> str:
    """A mention in Slack when the Slack ID is known, else the display name."""
    if slack and person and person.slack_id:
        return f"<@{person.slack_id}>"
    name = (person.display_name or person.name) if person else fallback
    return escape(name) if slack else name


def _until(end: datetime, zone: ZoneInfo, person: Person | None = None, *, slack: bool) -> str:
    """In Slack, a date each reader sees in their own zone; in a terminal the rotation's zone, and
    the person's own when it differs (their handover is at their local time)."""
    local = end.astimezone(zone).strftime("%a %b %d %H:%M %Z")
    if slack:
        return slack_date(end, "{date_short_pretty} {time}", local)
    if person is None or not person.timezone or person.timezone == zone.key:
        return local
    theirs = end.astimezone(ZoneInfo(person.timezone))
    day = "" if theirs.date() == end.astimezone(zone).date() else f"{theirs:%a} "
    return f"{local} ({day}{theirs:%H:%M %Z} for them)"


def _ahead(catalog: Catalog, rotation: Rotation, at: datetime, zone: ZoneInfo, *, slack: bool) -> list[str]:
    upcoming = sorted((o for o in rotation.overrides if o.start > at), key=lambda o: o.start)
    lines = [
        f"  ◦ override ahead: {o.layer}: {_who(catalog.people.get(o.who), o.who, slack=slack)} "
        f"from {_until(o.start, zone, slack=slack)} until {_until(o.end, zone, slack=slack)}"
        for o in upcoming[:UPCOMING_SHOWN]
    ]
    if len(upcoming) > UPCOMING_SHOWN:
        lines.append(f"  ◦ and {len(upcoming) - UPCOMING_SHOWN} more (`/oncall overrides {rotation.name}`)")
    return lines


def on_call_now(
    ctx: Context, name: str | None, *, slack: bool, pagerduty: PagerDutyLookup | None = None
) -> str:
    """`/oncall [rotation]`: `describe` of the effective schedule now."""
    catalog = ctx.rotations
    if catalog is None:
        raise BadInput("No rotations are configured (see ROTATIONS_DIR).")
    at = ctx.clock()
    wanted = [name] if name in catalog.rotations else None
    with reading(ctx.engine) as session:
        rotations = effective(ctx, session, wanted, at)
    return describe(catalog, name, at, slack=slack, pagerduty=pagerduty, rotations=rotations)


def my_shifts(ctx: Context, person: str | None, weeks: int = 4) -> str:
    """`/oncall me`: the person's shifts over the next `weeks`, every rotation and layer, overrides
    included, in Slack's date format (each reader sees their own zone)."""
    catalog = ctx.rotations
    if catalog is None:
        raise BadInput("No rotations are configured (see ROTATIONS_DIR).")
    if person is None:
        return "You are not in people.yaml, so you have no shifts here."
    now = ctx.clock()
    end = now + timedelta(weeks=weeks)
    with reading(ctx.engine) as session:
        rotations = effective(ctx, session, None, now, end)
    found: list[tuple[datetime, str]] = []
    for name, rotation in rotations.items():
        if rotation.source != "file":
            continue
        zone = ZoneInfo(rotation.timezone)
        for layer in rotation.layers:
            for shift in runs(shifts_between(rotation, layer, now, end)):
                if shift.person == person:
                    note = " (override)" if shift.override else ""
                    found.append(
                        (
                            shift.start,
                            f"• {name} {layer}: {rotation_date(shift.start, zone)} to "
                            f"{rotation_date(shift.end, zone)}{note}",
                        )
                    )
    if not found:
        return f"No shifts for you in the next {weeks} weeks."
    return f"Your shifts in the next {weeks} weeks:\n" + "\n".join(text for _, text in sorted(found))


def _from_pagerduty(
    catalog: Catalog, rotation: Rotation, lookup: PagerDutyLookup | None, *, slack: bool
) -> list[str]:
    source = rotation.pagerduty
    if lookup is None or source is None:
        return ["  on-call comes from PagerDuty (set PAGERDUTY_API_TOKEN to show it here)"]
    try:
        entries, stale = lookup(source.schedule_id, source.escalation_policy_id)
    except Exception as exc:  # shown, not raised: the rest of the answer is still worth having
        reason = getattr(exc, "error", None) or type(exc).__name__
        return [f"  PagerDuty's on-call could not be read ({escape(str(reason))})"]
    if not entries:
        return ["  PagerDuty lists nobody on call"]
    by_email = {p.email.lower(): p for p in catalog.people.values() if p.email}
    zone = ZoneInfo(rotation.timezone)
    lines = []
    for entry in sorted(entries, key=lambda e: (e.escalation_level, e.user_summary)):
        person = by_email.get((entry.user_email or "").lower())
        who = _who(person, entry.user_summary or entry.user_email or entry.user_id, slack=slack)
        until = f"until {_until(entry.end, zone, person, slack=slack)}" if entry.end else "(always on call)"
        lines.append(f"  • level {entry.escalation_level}: {who} {until}")
    if stale:
        lines.append("  (last known list: PagerDuty is unreachable)")
    return lines
