"""Marks on the messages the bot posts, so a post is made exactly once per outbox row.

Every post carries message metadata naming this database (its instance id), the incident and the
outbox row. When an attempt's outcome is unknown (a timeout, a 5xx, a crash), the next attempt looks
for its mark before posting again. Outbox ids alone are not enough: after a database reset, or with a
second deployment on the same Slack app, another database's row 5 left its own marked posts in the
same DMs and channels.
"""

from __future__ import annotations

from typing import Any

from bot.slack.api import SlackAPI
from bot.store.tables import Outbox

METADATA_EVENT = "incidentbot_outbox"
HISTORY_LIMIT = 200


def mark(instance: str, row: Outbox) -> dict[str, Any]:
    payload: dict[str, Any] = {"instance": instance, "outbox_id": row.id}
    if row.incident_id is not None:  # Slack's metadata values are strings, numbers and booleans
        payload["incident_id"] = row.incident_id
    return {"event_type": METADATA_EVENT, "event_payload": payload}


def is_marked_by(message: dict[str, Any], instance: str, row: Outbox) -> bool:
    """Only a message this database posted for this row of this incident."""
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    return (
        meta.get("event_type") == METADATA_EVENT
        and payload.get("instance") == instance
        and payload.get("incident_id") == row.incident_id
        and payload.get("outbox_id") == row.id
    )


async def messages_where_posted(
    slack: SlackAPI, channel: str, thread_ts: str | None, *, metadata: bool = True
) -> list[dict[str, Any]]:
    """The recent messages of a channel, or of a thread (conversations.history leaves replies out)."""
    extra: dict[str, Any] = {"include_all_metadata": True} if metadata else {}
    if thread_ts:
        found = await slack.call(
            "conversations.replies", channel=channel, ts=thread_ts, limit=HISTORY_LIMIT, **extra
        )
    else:
        found = await slack.call("conversations.history", channel=channel, limit=HISTORY_LIMIT, **extra)
    return list(found.get("messages", []))


async def find_marked(
    slack: SlackAPI, instance: str, row: Outbox, channel: str, thread_ts: str | None = None
) -> str | None:
    """The ts of this row's earlier post in `channel` (or its thread), if Slack has it."""
    for message in await messages_where_posted(slack, channel, thread_ts):
        if is_marked_by(message, instance, row):
            return str(message["ts"])
    return None
