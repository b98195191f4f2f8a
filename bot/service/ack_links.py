"""Use cases behind acknowledge links (`GET`/`POST /ack/<token>`).

GET only looks (mail scanners and link previews follow links); POST acknowledges as the paged
person, through the same use case as the Slack button, with `via=ack_link`. A forged, expired,
superseded (the incident was reopened) or spent link, or one for a resolved incident, gets a page
that says so with a 4xx status, and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.ack_tokens import AckTarget, TokenProblem, read_token
from bot.core.durations import format_duration
from bot.service import notify_tests, responders
from bot.service.context import Context
from bot.store.db import reading
from bot.store.tables import Incident, Notification, Page


@dataclass(frozen=True)
class AckPage:
    """What the link's page shows (plain text: the page escapes it) and its HTTP status."""

    status: int
    heading: str
    text: str
    can_acknowledge: bool = False
    incident_title: str = ""
    severity: str = ""


@dataclass(frozen=True)
class _Found:
    target: AckTarget
    page: Page | None
    incident: Incident | None
    test: Notification | None


def _find(ctx: Context, token: str) -> _Found | AckPage:
    target = read_token(ctx.secret_key, token, ctx.clock())
    if target is TokenProblem.FORGED:
        return AckPage(404, "Link not valid", target.value)
    if target is TokenProblem.EXPIRED:
        return AckPage(410, "Link expired", target.value)
    assert isinstance(target, AckTarget)
    with reading(ctx.engine) as session:
        if target.kind == "test":
            test = session.get(Notification, target.id)
            if test is None or not test.test_by:
                return AckPage(404, "Link not valid", TokenProblem.FORGED.value)
            return _Found(target, None, None, test)
        page = session.get(Page, target.id)
        incident = session.get(Incident, page.incident_id) if page else None
        if page is None or incident is None:
            return AckPage(404, "Link not valid", "This page is not known to this bot.")
        return _Found(target, page, incident, None)


def _state(found: _Found) -> AckPage | None:
    """Why this incident cannot be acknowledged from the link (None: it can)."""
    incident, page = found.incident, found.page
    assert incident is not None and page is not None
    title, sev = incident.title, incident.severity
    if found.target.cycle != incident.paging_cycle:
        text = f"Incident #{incident.id} was reopened after this page: use the newer page's link or Slack."
        return AckPage(410, "Link superseded", text, incident_title=title, severity=sev)
    if incident.status in ("resolved", "closed"):
        text = f"Incident #{incident.id} is already {incident.status}; there is nothing to acknowledge."
        return AckPage(410, "Already resolved", text, incident_title=title, severity=sev)
    if incident.status == "acknowledged":
        by = _name(incident.acknowledged_by)
        return AckPage(
            409,
            "Already acknowledged",
            f"Incident #{incident.id} was acknowledged by {by}.",
            incident_title=title,
            severity=sev,
        )
    return None


def _name(actor: str | None) -> str:
    return (actor or "someone").removeprefix("slack:")


def look(ctx: Context, token: str) -> AckPage:
    """GET: show the incident and the button; change nothing."""
    found = _find(ctx, token)
    if isinstance(found, AckPage):
        return found
    if found.test is not None:
        n = found.test
        text = f"A test page for {n.person} by {n.method}. Acknowledge it to confirm this method works."
        return AckPage(
            200, "Test page", text, can_acknowledge=True, incident_title="Test page", severity="test"
        )
    incident, page = found.incident, found.page
    assert incident is not None and page is not None
    refused = _state(found)
    if refused is not None:
        return refused
    age = format_duration(ctx.clock() - incident.created_at)
    text = (
        f"Incident #{incident.id}, open for {age}. You ({page.person}) were paged; "
        "acknowledging stops the escalation."
    )
    return AckPage(200, "Acknowledge this page?", text, True, incident.title, incident.severity)


def use(ctx: Context, token: str) -> AckPage:
    """POST: acknowledge as the paged person (who may always acknowledge their own page)."""
    found = _find(ctx, token)
    if isinstance(found, AckPage):
        return found
    if found.test is not None:
        first, text = notify_tests.confirm(ctx, found.test.id or 0)
        return AckPage(200 if first else 409, "Test confirmed" if first else "Already confirmed", text)
    refused = _state(found)
    if refused is not None:
        return refused
    incident, page = found.incident, found.page
    assert incident is not None and incident.id is not None and page is not None
    actor = f"slack:{page.slack_user}" if page.slack_user else page.person
    answer = responders.acknowledge(ctx, incident.id, actor, page_id=page.id, via="ack_link")
    if not answer.changed:  # raced with another acknowledgement, or resolved meanwhile
        return AckPage(
            409, "Not acknowledged", answer.text, incident_title=incident.title, severity=incident.severity
        )
    text = f"You acknowledged incident #{incident.id} as {page.person}; escalation stopped."
    return AckPage(200, "Acknowledged", text, incident_title=incident.title, severity=incident.severity)
