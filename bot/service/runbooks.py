"""Use cases of runbooks: post the linked runbooks, tick steps off, post them again on request."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlmodel import Session, col, select

from bot.catalog.runbooks import link_alert
from bot.core.errors import BadInput
from bot.core.incident import Status
from bot.core.permissions import Action
from bot.core.runbook_links import RunbookLink
from bot.core.text import escape, slugify, truncate
from bot.service.context import Context
from bot.service.incidents import lane
from bot.service.permissions import require
from bot.service.responders import Answer, load
from bot.service.timeline import record
from bot.store import outbox
from bot.store.db import reading, transaction
from bot.store.tables import Alert, Incident, RunbookPost

log = logging.getLogger(__name__)


class _AlertLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...


def links(
    ctx: Context,
    session: Session,
    incident: Incident,
    route_runbook: str | None = None,
    alerts: Iterable[_AlertLike] | None = None,
) -> list[RunbookLink]:
    """One link per distinct alert name of the incident (a runbook covering several is listed once)."""
    if alerts is None:
        alerts = session.exec(
            select(Alert).where(col(Alert.incident_id) == incident.id).order_by(col(Alert.id))
        )
    seen_names: set[str] = set()
    result: list[RunbookLink] = []
    for alert in alerts:
        if alert.name in seen_names:
            continue
        seen_names.add(alert.name)
        labels = {"runbook": route_runbook, **alert.labels} if route_runbook else alert.labels
        result.append(link_alert(labels, alert.annotations, ctx.runbooks))
    return result


def attach(
    ctx: Context,
    session: Session,
    incident: Incident,
    now: datetime,
    route_runbook: str | None = None,
    *,
    fresh_alerts: Sequence[_AlertLike] | None = None,
) -> None:
    """Post every runbook the incident's alerts link to that is not posted yet (after the card).
    `fresh_alerts`: the incident was opened in this transaction with these alerts (in order), so
    nothing is posted yet and they need not be read back."""
    assert incident.id is not None
    posted: set[str] = set()
    if fresh_alerts is None:
        query = select(RunbookPost.slug).where(col(RunbookPost.incident_id) == incident.id)
        posted = set(session.exec(query))
    for found in links(ctx, session, incident, route_runbook, fresh_alerts):
        if found.runbook is None:
            key = f"missing:{found.alertname or slugify(incident.title)}"
            if key in posted:
                continue
            session.add(RunbookPost(incident_id=incident.id, slug=key))
            outbox.enqueue(
                session,
                lane(incident),
                "no_runbook",
                now,
                {
                    "alertname": found.alertname,
                    "url": found.url,
                    "suggested": found.suggested_file,
                    "refused": found.refused,
                    "reason": found.reason,
                },
                incident_id=incident.id,
            )
            record(
                session,
                incident.id,
                now,
                "bot",
                "runbook",
                f"No runbook found for {found.alertname}",
                {"suggested_file": found.suggested_file, "refused": found.refused},
            )
            continue
        slug = found.runbook.slug
        if slug in posted:
            continue
        posted.add(slug)
        session.add(RunbookPost(incident_id=incident.id, slug=slug))
        _enqueue_post(session, incident, slug, now)
        record(
            session,
            incident.id,
            now,
            "bot",
            "runbook",
            f"Runbook {slug} linked ({found.reason})",
            {"slug": slug, "reason": found.reason},
        )


def _enqueue_post(session: Session, incident: Incident, slug: str, now: datetime) -> None:
    # Delivery lays the runbook out over as many messages as Slack's limits need.
    outbox.enqueue(session, lane(incident), "post_runbook", now, {"slug": slug}, incident_id=incident.id)


def repost(ctx: Context, incident_id: int, actor: str) -> Answer:
    """`/incident runbook`: post the incident's runbooks again (e.g. after the channel scrolled)."""
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.RUNBOOK, actor)
        now = ctx.clock()
        posts = _posted(session, incident_id)
        if not posts:
            attach(ctx, session, incident, now)
            if _posted(session, incident_id):
                return Answer("No runbook was linked yet; looked again and found one.", changed=True)
            return Answer(f"No runbook is linked to this incident. {_choices(ctx)}", changed=True)
        for post in posts:
            runbook = ctx.runbooks.by_slug(post.slug)
            if runbook is None:
                continue
            post.messages = {}
            session.add(post)
            _enqueue_post(session, incident, post.slug, now)
        record(session, incident_id, now, actor, "runbook", "Runbook posted again")
    ctx.wake()
    return Answer("Posting the runbook again.", changed=True)


def _posted(session: Session, incident_id: int) -> list[RunbookPost]:
    query = select(RunbookPost).where(col(RunbookPost.incident_id) == incident_id)
    return [p for p in session.exec(query) if not p.slug.startswith("missing:")]


_CHOICES_MAX = 40


def _choices(ctx: Context) -> str:
    slugs = sorted(r.slug for r in ctx.runbooks)
    if not slugs:
        return "There are no runbooks (see RUNBOOKS_DIR)."
    more = f" and {len(slugs) - _CHOICES_MAX} more" if len(slugs) > _CHOICES_MAX else ""
    return f"Post one with `/incident runbook <slug>`: {', '.join(slugs[:_CHOICES_MAX])}{more}."


def choose(ctx: Context, incident_id: int, actor: str, slug: str) -> Answer:
    """`/incident runbook <slug>`: post a runbook chosen by hand (a declared incident has no alert
    to link one); one already posted here is posted again."""
    wanted = slug.strip().removesuffix(".md").lower()
    runbook = ctx.runbooks.by_slug(wanted)
    if runbook is None:
        return Answer(f"There is no runbook `{escape(truncate(slug.strip(), 100))}`. {_choices(ctx)}")
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        now = ctx.clock()
        post = session.exec(
            select(RunbookPost).where(
                col(RunbookPost.incident_id) == incident_id, col(RunbookPost.slug) == runbook.slug
            )
        ).first()
        if post is None:
            session.add(RunbookPost(incident_id=incident_id, slug=runbook.slug))
        else:
            post.messages = {}
            session.add(post)
        _enqueue_post(session, incident, runbook.slug, now)
        record(
            session,
            incident_id,
            now,
            actor,
            "runbook",
            f"Runbook {runbook.slug} posted by hand",
            {"slug": runbook.slug},
        )
    ctx.wake()
    return Answer(f"Posting runbook {escape(runbook.title)}.", changed=True)


def source_url(ctx: Context, incident_id: int, slug: str) -> str | None:
    """The `runbook_url` of the first of the incident's alerts that links this runbook: its message
    links it, as runbooks/README.md promises. None for a runbook chosen by hand."""
    with reading(ctx.engine) as session:
        alerts = session.exec(
            select(Alert).where(col(Alert.incident_id) == incident_id).order_by(col(Alert.id))
        )
        seen: set[str] = set()
        for alert in alerts:
            if alert.name in seen:
                continue
            seen.add(alert.name)
            found = link_alert(alert.labels, alert.annotations, ctx.runbooks)
            if found.url and found.runbook is not None and found.runbook.slug == slug:
                return found.url
    return None


def toggle_step(ctx: Context, incident_id: int, slug: str, number: int, done: bool, user: str) -> Answer:
    """Mark a step done (or undo it); the intent comes from the button, so double clicks are harmless."""
    runbook = ctx.runbooks.by_slug(slug)
    if runbook is None or runbook.step(number) is None:
        raise BadInput(f"Runbook {slug!r} has no step {number}.")
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.RUNBOOK_STEP, user)
        post = session.exec(
            select(RunbookPost).where(
                col(RunbookPost.incident_id) == incident_id, col(RunbookPost.slug) == slug
            )
        ).first()
        if post is None:
            raise BadInput(f"Runbook {slug!r} is not posted in incident #{incident_id}.")
        if incident.status == Status.CLOSED:  # its post-mortem is written: the record stays as it was
            return Answer(f"Incident #{incident_id} is closed; its runbook steps can no longer change.")
        key = str(number)
        if (key in post.done) == done:
            return Answer(f"Step {number} is already {'done' if done else 'not done'}.")
        now = ctx.clock()
        done_map = dict(post.done)
        if done:
            done_map[key] = [user, now.isoformat()]
        else:
            done_map.pop(key, None)
        post.done = done_map
        session.add(post)
        verb = "done" if done else "not done any more"
        step = runbook.step(number)
        assert step is not None
        record(
            session,
            incident_id,
            now,
            f"slack:{user}",
            "runbook_step",
            f"Runbook {slug} step {number} {verb}: {step.summary()}",
            {"slug": slug, "number": number, "done": done, "by": user},
        )
        outbox.enqueue(
            session,
            lane(incident),
            "update_runbook",
            now,
            {"slug": slug, "number": number},
            incident_id=incident_id,
        )
    ctx.wake()
    return Answer(f"Step {number} marked {verb}.", changed=True)
