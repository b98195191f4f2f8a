"""``FakeSlack``: the thread-safe facade tests talk to (state, call recording, faults, setup helpers).

The HTTP server runs in another thread, so every access goes through one re-entrant lock. State
accessors (``channels``, ``channel_by_name``, ``files``...) return the *live* objects inside fresh
containers: a test can hold a ``Channel`` and poll ``channel.topic`` while the bot works (treat them as
read-only). Recorded calls are deep copies taken when the call completed, so they never change.
Use :meth:`FakeSlack.state_json` for a consistent, detached copy of everything.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from threading import Condition, RLock
from typing import Any

from . import api_chat, api_conversations, api_dnd, api_misc, api_usergroups  # noqa: F401  (registers the handlers)
from .args import Args, normalize_args
from .faults import Fault, FaultBook
from .model import (
    BOT_USER_ID,
    DEFAULT_TOKEN,
    UPLOAD_METHOD,
    ApiResult,
    Call,
    Channel,
    FakeFile,
    SlackError,
)
from .mrkdwn import Reading
from .mrkdwn import read as read_mrkdwn
from .registry import HANDLERS
from .scopes import check_scopes
from .socket_mode import APP_TOKEN_METHODS, SocketModeHub
from .workspace import Workspace, check_channel_name

DEFAULT_TS_START = 1732400000.0


class FakeSlack:
    """A fake Slack workspace reachable through :func:`tests.fakeslack.server.create_app`."""

    def __init__(
        self,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        *,
        users: dict[str, Any] | None = None,
        ts_start: float | None = DEFAULT_TS_START,
        require_membership: bool = True,
    ) -> None:
        """``ts_start=None`` makes message ts follow the wall clock instead of a deterministic sequence;
        ``require_membership`` makes posting to a channel the bot has not joined fail like Slack."""
        self._lock = RLock()
        self._changed = Condition(self._lock)
        self.tokens = set(tokens)
        self._ts_start = ts_start
        self._require_membership = require_membership
        self._directory: dict[str, Any] = dict(users or {})
        self._scopes: frozenset[str] | None = None  # see grant_scopes
        self._accounts: dict[str, dict[str, Any]] = {}  # user id -> account changes (update_user)
        self._ws = self._new_workspace()
        self._calls: list[Call] = []
        self._call_seq = 0  # never reset by clear_calls, so `since=` polling stays valid
        self._faults = FaultBook()
        self.socket_mode = SocketModeHub()

    def _new_workspace(self) -> Workspace:
        ws = Workspace(ts_start=self._ts_start, require_membership=self._require_membership)
        ws.set_users(self._directory)
        ws.scopes = self._scopes
        self._apply_accounts(ws)
        return ws

    def _apply_accounts(self, ws: Workspace) -> None:
        for user_id, fields in self._accounts.items():
            ws.update_user(user_id, **fields)

    # -- configuration -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget channels, messages, files, views, calls and faults; keep tokens and the user directory."""
        with self._lock:
            self._ws = self._new_workspace()
            self._calls.clear()
            self._faults.clear()
            self._changed.notify_all()

    def set_users(self, directory: dict[str, Any]) -> None:
        """Email directory for users.lookupByEmail/users.info: ``{email: user_id | {"id": ..., ...}}``
        (it also forgets :meth:`update_user` changes)."""
        with self._lock:
            self._directory = dict(directory)
            self._accounts = {}  # a new directory: earlier account changes go with the old one
            self._ws.set_users(self._directory)

    def grant_scopes(self, scopes: Iterable[str] | None) -> None:
        """Answer `missing_scope` like Slack for calls these bot scopes don't cover (None: no checks)."""
        with self._lock:
            self._scopes = None if scopes is None else frozenset(scopes)
            self._ws.scopes = self._scopes

    def update_user(self, user_id: str, **fields: Any) -> dict[str, Any] | None:
        """Change one account as a workspace admin would: ``deleted=True`` deactivates
        (conversations.open then answers ``user_disabled``), ``is_bot=True`` makes a bot user
        (``cannot_dm_bot``), ``exists=False`` makes the ID unknown (``user_not_found``). Kept across
        :meth:`reset`, not across :meth:`set_users` (a new directory). Returns the user as
        users.info shows it."""
        with self._lock:
            self._accounts[user_id] = {**self._accounts.get(user_id, {}), **fields}
            self._ws.update_user(user_id, **fields)
            return copy.deepcopy(self._ws.users.get(user_id))

    def deactivate_user(self, user_id: str) -> None:
        """An admin deactivates the account (users.info: ``deleted: true``)."""
        self.update_user(user_id, deleted=True)

    def set_usergroup(self, group_id: str, users: Iterable[str]) -> None:
        """Create or replace a user group with this ID (``usergroups.*`` show it)."""
        api_usergroups.add_usergroup(self, group_id.lower(), list(users), group_id=group_id)

    def set_dnd(
        self, user_id: str, *, start: float = 0, end: float = 0, enabled: bool = True, snooze_until: float = 0
    ) -> None:
        """The user's Do Not Disturb: a scheduled window [start, end) (Unix seconds; `enabled`
        False: no schedule), and a snooze until `snooze_until` (visible only to the user itself)."""
        with self._lock:
            self._ws.dnd[user_id] = {
                "enabled": enabled,
                "start": start or 1,
                "end": end or 1,
                "snooze_until": snooze_until,
            }

    def add_token(self, token: str) -> None:
        """Accept another bot token."""
        with self._lock:
            self.tokens.add(token)

    def add_app_token(self, token: str) -> None:
        """Accept an app-level token (`xapp-...`) for Socket Mode (`apps.connections.open`)."""
        with self._lock:
            self.socket_mode.app_tokens.add(token)

    def create_channel(
        self,
        name: str,
        *,
        members: Iterable[str] = (),
        bot_member: bool = True,
        is_private: bool = False,
        archived: bool = False,
    ) -> Channel:
        """Pre-existing channel for a test (not recorded as a call). Name rules still apply."""
        check_channel_name(name)
        with self._lock:
            if self._ws.by_name(name):
                raise SlackError("name_taken")
            member_list = ([BOT_USER_ID] if bot_member else []) + list(members)
            channel = self._ws.add_channel(name, is_private=is_private, members=member_list)
            channel.archived = archived
            self._changed.notify_all()
            return channel

    def add_message(
        self,
        channel_id: str,
        text: str,
        *,
        user: str = "U0HUMAN",
        thread_ts: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Simulate a human posting (e.g. a responder's timeline note); returns the stored message."""
        with self._lock:
            channel = self._ws.channel(channel_id)
            message = {"type": "message", "user": user, "text": text, "ts": self._ws.next_ts(), **fields}
            if thread_ts:
                message["thread_ts"] = thread_ts
            self._ws.append_message(channel, message)
            self._changed.notify_all()
            return message

    def check_ephemeral_recipients(self, on: bool = True) -> None:
        """chat.postEphemeral answers user_not_in_channel, as Slack does, when the recipient is not
        in the channel (off by default: tests written before it click as people never invited)."""
        with self._lock:
            self._ws.ephemeral_recipients_checked = on

    def archive_channel(self, channel_id: str) -> None:
        """A person archives a channel (the bot drops out of it, as in Slack)."""
        with self._lock:
            self._ws.archive(self._ws.channels[channel_id])
            self._changed.notify_all()

    def unarchive_channel(self, channel_id: str) -> None:
        """A person unarchives a channel; the bot is not a member again until it joins."""
        with self._lock:
            self._ws.channels[channel_id].archived = False
            self._changed.notify_all()

    def remove_member(self, channel_id: str, user: str = BOT_USER_ID) -> None:
        """A person removes someone (by default the bot) from a channel."""
        with self._lock:
            members = self._ws.channels[channel_id].members
            if user in members:
                members.remove(user)
            self._changed.notify_all()

    # -- faults --------------------------------------------------------------------------------------

    def add_fault(self, spec: dict[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
        """Install a fault rule (see :mod:`tests.fakeslack.faults`); returns it with its ``id``."""
        with self._lock:
            return self._faults.add({**(spec or {}), **kwargs}).to_dict()

    def remove_fault(self, fault_id: int) -> bool:
        """Uninstall one fault rule."""
        with self._lock:
            return self._faults.remove(fault_id)

    def clear_faults(self) -> None:
        """Uninstall all fault rules."""
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[dict[str, Any]]:
        """Installed rules with their matched/fired counters."""
        with self._lock:
            return self._faults.snapshot()

    def take_fault(self, method: str, channel: str | None = None) -> Fault | None:
        """The rule breaking this call, if any (a copy: the server applies it outside the lock)."""
        with self._lock:
            fault = self._faults.take(method, channel)
            return copy.deepcopy(fault) if fault else None

    # -- dispatch ------------------------------------------------------------------------------------

    def check_token(self, token: str | None) -> None:
        """Slack's auth errors (answered with HTTP 200)."""
        if not token:
            raise SlackError("not_authed")
        if token.startswith("xapp-"):  # app-level tokens only open Socket Mode connections
            raise SlackError("not_allowed_token_type")
        if token not in self.tokens:
            raise SlackError("invalid_auth")

    def handle(
        self,
        method: str,
        args: dict[str, Any],
        token: str | None,
        *,
        base_url: str = "",
        arrival: tuple[float, float] | None = None,
        fault: Fault | None = None,
    ) -> ApiResult:
        """Run one Web API call against the state and record it.

        Faults are applied by the caller; ``fault`` is only recorded (a ``slow`` call still takes effect).
        """
        arrival = arrival or (time.monotonic(), time.time())
        args = normalize_args(args)
        with self._lock:
            try:
                handler = HANDLERS.get(method)
                if method in APP_TOKEN_METHODS:
                    self.socket_mode.check_app_token(token)
                    body = {"ok": True, **self.socket_mode.open(base_url)}
                elif handler is None:
                    raise SlackError("unknown_method", req_method=method)
                else:
                    self.check_token(token)
                    if self._ws.scopes is not None:
                        check_scopes(self._ws, method, args, self._ws.scopes)
                    body = {"ok": True, **handler(self._ws, Args(args, base_url=base_url))}
            except SlackError as exc:
                body = exc.body()
            result = ApiResult(status=200, body=copy.deepcopy(body))
            self.record(method, args, token, result, fault, arrival)
            return result

    def handle_upload(
        self, file_id: str, content: bytes, arrival: tuple[float, float], fault: Fault | None = None
    ) -> ApiResult:
        """The raw POST to an upload_url (no token needed, like Slack's pre-signed URLs)."""
        with self._lock:
            try:
                file = api_misc.store_upload(self._ws, file_id, content)
                result = ApiResult(200, {"ok": True, "text": f"OK - {len(file.content or b'')}"})
            except SlackError as exc:
                result = ApiResult(404, exc.body())
            args = {"file_id": file_id, "bytes": len(content)}
            self.record(UPLOAD_METHOD, args, None, result, fault, arrival)
            return result

    def api(self, method: str, token: str | None = DEFAULT_TOKEN, **args: Any) -> dict[str, Any]:
        """Call a method in-process (no HTTP, no faults) — handy for arranging state or unit tests."""
        return self.handle(method, args, token).body

    def record(
        self,
        method: str,
        args: dict[str, Any],
        token: str | None,
        result: ApiResult | None,
        fault: Fault | None,
        arrival: tuple[float, float],
    ) -> Call:
        """Append one call to the log and wake :meth:`wait_for_call` waiters."""
        with self._lock:
            call = Call(
                index=self._call_seq,
                method=method,
                args=copy.deepcopy(args),
                token=token,
                response=copy.deepcopy(result.body) if result else None,
                status=result.status if result else None,
                headers=dict(result.headers) if result else {},
                fault=fault.to_dict() if fault else None,
                monotonic=arrival[0],
                wall=arrival[1],
                duration=time.monotonic() - arrival[0],
            )
            self._call_seq += 1
            self._calls.append(call)
            self._changed.notify_all()
            return call

    # -- inspection ----------------------------------------------------------------------------------

    def clear_calls(self) -> None:
        """Forget recorded calls only (state and faults stay)."""
        with self._lock:
            self._calls.clear()

    @property
    def calls(self) -> list[Call]:
        """Every recorded call, in the order outcomes were decided."""
        with self._lock:
            return list(self._calls)

    @property
    def next_call_index(self) -> int:
        """The index the next recorded call will get (a mark for `since=` polling)."""
        with self._lock:
            return self._call_seq

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method (faulted ones included; filter on ``call.fault``)."""
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def wait_for_call(
        self,
        method: str,
        *,
        timeout: float = 5.0,
        predicate: Callable[[Call], bool] | None = None,
        count: int = 1,
    ) -> list[Call]:
        """Block until ``count`` matching calls were recorded (for a bot running asynchronously)."""

        def matching() -> list[Call]:
            return [c for c in self._calls if c.method == method and (predicate is None or predicate(c))]

        with self._lock:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} call(s) to {method}, saw {len(matching())}")
            return matching()

    @property
    def channels(self) -> dict[str, Channel]:
        """All conversations by ID (live Channel objects, new dict)."""
        with self._lock:
            return dict(self._ws.channels)

    def channel(self, channel_id: str) -> Channel:
        """One conversation by ID (live); KeyError if unknown."""
        with self._lock:
            return self._ws.channels[channel_id]

    def channel_by_name(self, name: str) -> Channel | None:
        """A channel by name (archived included), or None (live)."""
        with self._lock:
            return self._ws.by_name(name)

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Messages in a channel, oldest first, thread replies included (new list of live dicts)."""
        with self._lock:
            return list(self._ws.channels[channel_id].messages)

    @property
    def files(self) -> dict[str, FakeFile]:
        """Uploaded files by ID (live); ``.content`` holds the bytes, ``.text`` the decoded text."""
        with self._lock:
            return dict(self._ws.files)

    def file_content(self, file_id: str) -> bytes | None:
        """The uploaded bytes of one file."""
        with self._lock:
            return self._ws.files[file_id].content

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """Opened/updated/published views by ID (live)."""
        with self._lock:
            return dict(self._ws.views)

    def read(self, text: str, viewer: str | None = None) -> Reading:
        """How Slack shows mrkdwn `text` to `viewer` (their profile's time zone; UTC without one)."""
        with self._lock:
            users = copy.deepcopy(self._ws.users)
        tz = str(users.get(viewer or "", {}).get("tz") or "UTC")
        return read_mrkdwn(text, users, tz)

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """Known users by ID (the directory plus the bot; live)."""
        with self._lock:
            return dict(self._ws.users)

    def state_json(self) -> dict[str, Any]:
        """Everything, JSON-ready, for ``GET /_fake/state``."""
        with self._lock:
            return {
                "channels": {cid: c.to_dict() for cid, c in self._ws.channels.items()},
                "files": {fid: f.to_dict() for fid, f in self._ws.files.items()},
                "views": copy.deepcopy(self._ws.views),
                "users": copy.deepcopy(self._ws.users),
                "faults": self._faults.snapshot(),
                "call_count": len(self._calls),
            }
