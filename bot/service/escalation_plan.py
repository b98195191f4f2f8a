"""Reading an incident's escalation plan: its steps, the pending step's timer and what it will page.
Read-only; the use cases that change paging are in bot/service/escalation.py."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.catalog.rotations import Catalog
from bot.core.escalation import PlannedStep, StepPreview, preview_final_notice, preview_step, schedule
from bot.service.context import Context
from bot.store.tables import Incident, Timer


def plan_of(ctx: Context, incident: Incident) -> list[PlannedStep]:
    """The incident's escalation plan, from its policy, anchor time and severity."""
    return plan_for(ctx.rotations, incident)


def plan_for(catalog: Catalog | None, incident: Incident) -> list[PlannedStep]:
    if catalog is None or incident.rotation not in catalog.policies:
        return []
    anchor = incident.escalation_anchor or incident.created_at
    return schedule(catalog.policies[incident.rotation], anchor, incident.severity)


def upcoming(session: Session, catalog: Catalog | None, incident: Incident) -> StepPreview | None:
    """What the pending timer will page if nobody acknowledges, and when (None: nothing pending)."""
    if incident.status != "triggered" or catalog is None or incident.rotation not in catalog.rotations:
        return None
    timer = pending_step(session, incident)
    if timer is None:
        return None
    plan = plan_for(catalog, incident)
    if timer.kind == "final_notice":
        return preview_final_notice(plan, timer.due_at)
    step = next((s for s in plan if step_key(incident, s) == timer.key), None)
    if step is None:
        return None  # the policy changed under the timer: it fires as it is, unpreviewed
    return preview_step(step, timer.due_at, catalog.rotations[incident.rotation], catalog.people)


def step_key(incident: Incident, step: PlannedStep) -> str:
    """The key of a step's timer and pages: paging cycle, round, step ("c0r1s2")."""
    return f"c{incident.paging_cycle}r{step.round}s{step.index}"


def pending_step(session: Session, incident: Incident) -> Timer | None:
    return session.exec(
        select(Timer).where(
            col(Timer.incident_id) == incident.id,
            col(Timer.status) == "pending",
            col(Timer.kind).in_(("escalation", "final_notice")),
        )
    ).first()
