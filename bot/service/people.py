"""The people of rotations/people.yaml, plus what paging taught the bot (see `bot.core.people`)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.core.people import People
from bot.service.context import Context
from bot.store.tables import Page


def people_of(ctx: Context) -> People:
    return People(ctx.rotations.people if ctx.rotations else {})


def people_paged(ctx: Context, session: Session, incident_id: int | None = None) -> People:
    """`people_of`, also knowing the Slack ID each page (of one incident, or all) was delivered to:
    a person people.yaml lists by email only is then the same person as their mention."""
    query = select(Page.slack_user, Page.person).where(col(Page.slack_user).is_not(None))
    if incident_id is not None:
        query = query.where(col(Page.incident_id) == incident_id)
    return people_of(ctx).learn(session.exec(query.distinct()).all())
