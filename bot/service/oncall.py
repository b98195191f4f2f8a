"""Who is on call, as text for `/oncall` and `incidentbot oncall`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.catalog.rotations import Catalog
from bot.core.errors import BadInput
from bot.core.rotations import on_call_all
from bot.core.text import escape


def describe(catalog: Catalog, name: str | None, at: datetime, *, slack: bool) -> str:
    """Each layer's person and when the shift ends, for one rotation or all of them."""
    if name and name not in catalog.rotations:
        known = ", ".join(sorted(catalog.rotations))
        raise BadInput(f"There is no rotation named {escape(repr(name))}. Rotations: {known}.")
    names = [name] if name else list(catalog.rotations)
    parts = []
    for rotation_name in names:
        rotation = catalog.rotations[rotation_name]
        zone = ZoneInfo(rotation.timezone)
        title = f"*{rotation_name}*" if slack else rotation_name
        lines = [f"{title} ({rotation.timezone})"]
        if rotation.source != "file":
            lines.append("  on-call comes from PagerDuty")
        else:
            for layer, shift in on_call_all(rotation, at).items():
                person = catalog.people.get(shift.person)
                who = shift.person
                if slack and person and person.slack_id:
                    who = f"<@{person.slack_id}>"
                until = shift.end.astimezone(zone).strftime("%a %b %d %H:%M %Z")
                note = " (override)" if shift.override else ""
                lines.append(f"  • {layer}: {who}{note} until {until}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
