"""The people of rotations/people.yaml, plus what paging taught the bot (see `bot.core.people`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.people import People
from bot.core.rotations import Person
from bot.service.context import Context
from bot.store.tables import Incident, Page, TimelineEntry


def people_of(ctx: Context) -> People:
    return People(ctx.rotations.people if ctx.rotations else {})


def people_paged(ctx: Context, session: Session, incident_id: int | None = None) -> People:
    """`people_of`, also knowing the Slack ID each page (of one incident, or all) was delivered to:
    a person people.yaml lists by email only is then the same person as their mention."""
    query = select(Page.slack_user, Page.person).where(col(Page.slack_user).is_not(None))
    if incident_id is not None:
        query = query.where(col(Page.incident_id) == incident_id)
    return people_of(ctx).learn(session.exec(query.distinct()).all())


@dataclass(frozen=True)
class Unanswered:
    """The pages of one incident still waiting for an answer: not failed, sent since the incident
    last became unacknowledged (opened, reopened, un-acknowledged in PagerDuty). None once someone
    acknowledged: paging a person again is then a new call for help."""

    people: People
    pages: list[Page]

    def page_of(self, key: str | None, slack_id: str | None, email: str | None) -> Page | None:
        """The earliest such page of this person, however each page named them."""
        email = email.lower() if email else None
        for page in self.pages:
            page_key = self.people.key(page.person) or self.people.key(page.slack_user)
            page_slack = page.slack_user or self.people.slack_id(page.person)
            if (
                (key and page_key == key)
                or (slack_id and page_slack == slack_id)
                or (email and page.email and page.email.lower() == email)
            ):
                return page
        return None

    def of_person(self, person: Person) -> Page | None:
        return self.page_of(person.name, person.slack_id or self.people.slack_id(person.name), person.email)

    def of_slack_user(self, user: str) -> Page | None:
        key = self.people.key(f"slack:{user}")
        known = self.people.by_key.get(key) if key else None
        return self.page_of(key, user, known.email if known else None)


def unanswered(ctx: Context, session: Session, incident: Incident) -> Unanswered:
    people = people_paged(ctx, session, incident.id)
    if incident.status != "triggered":
        return Unanswered(people, [])
    since = incident.created_at
    changes = session.exec(
        select(TimelineEntry.at, TimelineEntry.data).where(
            col(TimelineEntry.incident_id) == incident.id, col(TimelineEntry.kind) == "status"
        )
    )
    for at, data in changes:
        if data.get("to") == "triggered" and at > since:
            since = at
    pages = session.exec(
        select(Page)
        .where(
            col(Page.incident_id) == incident.id,
            col(Page.failed_at).is_(None),
            col(Page.paged_at) >= since,
        )
        .order_by(col(Page.paged_at), col(Page.id))
    )
    return Unanswered(people, list(pages))


def not_again(who: str, page: Page, now: datetime) -> str:
    """The answer for a person not paged again (`who`: their mention or escaped name)."""
    elapsed = now - page.paged_at
    if elapsed >= timedelta(minutes=1):
        elapsed -= elapsed % timedelta(minutes=1)  # "3m ago": seconds only blur the sentence
    return (
        f"{who} was already paged {format_duration(elapsed)} ago for this incident and has not "
        "acknowledged; not paging again."
    )
