"""The effective schedule, as every consumer reads it: the rotation files with the overrides made
from Slack on top (`core.schedule.layered`). `/oncall`, `incidentbot oncall`, escalation steps,
manual pages, post-mortems and calendars all call `effective`, so they can never disagree.

Reading is one small query per use (the overrides of the rotations asked for that still run at or
after `since`, see `store.oncall.in_effect`). An override made now therefore changes who the next
escalation step pages; pages already sent are not taken back.

`schedule_changed` is called in the transaction of every change to a rotation's on-call (an
override added, replaced or removed, a swap taken): the one place later work hooks into
(handoff timers and user-group sync re-plan from here).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from sqlmodel import Session

from bot.core.errors import BadInput
from bot.core.rotations import Rotation
from bot.core.schedule import layered
from bot.core.text import escape
from bot.service.context import Context
from bot.store import oncall as store

log = logging.getLogger(__name__)


def effective(
    ctx: Context,
    session: Session,
    names: Collection[str] | None,
    since: datetime,
    until: datetime | None = None,
    *,
    without: Collection[int] = (),
) -> dict[str, Rotation]:
    """The rotations `names` (None: all, in file order) as they stand from `since` (to `until`);
    `without`: leave these overrides out (who would be on call if one were removed)."""
    catalog = ctx.rotations
    if catalog is None:
        return {}
    wanted = list(catalog.rotations) if names is None else [n for n in names if n in catalog.rotations]
    files = [n for n in wanted if catalog.rotations[n].source == "file"]
    rows = store.in_effect(session, files, since, until) if files else []
    by_rotation: dict[str, list] = {}
    for row in rows:
        if row.id in without:
            continue
        by_rotation.setdefault(row.rotation, []).append(store.as_override(row))
    out: dict[str, Rotation] = {}
    for name in wanted:
        try:
            rotation, left_out = layered(catalog.rotations[name], by_rotation.get(name, ()), catalog.people)
        except Exception:  # a bug here must not stop a page: the files alone still name someone
            log.exception("could not layer the overrides of rotation %s; using its file alone", name)
            rotation, left_out = catalog.rotations[name], []
        for o in left_out:  # the files changed under it: said, never paged
            log.warning(
                "override %s of rotation %s names layer %r / person %r the files no longer have",
                o.ref,
                name,
                o.layer,
                o.who,
            )
        out[name] = rotation
    return out


def effective_rotation(
    ctx: Context,
    session: Session,
    name: str,
    since: datetime,
    until: datetime | None = None,
    *,
    without: Collection[int] = (),
) -> Rotation:
    return effective(ctx, session, [name], since, until, without=without)[name]


def file_rotation(ctx: Context, name: str) -> Rotation:
    """A rotation whose on-call can be changed here (from its file, not PagerDuty), or BadInput."""
    catalog = ctx.rotations
    if catalog is None or name not in catalog.rotations:
        known = ", ".join(sorted(catalog.rotations)) if catalog else "none"
        raise BadInput(f"There is no rotation named {escape(repr(name))}. Rotations: {known}.")
    rotation = catalog.rotations[name]
    if rotation.source != "file":
        raise BadInput(f"Rotation {name} takes its on-call from PagerDuty; change it there.")
    return rotation


def schedule_changed(ctx: Context, session: Session, rotation: str, now: datetime, *, why: str) -> None:
    """The hook: rotation `rotation`'s on-call changed (in this transaction). Escalation steps and
    `/oncall` read the schedule when they run, so they need nothing here; handoff notices and
    user-group sync re-plan from this call."""
    log.info("on-call of rotation %s changed: %s", rotation, why)
    from bot.service import handoffs  # handoffs reads the schedule through this module

    handoffs.replan(ctx, session, rotation, now)
