"""The fake workspace's state (channels, messages, files, views, users) and the lookups handlers share.

Not thread-safe by itself: :class:`~tests.fakeslack.state.FakeSlack` serialises access with its lock.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .model import BOT_ID, BOT_NAME, BOT_USER_ID, TEAM_ID, Channel, FakeFile, SlackError, format_ts

USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
MAX_CHANNEL_NAME = 80


def check_channel_name(name: str) -> None:
    """Slack's channel naming rules (lowercase a-z, 0-9, '-', '_'; at most 80 characters)."""
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > MAX_CHANNEL_NAME:
        raise SlackError("invalid_name_maxlength")
    if not CHANNEL_NAME_RE.match(name):
        raise SlackError("invalid_name_specials")
    if not name.strip("-_"):
        raise SlackError("invalid_name_punctuation")


def make_user(user_id: str, *, email: str | None = None, **profile: Any) -> dict[str, Any]:
    """A users.info-shaped user; unknown users get a plausible synthetic profile (the fake is lenient)."""
    name = profile.pop("name", None) or (email.split("@")[0] if email else user_id.lower())
    real_name = profile.pop("real_name", None) or name.replace(".", " ").title()
    is_bot = profile.pop("is_bot", False)
    return {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name,
        "real_name": real_name,
        "deleted": profile.pop("deleted", False),
        "is_bot": is_bot,
        "is_admin": False,
        "tz": profile.pop("tz", "UTC"),
        "tz_offset": 0,
        "profile": {"email": email, "real_name": real_name, "display_name": name, **profile},
    }


class Workspace:
    """All mutable Slack-side state of one fake workspace."""

    def __init__(self, *, ts_start: float | None, require_membership: bool) -> None:
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, FakeFile] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.used_triggers: set[str] = set()
        self.users: dict[str, dict[str, Any]] = {}
        self.emails: dict[str, str] = {}
        self.missing: set[str] = set()  # well-formed IDs that belong to nobody here (user_not_found)
        self.usergroups: dict[str, dict[str, Any]] = {}  # user group ID (S…) -> the group as Slack shows it
        self.usergroups_restricted = False  # only admins may change groups
        self.dnd: dict[str, dict[str, Any]] = {}  # user id -> Do Not Disturb (see api_dnd)
        self.require_membership = require_membership
        self.scopes: frozenset[str] | None = None  # granted bot scopes; None: every one (no checks)
        self._dm_by_key: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._ts_fixed = ts_start is not None
        self._last_ts = int((ts_start or 0) * 1_000_000)
        self.users[BOT_USER_ID] = make_user(BOT_USER_ID, name=BOT_NAME, is_bot=True, bot_id=BOT_ID)

        # Slack answers chat.postEphemeral with user_not_in_channel when the recipient is not a
        # member; off unless a test asks (`FakeSlack.check_ephemeral_recipients`), like scopes.
        self.ephemeral_recipients_checked = False

    # -- identifiers -----------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """Slack-looking IDs ("C0000001A"): prefix + zero + 7 hex digits, unique per prefix."""
        self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return f"{prefix}0{self._counters[prefix]:07X}"

    def next_ts(self) -> str:
        """A strictly increasing message ts: fixed-start (deterministic) or wall-clock based."""
        step = 100 if self._ts_fixed else 1
        candidate = self._last_ts + step
        if not self._ts_fixed:
            candidate = max(candidate, int(time.time() * 1_000_000))
        self._last_ts = candidate
        return format_ts(candidate)

    # -- users -----------------------------------------------------------------------------------------

    def set_users(self, directory: dict[str, Any]) -> None:
        """Install an email directory: ``{email: user_id}`` or ``{email: {"id": ..., profile...}}``."""
        self.users = {BOT_USER_ID: self.users[BOT_USER_ID]}
        self.emails = {}
        for email, entry in directory.items():
            details = dict(entry) if isinstance(entry, dict) else {"id": entry}
            user_id = str(details.pop("id"))
            self.users[user_id] = make_user(user_id, email=email, **details)
            self.emails[email.lower()] = user_id

    def user(self, user_id: str) -> dict[str, Any]:
        """A user by ID; any well-formed U/W id is accepted (lenient) unless it was removed with
        ``update_user(exists=False)``; others are ``user_not_found``."""
        if user_id in self.users:
            return self.users[user_id]
        if not USER_ID_RE.match(user_id) or user_id in self.missing:
            raise SlackError("user_not_found")
        return make_user(user_id)

    def update_user(self, user_id: str, *, exists: bool = True, **fields: Any) -> None:
        """Change one user's account: ``deleted=True`` deactivates it (as an admin does; users.info
        then says ``deleted: true``), ``is_bot=True`` makes it a bot user, ``exists=False`` makes
        the ID unknown to the workspace. Other fields go to the profile."""
        if not exists:
            self.users.pop(user_id, None)
            self.missing.add(user_id)
            return
        self.missing.discard(user_id)
        user = self.users.get(user_id) or make_user(user_id)
        for key in ("deleted", "is_bot", "name", "real_name", "tz"):
            if key in fields:
                user[key] = fields.pop(key)
        user["profile"].update(fields)
        self.users[user_id] = user

    def dm_target(self, user_id: str, *, opening: bool) -> dict[str, Any]:
        """Who a DM can go to, with Slack's refusals: another bot user is ``cannot_dm_bot``; a
        deactivated user is ``user_disabled`` when a DM is opened (conversations.open). Posting
        into a DM that is already open succeeds even after deactivation, as in real Slack."""
        user = self.user(user_id)
        if user.get("is_bot") and user_id != BOT_USER_ID:
            raise SlackError("cannot_dm_bot")
        if opening and user.get("deleted"):
            raise SlackError("user_disabled")
        return user

    # -- channels --------------------------------------------------------------------------------------

    def add_channel(
        self, name: str, *, is_private: bool = False, members: list[str] | None = None
    ) -> Channel:
        """Create a named channel (callers validate the name); the bot is its creator."""
        channel = Channel(
            id=self.new_id("G" if is_private else "C"),
            name=name,
            created=int(time.time()),
            creator=BOT_USER_ID,
            is_private=is_private,
            members=list(dict.fromkeys(members if members is not None else [BOT_USER_ID])),
        )
        self.channels[channel.id] = channel
        return channel

    @staticmethod
    def archive(channel: Channel) -> None:
        """Archive a channel as Slack does: the name stays taken and the bot is no longer a member
        (people stay listed)."""
        channel.archived = True
        if BOT_USER_ID in channel.members:
            channel.members.remove(BOT_USER_ID)

    def by_name(self, name: str) -> Channel | None:
        """A non-DM channel by name, archived ones included (Slack keeps their names reserved)."""
        name = name.lstrip("#")
        return next((c for c in self.channels.values() if not c.is_im and c.name == name), None)

    def dm_with(self, user_ids: list[str], *, opening: bool = False) -> tuple[Channel, bool]:
        """The stable DM (one user) or group DM (several) with the bot; returns (channel, already_open).
        `opening`: conversations.open (refuses deactivated users), not a post to a user ID."""
        for user_id in user_ids:
            self.dm_target(user_id, opening=opening)
        key = ",".join(sorted(set(user_ids)))
        if key in self._dm_by_key:
            return self.channels[self._dm_by_key[key]], True
        is_mpim = len(set(user_ids)) > 1
        channel = Channel(
            id=self.new_id("G" if is_mpim else "D"),
            name=f"mpdm-{'--'.join(sorted(set(user_ids)))}-1" if is_mpim else "",
            created=int(time.time()),
            creator=BOT_USER_ID,
            is_im=not is_mpim,
            is_mpim=is_mpim,
            user=None if is_mpim else user_ids[0],
            members=[BOT_USER_ID, *sorted(set(user_ids))],
        )
        self.channels[channel.id] = channel
        self._dm_by_key[key] = channel.id
        return channel, False

    def channel(self, channel_id: str) -> Channel:
        """Resolve a channel argument: ID, DM-by-user-ID (like chat.postMessage allows) or ``#name``."""
        if not channel_id:
            raise SlackError("channel_not_found")
        if channel_id in self.channels:
            channel = self.channels[channel_id]
        elif USER_ID_RE.match(channel_id):
            channel = self.dm_with([channel_id])[0]
        elif channel_id.startswith("#") and self.by_name(channel_id):
            channel = self.by_name(channel_id)  # type: ignore[assignment]
        else:
            raise SlackError("channel_not_found")
        if channel.is_private and BOT_USER_ID not in channel.members:
            raise SlackError("channel_not_found")  # private channels are invisible to non-members
        return channel

    def writable_channel(self, channel_id: str, *, public_without_joining: bool = False) -> Channel:
        """A channel the bot may post into: exists, not archived, and (optionally) bot is a member.
        `public_without_joining`: chat.postMessage into a public channel with `chat:write.public`."""
        channel = self.channel(channel_id)
        if channel.archived:
            raise SlackError("is_archived")
        if self.require_membership and BOT_USER_ID not in channel.members:
            public = not (channel.is_private or channel.is_im or channel.is_mpim)
            granted = self.scopes is not None and "chat:write.public" in self.scopes
            if not (public_without_joining and public and granted):
                raise SlackError("not_in_channel")
        return channel

    # -- messages --------------------------------------------------------------------------------------

    @staticmethod
    def message(channel: Channel, ts: str) -> dict[str, Any]:
        """A message (top-level or reply) by ts, or ``message_not_found``."""
        for message in channel.messages:
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")

    def append_message(self, channel: Channel, message: dict[str, Any]) -> dict[str, Any]:
        """Store a new message, keeping the thread parent's reply bookkeeping like Slack does."""
        channel.messages.append(message)
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            parent = next((m for m in channel.messages if m["ts"] == thread_ts), None)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if message.get("user") not in users:
                    users.append(message.get("user"))
                parent["latest_reply"] = message["ts"]
        return message
