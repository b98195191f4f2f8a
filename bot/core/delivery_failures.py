"""What people are told when a Slack call about an incident fails for good.

An outbox row that fails for good (a person archived the channel, Slack refuses the request) used to
be logged and nothing more: people kept waiting for a card, a runbook or a message that would never
come. Now it is said once per incident, operation and error, in the announce channel.
"""

from __future__ import annotations

import re

from bot.core.text import escape

# Slack operations whose failure is worth a line, and how to say what was not done. Posts into the
# announce channel itself (the announcement, the post-mortem link) are left out: a line about them
# would go where they just failed. Pages are left out too: a page that fails is said by the paging
# code itself, with the person's name.
_WHAT = {
    "create_channel": "create the incident channel",
    "post_card": "post the incident card",
    "pin_card": "pin the incident card",
    "sync": "update the incident card and topic",
    "say": "post a message in the incident channel",
    "invite": "invite people to the incident channel",
    "update_pages": "update the page DMs",
    "post_runbook": "post the runbook",
    "update_runbook": "update the runbook",
    "no_runbook": "say that no runbook was found",
    "postmortem": "upload the post-mortem draft",
    "archive": "archive the incident channel",
}

# What a person can do about a Slack error.
_HINTS = {
    "is_archived": "the channel is archived; unarchive it and the bot joins it again",
    "not_in_channel": "the bot is not in the channel and cannot join it; invite it",
    "channel_not_found": "the channel is gone or private without the bot",
    "restricted_action": "a workspace setting forbids it",
    "missing_scope": "the Slack app lacks a permission; reinstall it with the manifest's scopes",
}


def failure_notice(op: str, error: str, incident_id: int) -> str | None:
    """The line to post, or None for operations whose failure is not said in Slack."""
    what = _WHAT.get(op)
    if what is None:
        return None
    line = f":warning: Could not {what} for incident #{incident_id}: Slack answered `{escape(error)}`"
    hint = _HINTS.get(error)
    return f"{line} ({hint})." if hint else f"{line}."


_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def error_label(error: str | None) -> str:
    """A bounded metric label: Slack's error codes as they are; `http 404` as `http_404`; anything
    else (internal messages naming ids) as `other`, so labels cannot grow without bound."""
    if not error:
        return "none"
    if _CODE.fullmatch(error):
        return error
    if re.fullmatch(r"http \d{3}", error):
        return error.replace(" ", "_")
    if error.startswith("network:"):
        return "network"
    return "other"


def continues_in_thread(error: str) -> str:
    """Why an incident lives in a thread: said in its announcement (or first in the thread)."""
    return f"Slack refused to create a channel ({escape(error)}): this incident continues in this thread"
