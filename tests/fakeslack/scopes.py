"""OAuth scopes: the bot-token scope each Web API method needs, as Slack's method reference pages
(docs.slack.dev/reference/methods/<method>) list it, and Slack's `missing_scope` answer.

Conversations API methods need the scope of the kind of conversation they act on: a public
channel's, a private channel's, a DM's or a group DM's. A method that needs no scope maps to {}.
Scope checks are off until a test grants scopes (``FakeSlack.grant_scopes``), e.g. the manifest's.
"""

from __future__ import annotations

from typing import Any

from .model import SlackError
from .workspace import Workspace

PUBLIC, PRIVATE, IM, MPIM = "public_channel", "private_channel", "im", "mpim"
ANY = "*"  # the same scope whatever the conversation

_READ = {PUBLIC: "channels:read", PRIVATE: "groups:read", IM: "im:read", MPIM: "mpim:read"}
_HISTORY = {PUBLIC: "channels:history", PRIVATE: "groups:history", IM: "im:history", MPIM: "mpim:history"}
_MANAGE = {PUBLIC: "channels:manage", PRIVATE: "groups:write", IM: "im:write", MPIM: "mpim:write"}

METHOD_SCOPES: dict[str, dict[str, str]] = {
    "auth.test": {},
    "bots.info": {ANY: "users:read"},
    "chat.delete": {ANY: "chat:write"},
    "chat.getPermalink": {},
    "chat.postEphemeral": {ANY: "chat:write"},
    "chat.postMessage": {ANY: "chat:write"},
    "chat.update": {ANY: "chat:write"},
    "conversations.archive": _MANAGE,
    "conversations.create": {PUBLIC: "channels:manage", PRIVATE: "groups:write"},
    "conversations.history": _HISTORY,
    "conversations.info": _READ,
    "conversations.invite": _MANAGE,
    "conversations.join": {PUBLIC: "channels:join"},
    "conversations.kick": _MANAGE,
    "conversations.leave": _MANAGE,
    "conversations.list": _READ,
    "conversations.members": _READ,
    "conversations.open": {IM: "im:write", MPIM: "mpim:write"},
    "conversations.rename": _MANAGE,
    "conversations.replies": _HISTORY,
    "conversations.setPurpose": _MANAGE,
    "conversations.setTopic": _MANAGE,
    "conversations.unarchive": _MANAGE,
    "dnd.info": {ANY: "dnd:read"},
    "files.completeUploadExternal": {ANY: "files:write"},
    "files.getUploadURLExternal": {ANY: "files:write"},
    "files.info": {ANY: "files:read"},
    "pins.add": {ANY: "pins:write"},
    "pins.list": {ANY: "pins:read"},
    "pins.remove": {ANY: "pins:write"},
    "reactions.add": {ANY: "reactions:write"},
    "reactions.remove": {ANY: "reactions:write"},
    "usergroups.list": {ANY: "usergroups:read"},
    "usergroups.users.list": {ANY: "usergroups:read"},
    "usergroups.users.update": {ANY: "usergroups:write"},
    "users.info": {ANY: "users:read"},
    "users.list": {ANY: "users:read"},
    "users.lookupByEmail": {ANY: "users:read.email"},
    "views.open": {},
    "views.publish": {},
    "views.push": {},
    "views.update": {},
}

# Posting to a public channel the bot is not a member of (Slack: chat.postMessage, "chat:write.public").
POST_WITHOUT_JOINING = "chat:write.public"


def _kinds(ws: Workspace, method: str, args: dict[str, Any]) -> set[str]:
    """The kinds of conversation this call acts on (empty: unknown, let the method answer)."""
    if method == "conversations.create":
        return {PRIVATE if str(args.get("is_private", "")).lower() in ("1", "true") else PUBLIC}
    if method == "conversations.list":
        return {t.strip() for t in str(args.get("types") or PUBLIC).split(",") if t.strip()}
    if method == "conversations.open":
        return {MPIM if len(str(args.get("users", "")).split(",")) > 1 else IM}
    channel = ws.channels.get(str(args.get("channel") or args.get("channel_id") or ""))
    if channel is None:
        return {IM} if str(args.get("channel", "")).startswith(("U", "W")) else set()
    if channel.is_im:
        return {IM}
    if channel.is_mpim:
        return {MPIM}
    return {PRIVATE if channel.is_private else PUBLIC}


def check_scopes(ws: Workspace, method: str, args: dict[str, Any], granted: frozenset[str]) -> None:
    """Raise Slack's `missing_scope` (with `needed` and `provided`) when `granted` lacks a scope."""
    table = METHOD_SCOPES.get(method)
    if table is None:
        return  # a method without a table entry is not scope-checked (unknown_method answers)
    kinds = [ANY] if ANY in table else sorted(_kinds(ws, method, args))
    needed = [table[kind] for kind in kinds if kind in table]
    missing = [scope for scope in needed if scope not in granted]
    if missing:
        raise SlackError("missing_scope", needed=",".join(missing), provided=",".join(sorted(granted)))
