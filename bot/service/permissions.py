"""Who may act: gather the facts inside the use case's transaction, ask the core, refuse or go on.

The rule itself is `bot/core/permissions.py`. Facts come from the database and the catalog, never
from Slack's Web API, so the check works while Slack is down: the lead, the people paged (their
Slack IDs are on the Page rows), channel membership as Slack's events reported it, the rotation's
people (`slack:` in people.yaml, or the Slack ID a page already found by email), and the admins.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from bot.core.errors import NotAllowed
from bot.core.permissions import (
    Action,
    Facts,
    decide,
    may_declare,
    membership_would_allow,
    rotation_people,
)
from bot.service.context import Context
from bot.store.db import advisory_lock
from bot.store.tables import ChannelMember, Incident, Page


def user_id(actor: str) -> str:
    """`slack:U123` (how use cases name actors) -> `U123`."""
    return actor.removeprefix("slack:")


def require(
    ctx: Context,
    session: Session,
    incident: Incident,
    action: Action,
    actor: str,
    *,
    page_id: int | None = None,
) -> None:
    """Raise NotAllowed (saying who may) unless `actor` may take `action` on `incident`.
    `page_id`: the click came from that page's DM."""
    facts = gather(ctx, session, incident, user_id(actor), page_id=page_id)
    decision = decide(action, facts)
    if not decision.allowed:
        raise NotAllowed(
            decision.reason,
            if_member=membership_would_allow(action, facts),
            channel_id=incident.channel_id,
        )


def gather(
    ctx: Context, session: Session, incident: Incident, actor: str, *, page_id: int | None = None
) -> Facts:
    # Paged people by Slack ID, and by people.yaml key: a page that reached someone outside Slack
    # (an acknowledge link, an SMS) acts as that key.
    rows = session.exec(select(Page.slack_user, Page.person).where(col(Page.incident_id) == incident.id))
    paged = [who for row in rows for who in row]
    in_channel = bool(incident.channel_id) and (
        session.exec(
            select(ChannelMember.id).where(
                col(ChannelMember.channel_id) == incident.channel_id, col(ChannelMember.user_id) == actor
            )
        ).first()
        is not None
    )
    recipient = None
    if page_id is not None:
        page = session.get(Page, page_id)
        if page is not None and page.incident_id == incident.id:
            recipient = page.slack_user or page.person
    return Facts(
        actor=actor,
        lead=user_id(incident.lead) if incident.lead else None,
        paged=frozenset(p for p in paged if p),
        in_channel=in_channel,
        rotation=incident.rotation,
        rotation_members=rotation_members(ctx, session, incident.rotation),
        admins=ctx.admins(),
        via_page=page_id is not None,
        page_recipient=recipient,
    )


def rotation_members(ctx: Context, session: Session, rotation: str | None) -> frozenset[str]:
    """The Slack IDs of everyone the rotation can page."""
    catalog = ctx.rotations
    if catalog is None or rotation not in catalog.rotations:
        return frozenset()
    names = rotation_people(catalog.rotations[rotation], catalog.policies.get(rotation))
    return _slack_ids(ctx, session, names)


def in_people_file(ctx: Context, session: Session, slack_user: str) -> bool:
    """Whether `slack_user` is someone people.yaml names (by `slack:`, or by an email a page resolved)."""
    return ctx.rotations is not None and slack_user in _slack_ids(ctx, session, set(ctx.rotations.people))


def _slack_ids(ctx: Context, session: Session, names: set[str] | frozenset[str]) -> frozenset[str]:
    assert ctx.rotations is not None
    people = [ctx.rotations.people[n] for n in names if n in ctx.rotations.people]
    ids = {p.slack_id for p in people if p.slack_id}
    # People known only by email got a Slack ID when a page looked them up.
    emails = {p.email.lower() for p in people if not p.slack_id and p.email}
    if emails:
        found = session.exec(
            select(Page.slack_user)
            .where(func.lower(Page.email).in_(emails), col(Page.slack_user).is_not(None))
            .distinct()
        )
        ids |= {u for u in found if u}
    return frozenset(ids)


def require_declare_quota(ctx: Context, session: Session, user: str, now: datetime) -> None:
    """At most DECLARE_RATE declarations per person, counted in the database (so across replicas;
    on PostgreSQL a per-person lock makes two racing declarations count each other)."""
    advisory_lock(session, f"declare:{user}")
    since = now - ctx.declare_rate.window
    recent = session.exec(
        select(Incident.created_at)
        .where(col(Incident.declared_by) == user, col(Incident.created_at) > since)
        .order_by(col(Incident.created_at))
    ).all()
    decision = may_declare(list(recent), ctx.declare_rate, now)
    if not decision.allowed:
        raise NotAllowed(decision.reason)
