"""conversations.* methods: the incident-channel lifecycle (create, topic, invite, archive, history)."""

from __future__ import annotations

import time
from typing import Any

from .args import Args
from .model import BOT_USER_ID, Channel, SlackError, ts_key
from .paging import paginate
from .registry import api_method
from .workspace import USER_ID_RE, Workspace, check_channel_name

MAX_TOPIC = 250
MAX_PURPOSE = 250


def _managed_channel(ws: Workspace, args: Args) -> Channel:
    """A named (non-DM), non-archived channel for management calls like setTopic/invite/rename."""
    channel = ws.channel(args.text("channel"))
    if channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.archived:
        raise SlackError("is_archived")
    if ws.require_membership and BOT_USER_ID not in channel.members:
        raise SlackError("not_in_channel")
    return channel


@api_method("conversations.create")
def create(ws: Workspace, args: Args) -> dict[str, Any]:
    """Create a channel; names follow Slack's rules and stay reserved even after archiving."""
    name = args.text("name")
    check_channel_name(name)
    if ws.by_name(name) is not None:
        raise SlackError("name_taken")
    channel = ws.add_channel(name, is_private=args.flag("is_private"))
    return {"channel": channel.to_api()}


@api_method("conversations.rename")
def rename(ws: Workspace, args: Args) -> dict[str, Any]:
    """Rename with the same naming rules as create."""
    channel = _managed_channel(ws, args)
    name = args.text("name")
    check_channel_name(name)
    if ws.by_name(name) not in (None, channel):
        raise SlackError("name_taken")
    channel.name = name
    return {"channel": channel.to_api()}


@api_method("conversations.setTopic")
def set_topic(ws: Workspace, args: Args) -> dict[str, Any]:
    """Set the topic (≤250 characters, else ``too_long``)."""
    channel = _managed_channel(ws, args)
    topic = args.text("topic")
    if len(topic) > MAX_TOPIC:
        raise SlackError("too_long")
    channel.topic, channel.topic_last_set = topic, int(time.time())
    return {"channel": channel.to_api()}


@api_method("conversations.setPurpose")
def set_purpose(ws: Workspace, args: Args) -> dict[str, Any]:
    """Set the purpose (≤250 characters, else ``too_long``)."""
    channel = _managed_channel(ws, args)
    purpose = args.text("purpose")
    if len(purpose) > MAX_PURPOSE:
        raise SlackError("too_long")
    channel.purpose, channel.purpose_last_set = purpose, int(time.time())
    return {"channel": channel.to_api()}


@api_method("conversations.info")
def info(ws: Workspace, args: Args) -> dict[str, Any]:
    """One conversation object."""
    channel = ws.channel(args.text("channel"))
    return {"channel": channel.to_api(num_members=args.flag("include_num_members"))}


@api_method("conversations.list")
def list_(ws: Workspace, args: Args) -> dict[str, Any]:
    """Conversations in creation order, filtered by ``types``/``exclude_archived``, cursor-paginated."""
    types = set(args.csv("types") or ["public_channel"])
    exclude_archived = args.flag("exclude_archived")

    def visible(channel: Channel) -> bool:
        kind = (
            "im"
            if channel.is_im
            else "mpim"
            if channel.is_mpim
            else "private_channel"
            if channel.is_private
            else "public_channel"
        )
        if kind not in types or (exclude_archived and channel.archived):
            return False
        return kind == "public_channel" or BOT_USER_ID in channel.members

    matching = [c for c in ws.channels.values() if visible(c)]
    page, metadata = paginate(matching, args)
    return {"channels": [c.to_api(num_members=True) for c in page], "response_metadata": metadata}


@api_method("conversations.members")
def members(ws: Workspace, args: Args) -> dict[str, Any]:
    """Member user IDs, cursor-paginated."""
    channel = ws.channel(args.text("channel"))
    page, metadata = paginate(channel.members, args)
    return {"members": page, "response_metadata": metadata}


@api_method("conversations.invite")
def invite(ws: Workspace, args: Args) -> dict[str, Any]:
    """Add users; ``already_in_channel`` only when every requested user is already a member."""
    channel = _managed_channel(ws, args)
    users = args.csv("users")
    if not users:
        raise SlackError("no_user")
    for user_id in users:
        if not USER_ID_RE.match(user_id):
            raise SlackError("user_not_found")
        if user_id == BOT_USER_ID:
            raise SlackError("cant_invite_self")
    new = [u for u in dict.fromkeys(users) if u not in channel.members]
    if not new:
        raise SlackError("already_in_channel")
    channel.members.extend(new)
    return {"channel": channel.to_api()}


@api_method("conversations.kick")
def kick(ws: Workspace, args: Args) -> dict[str, Any]:
    """Remove one user."""
    channel = _managed_channel(ws, args)
    user_id = args.require("user", "user_not_found")
    if user_id not in channel.members:
        raise SlackError("not_in_channel")
    channel.members.remove(user_id)
    return {}


@api_method("conversations.join")
def join(ws: Workspace, args: Args) -> dict[str, Any]:
    """The bot joins; joining again answers ok with Slack's ``already_in_channel`` warning."""
    channel = ws.channel(args.text("channel"))
    if channel.archived:
        raise SlackError("is_archived")
    if channel.is_im or channel.is_private:
        raise SlackError("method_not_supported_for_channel_type")
    if BOT_USER_ID in channel.members:
        return {
            "channel": channel.to_api(),
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    channel.members.append(BOT_USER_ID)
    return {"channel": channel.to_api()}


@api_method("conversations.leave")
def leave(ws: Workspace, args: Args) -> dict[str, Any]:
    """The bot leaves."""
    channel = ws.channel(args.text("channel"))
    if BOT_USER_ID not in channel.members:
        return {"not_in_channel": True}
    channel.members.remove(BOT_USER_ID)
    return {}


@api_method("conversations.archive")
def archive(ws: Workspace, args: Args) -> dict[str, Any]:
    """Archive (``already_archived`` the second time); the name stays taken."""
    channel = ws.channel(args.text("channel"))
    if channel.is_im or channel.is_mpim:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.archived:
        raise SlackError("already_archived")
    ws.archive(channel)
    return {}


@api_method("conversations.unarchive")
def unarchive(ws: Workspace, args: Args) -> dict[str, Any]:
    """Unarchive (``not_archived`` if it was not).

    Slack's documented bug: bot tokens cannot unarchive. Archiving took the bot out of the channel and
    the call answers ``not_in_channel`` (while ``conversations.join`` answers ``is_archived``); only a
    person (``FakeSlack.unarchive_channel``) can bring the channel back, and the bot must join again.
    """
    channel = ws.channel(args.text("channel"))
    if not channel.archived:
        raise SlackError("not_archived")
    if BOT_USER_ID not in channel.members:
        raise SlackError("not_in_channel")
    channel.archived = False
    return {}


@api_method("conversations.open")
def open_(ws: Workspace, args: Args) -> dict[str, Any]:
    """Open (or find) the DM with one user (``D...``) or group DM with several; stable per user set."""
    if args.text("channel"):
        channel = ws.channel(args.text("channel"))
        return {"channel": channel.to_api() if args.flag("return_im") else {"id": channel.id}}
    users = args.csv("users")
    if not users:
        raise SlackError("users_list_not_supplied")
    channel, already_open = ws.dm_with(users, opening=True)
    body: dict[str, Any] = {"channel": channel.to_api() if args.flag("return_im") else {"id": channel.id}}
    if already_open:
        body.update({"no_op": True, "already_open": True})
    return body


def _render(message: dict[str, Any], include_metadata: bool) -> dict[str, Any]:
    """A stored message as history returns it: metadata only when explicitly requested."""
    shown = dict(message)
    if not include_metadata:
        shown.pop("metadata", None)
    return shown


def _in_window(ts: str, args: Args) -> bool:
    """Slack's oldest/latest window (exclusive unless ``inclusive``)."""
    key, inclusive = ts_key(ts), args.flag("inclusive")
    if args.text("oldest"):
        oldest = ts_key(args.text("oldest"))
        if key < oldest or (key == oldest and not inclusive):
            return False
    if args.text("latest"):
        latest = ts_key(args.text("latest"))
        if key > latest or (key == latest and not inclusive):
            return False
    return True


@api_method("conversations.history")
def history(ws: Workspace, args: Args) -> dict[str, Any]:
    """Top-level messages newest first (thread replies excluded unless broadcast), paginated."""
    channel = ws.channel(args.text("channel"))
    top_level = [
        m
        for m in reversed(channel.messages)
        if (m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast")
        and _in_window(m["ts"], args)
    ]
    page, metadata = paginate(top_level, args, default_limit=100, max_limit=999)
    include = args.flag("include_all_metadata")
    return {
        "messages": [_render(m, include) for m in page],
        "has_more": bool(metadata["next_cursor"]),
        "pin_count": len(channel.pins),
        "response_metadata": metadata,
    }


@api_method("conversations.replies")
def replies(ws: Workspace, args: Args) -> dict[str, Any]:
    """A thread: parent then replies, oldest first."""
    channel = ws.channel(args.text("channel"))
    parent_ts = args.require("ts", "thread_not_found")
    try:
        ws.message(channel, parent_ts)
    except SlackError:
        raise SlackError("thread_not_found") from None
    thread = [m for m in channel.messages if m["ts"] == parent_ts or m.get("thread_ts") == parent_ts]
    page, metadata = paginate(thread, args, default_limit=1000)
    include = args.flag("include_all_metadata")
    return {
        "messages": [_render(m, include) for m in page],
        "has_more": bool(metadata["next_cursor"]),
        "response_metadata": metadata,
    }
