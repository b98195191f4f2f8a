"""Use cases behind replies by phone: an SMS answer and a key pressed during a call.

Both act as the paged person, as an acknowledge link does: through the same use cases as the
Slack buttons (`responders.acknowledge` / `escalate` with the page, so only its recipient may use
it), with `via="sms"` or `via="voice"`. The meaning of a reply is the pure decision of
`bot.core.phone_replies`; whatever changes nothing gets an answer that says so.

Who replied: the SMS sender's number is matched against `phone` in people.yaml. A call's key
names its page through the signed token in the callback URL (the call was placed for that page).
"""

from __future__ import annotations

import logging
import re

from sqlmodel import Session, col, select

from bot.core.ack_tokens import AckTarget, read_token
from bot.core.errors import IncidentBotError
from bot.core.phone_replies import (
    Intent,
    OpenPage,
    ReplyOutcome,
    VoiceScript,
    again,
    decide_reply,
    parse_digit,
    said,
)
from bot.service import notify_tests, responders
from bot.service.context import Context
from bot.service.people import unanswered
from bot.store import receipts
from bot.store.db import reading
from bot.store.tables import Incident, Page

log = logging.getLogger(__name__)

NOT_KNOWN = "This number is not in incidentbot's people list. Nothing was changed."
RECENT_PAGES = 200  # a person's latest pages looked at for a reply (open ones are among them)


def sms_reply(ctx: Context, sender: str, body: str, message: str, vendor: str) -> str:
    """The answer to an SMS reply from `sender` (plain text, sent back as an SMS); `message` is
    the vendor's id of it: a request replayed (or retried by the vendor) acts once."""
    people = [p.name for p in (ctx.rotations.people.values() if ctx.rotations else ()) if p.phone == sender]
    if not people:
        return NOT_KNOWN
    with reading(ctx.engine) as session:
        open_pages, closed = _pages_of(ctx, session, people)
    decision = decide_reply(body, open_pages, closed)
    if decision.outcome is not ReplyOutcome.ACT:
        return decision.text
    assert decision.page is not None and decision.intent is not None
    with reading(ctx.engine) as session:
        page = session.get(Page, decision.page.page_id)
    assert page is not None
    if not receipts.first_time(ctx.engine, vendor, f"sms:{message}", ctx.clock()):
        return "This reply was already handled."
    return _act(ctx, page, decision.intent, "sms")


def _pages_of(ctx: Context, session: Session, people: list[str]) -> tuple[list[OpenPage], dict[int, str]]:
    """Their pages still waiting (the current one per incident, earliest incident first) and the
    incidents they were paged for that no longer wait, with their status."""
    rows = session.exec(
        select(Page, Incident)
        .join(Incident, col(Incident.id) == col(Page.incident_id))
        .where(col(Page.person).in_(people))
        .order_by(col(Page.id).desc())
        .limit(RECENT_PAGES)
    ).all()
    open_pages: dict[int, OpenPage] = {}
    closed: dict[int, str] = {}
    for _, incident in rows:
        assert incident.id is not None
        if incident.status != "triggered":
            closed.setdefault(incident.id, incident.status)
        elif incident.id not in open_pages:
            waiting = unanswered(ctx, session, incident)
            page = next((p for p in reversed(waiting.pages) if p.person in people), None)
            if page is not None and page.id is not None:
                open_pages[incident.id] = OpenPage(page.id, incident.id, incident.severity, incident.title)
    return sorted(open_pages.values(), key=lambda p: p.incident_id), closed


def _act(ctx: Context, page: Page, intent: Intent, via: str) -> str:
    actor = f"slack:{page.slack_user}" if page.slack_user else page.person
    try:
        if intent is Intent.ACKNOWLEDGE:
            answer = responders.acknowledge(ctx, page.incident_id, actor, page_id=page.id, via=via)
        else:
            answer = responders.escalate(ctx, page.incident_id, actor, page_id=page.id, via=via)
    except IncidentBotError as exc:
        return f"Incident #{page.incident_id}: {plain(ctx, str(exc))} Nothing was changed."
    if not answer.changed:
        return f"Incident #{page.incident_id}: {plain(ctx, answer.text)} Nothing was changed."
    if intent is Intent.ACKNOWLEDGE:
        return f"You acknowledged incident #{page.incident_id}; escalation stopped."
    return f"Incident #{page.incident_id}: {plain(ctx, answer.text)}"


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def plain(ctx: Context, text: str) -> str:
    """A use case's answer (Slack mrkdwn) as plain text for an SMS or a voice: mentions become names."""
    people = ctx.rotations.people.values() if ctx.rotations else ()
    names = {p.slack_id: p.display_name or p.name for p in people if p.slack_id}
    text = _MENTION.sub(lambda m: names.get(m.group(1), "a colleague"), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.replace("`", "").replace("*", "")


# -- calls ------------------------------------------------------------------------------------


def voice_key(ctx: Context, token: str, digits: str, gather_url: str, call: str, vendor: str) -> VoiceScript:
    """What the call says after a key was pressed; `token` names the page (signed by the bot),
    `call` the vendor's id of the call (a key acts once per call, however often it is sent)."""
    now = ctx.clock()
    target = read_token(ctx.secret_key, token, now)
    if not isinstance(target, AckTarget):
        return said("This call's page can no longer be answered by phone. Use Slack. Goodbye.")
    intent = parse_digit(digits)
    if intent is None:
        return again(gather_url)
    if target.kind == "test":
        if intent is not Intent.ACKNOWLEDGE:
            return said("This was a test; there is nothing to escalate. Goodbye.")
        notify_tests.confirm(ctx, target.id)
        return said("Thank you: calls reach you. Goodbye.")
    with reading(ctx.engine) as session:
        page = session.get(Page, target.id)
        incident = session.get(Incident, page.incident_id) if page else None
    if page is None or incident is None:
        return said("This bot knows no such page. Nothing was changed. Goodbye.")
    refused = _refusal(incident, target)
    if refused:
        return said(f"{refused} Nothing was changed. Goodbye.")
    if not receipts.first_time(ctx.engine, vendor, f"call:{call}", now):
        return said("This call already answered the page. Goodbye.")
    spoken = _act(ctx, page, intent, "voice").replace("#", "")  # "incident 41", not "hash 41"
    return said(f"{spoken} Goodbye.")


def _refusal(incident: Incident, target: AckTarget) -> str:
    if target.cycle != incident.paging_cycle:
        return f"Incident {incident.id} was reopened after this call was placed; use Slack."
    if incident.status != "triggered":
        return f"Incident {incident.id} is already {incident.status}."
    return ""
