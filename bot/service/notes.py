"""Use cases that add to the timeline from Slack: notes, action items, pinned messages."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select

from bot.core.permissions import Action
from bot.core.text import safe_mrkdwn, slack_ts_seconds
from bot.service.context import Context
from bot.service.incidents import say
from bot.service.permissions import require
from bot.service.responders import Answer, load, mention
from bot.service.timeline import record
from bot.store.db import transaction
from bot.store.tables import TimelineEntry


def note(ctx: Context, incident_id: int, actor: str, text: str) -> Answer:
    return _add(ctx, incident_id, actor, Action.NOTE, text, ":memo: Note from")


def action_item(ctx: Context, incident_id: int, actor: str, text: str) -> Answer:
    return _add(ctx, incident_id, actor, Action.ACTION_ITEM, text, ":ballot_box_with_check: Action item from")


def _add(ctx: Context, incident_id: int, actor: str, kind: Action, text: str, echo: str) -> Answer:
    text = text.strip()
    if not text:
        return Answer(f"Write the {kind} after the subcommand: `/incident {kind} <text>`.")
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, kind, actor)
        now = ctx.clock()
        record(session, incident_id, now, actor, kind.value, text[:3000], {"text": text[:3000]})
        # Typed in Slack: its links and mentions stay live, broadcasts do not (`safe_mrkdwn`).
        say(session, incident, now, f"{echo} {mention(actor)}: {safe_mrkdwn(text[:2900])}", trusted=True)
    ctx.wake()
    return Answer(f"{kind.capitalize()} added to the timeline.", changed=True)


def capture_message(
    ctx: Context, incident_id: int, actor: str, author: str | None, ts: str, text: str, how: str
) -> bool:
    """A pinned (or :pushpin:-ed) message joins the timeline at its original time, once (`text` as
    typed, not as Slack encodes it). False when it was already there, or `ts` is not a Slack time."""
    seconds = slack_ts_seconds(ts)
    if seconds is None:
        return False
    at = datetime.fromtimestamp(seconds, tz=ctx.clock().tzinfo)
    with transaction(ctx.engine) as session:
        load(session, incident_id)
        seen = session.exec(
            select(TimelineEntry.data).where(
                col(TimelineEntry.incident_id) == incident_id, col(TimelineEntry.kind) == "pinned"
            )
        )
        if any(d.get("ts") == ts for d in seen):
            return False
        who = f"slack:{author}" if author else actor
        record(session, incident_id, at, who, "pinned", text[:3000], {"ts": ts, "by": actor, "how": how})
    return True
