"""chat.*, pins.* and reactions.* methods: posting and maintaining the incident timeline."""

from __future__ import annotations

import time
from typing import Any

from .args import Args
from .blocks import validate_blocks
from .model import APP_ID, BOT_ID, BOT_USER_ID, FAKE_WORKSPACE_URL, TEAM_ID, SlackError
from .registry import api_method
from .workspace import USER_ID_RE, Workspace

MAX_TEXT = 40_000


def invalid_blocks(errors: list[str], error: str = "invalid_blocks") -> SlackError:
    """Slack's shape for schema violations: the codes in ``errors`` and ``response_metadata.messages``."""
    return SlackError(error, errors=errors, response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})


def message_content(args: Args, *, partial: bool = False) -> dict[str, Any]:
    """Validated text/blocks/attachments/metadata of a message.

    ``partial`` (chat.update) returns only the fields that were sent, so unsent ones are retained.
    """
    content: dict[str, Any] = {}
    if args.has("text"):
        content["text"] = args.text("text")
    for key, error in (("blocks", "invalid_blocks_format"), ("attachments", "invalid_attachments")):
        if args.has(key):
            value = args.structured(key, error)
            if value is not None and not isinstance(value, list):
                raise SlackError(error)
            content[key] = value or []
    if args.has("metadata"):
        content["metadata"] = _metadata(args)
    has_body = content.get("text") or content.get("blocks") or content.get("attachments")
    if not has_body and not (partial and ("blocks" in content or "attachments" in content)):
        raise SlackError("no_text")
    if len(content.get("text", "")) > MAX_TEXT:
        raise SlackError("msg_too_long")
    if content.get("blocks"):
        errors = validate_blocks(content["blocks"])
        if errors:
            raise invalid_blocks(errors)
    return content


def _metadata(args: Args) -> dict[str, Any] | None:
    """Message metadata must be ``{"event_type": str, "event_payload": object}``."""
    value = args.structured("metadata", "invalid_metadata_format")
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("event_type"), str)
        or not isinstance(value.get("event_payload", {}), dict)
    ):
        raise SlackError("invalid_metadata_format")
    return value


def bot_message(ts: str, content: dict[str, Any]) -> dict[str, Any]:
    """A message authored by the bot, shaped like Slack's stored message objects."""
    message: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": content.get("text", ""),
        "ts": ts,
    }
    for key in ("blocks", "attachments", "metadata"):
        if content.get(key):
            message[key] = content[key]
    return message


@api_method("chat.postMessage")
def post_message(ws: Workspace, args: Args) -> dict[str, Any]:
    """Post to a channel (or a user's DM); replies via ``thread_ts``, optional ``reply_broadcast``."""
    channel = ws.writable_channel(args.text("channel"), public_without_joining=True)
    content = message_content(args)
    message = bot_message(ws.next_ts(), content)
    if args.text("thread_ts"):
        message["thread_ts"] = args.text("thread_ts")
        if args.flag("reply_broadcast"):
            message["subtype"] = "thread_broadcast"
    ws.append_message(channel, message)
    return {"channel": channel.id, "ts": message["ts"], "message": dict(message)}


@api_method("chat.update")
def update(ws: Workspace, args: Args) -> dict[str, Any]:
    """Edit one of the bot's messages; fields not sent are kept, ``blocks: []`` clears blocks."""
    channel = ws.channel(args.text("channel"))
    message = ws.message(channel, args.require("ts", "message_not_found"))
    if message.get("user") != BOT_USER_ID:
        raise SlackError("cant_update_message")
    content = message_content(args, partial=True)
    for key, value in content.items():
        if value or key == "text":
            message[key] = value
        else:
            message.pop(key, None)
    message["edited"] = {"user": BOT_USER_ID, "ts": ws.next_ts()}
    return {
        "channel": channel.id,
        "ts": message["ts"],
        "text": message.get("text", ""),
        "message": dict(message),
    }


@api_method("chat.postEphemeral")
def post_ephemeral(ws: Workspace, args: Args) -> dict[str, Any]:
    """An ephemeral message for one user; kept apart from history (other users never see it)."""
    channel = ws.writable_channel(args.text("channel"))
    user = args.text("user")
    if not USER_ID_RE.match(user):
        raise SlackError("user_not_found")
    if ws.ephemeral_recipients_checked and not channel.is_im and user not in channel.members:
        raise SlackError("user_not_in_channel")  # the recipient must be in the channel
    message = bot_message(ws.next_ts(), message_content(args))
    message["ephemeral_user"] = user
    if args.text("thread_ts"):
        message["thread_ts"] = args.text("thread_ts")
    channel.ephemeral.append(message)
    return {"message_ts": message["ts"]}


@api_method("chat.delete")
def delete(ws: Workspace, args: Args) -> dict[str, Any]:
    """Delete one of the bot's messages (and unpin it)."""
    channel = ws.channel(args.text("channel"))
    message = ws.message(channel, args.require("ts", "message_not_found"))
    if message.get("user") != BOT_USER_ID:
        raise SlackError("cant_delete_message")
    channel.messages.remove(message)
    if message["ts"] in channel.pins:
        channel.pins.remove(message["ts"])
    return {"channel": channel.id, "ts": message["ts"]}


@api_method("chat.getPermalink")
def get_permalink(ws: Workspace, args: Args) -> dict[str, Any]:
    """A permalink in Slack's ``/archives/<channel>/p<ts without dot>`` format."""
    channel = ws.channel(args.text("channel"))
    ts = ws.message(channel, args.require("message_ts", "message_not_found"))["ts"]
    permalink = f"{FAKE_WORKSPACE_URL}archives/{channel.id}/p{ts.replace('.', '')}"
    return {"channel": channel.id, "permalink": permalink}


@api_method("pins.add")
def pins_add(ws: Workspace, args: Args) -> dict[str, Any]:
    """Pin a message (``already_pinned`` the second time)."""
    channel = ws.channel(args.text("channel"))
    ts = args.require("timestamp", "no_item_specified")
    ws.message(channel, ts)
    if ts in channel.pins:
        raise SlackError("already_pinned")
    channel.pins.insert(0, ts)
    return {}


@api_method("pins.remove")
def pins_remove(ws: Workspace, args: Args) -> dict[str, Any]:
    """Unpin a message (``no_pin`` if it was not pinned)."""
    channel = ws.channel(args.text("channel"))
    ts = args.require("timestamp", "no_item_specified")
    if ts not in channel.pins:
        raise SlackError("no_pin")
    channel.pins.remove(ts)
    return {}


@api_method("pins.list")
def pins_list(ws: Workspace, args: Args) -> dict[str, Any]:
    """Pinned messages, newest pin first."""
    channel = ws.channel(args.text("channel"))
    items = [
        {
            "type": "message",
            "channel": channel.id,
            "created": int(time.time()),
            "created_by": BOT_USER_ID,
            "message": dict(ws.message(channel, ts)),
        }
        for ts in channel.pins
    ]
    return {"items": items}


def _reaction_target(ws: Workspace, args: Args) -> tuple[dict[str, Any], str]:
    """The message and emoji name a reactions.* call refers to."""
    channel = ws.channel(args.text("channel"))
    message = ws.message(channel, args.require("timestamp", "no_item_specified"))
    name = args.require("name", "invalid_name").strip(":")
    return message, name


@api_method("reactions.add")
def reactions_add(ws: Workspace, args: Args) -> dict[str, Any]:
    """Add the bot's reaction (``already_reacted`` the second time)."""
    message, name = _reaction_target(ws, args)
    reactions = message.setdefault("reactions", [])
    reaction = next((r for r in reactions if r["name"] == name), None)
    if reaction is None:
        reaction = {"name": name, "users": [], "count": 0}
        reactions.append(reaction)
    if BOT_USER_ID in reaction["users"]:
        raise SlackError("already_reacted")
    reaction["users"].append(BOT_USER_ID)
    reaction["count"] += 1
    return {}


@api_method("reactions.remove")
def reactions_remove(ws: Workspace, args: Args) -> dict[str, Any]:
    """Remove the bot's reaction (``no_reaction`` if absent)."""
    message, name = _reaction_target(ws, args)
    reaction = next((r for r in message.get("reactions", []) if r["name"] == name), None)
    if reaction is None or BOT_USER_ID not in reaction["users"]:
        raise SlackError("no_reaction")
    reaction["users"].remove(BOT_USER_ID)
    reaction["count"] -= 1
    if not reaction["users"]:
        message["reactions"].remove(reaction)
    return {}
