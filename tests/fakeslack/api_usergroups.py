"""usergroups.list, usergroups.users.list and usergroups.users.update, with Slack's rules
(docs.slack.dev/reference/methods/usergroups.*):

* a group unknown to the workspace is ``no_such_subteam``; a disabled one too, unless
  ``include_disabled`` is set (usergroups.list leaves disabled groups out the same way);
* usergroups.list lists each group's ``users`` only with ``include_users``;
* usergroups.users.update replaces the whole member list with ``users`` (comma-separated IDs, or a
  JSON list): none given is ``no_users_provided`` (a group cannot be emptied: Slack says to disable it
  instead), a malformed ID ``invalid_users``, a bot user ``invalid_user``, an ID not in the workspace
  or a deactivated account ``failed_for_some_users``; ``permission_denied`` when the workspace lets
  only admins change groups (:func:`restrict_usergroup_changes`).

Tests create groups with :func:`add_usergroup` (kept in this module, apart from the rest of the fake).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from .args import Args
from .model import BOT_USER_ID, TEAM_ID, SlackError
from .registry import api_method
from .workspace import USER_ID_RE, Workspace


def _groups(ws: Workspace) -> dict[str, dict[str, Any]]:
    return ws.usergroups


def add_usergroup(
    fake: Any,
    handle: str,
    users: list[str],
    *,
    name: str | None = None,
    disabled: bool = False,
    group_id: str | None = None,
) -> str:
    """Create (or replace) a user group in the fake workspace (not a recorded call); returns its ID (`S…`)."""
    with fake._lock:
        ws = fake._ws
        group_id = group_id or ws.new_id("S")
        now = int(time.time())
        _groups(ws)[group_id] = {
            "id": group_id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "is_subteam": True,
            "name": name or handle.replace("-", " ").title(),
            "description": "",
            "handle": handle,
            "is_external": False,
            "date_create": now,
            "date_update": now,
            "date_delete": now if disabled else 0,
            "auto_type": None,
            "created_by": BOT_USER_ID,
            "updated_by": BOT_USER_ID,
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "users": list(dict.fromkeys(users)),
        }
        return group_id


def restrict_usergroup_changes(fake: Any, restricted: bool = True) -> None:
    """Workspace setting: only admins may change user groups (a bot token gets permission_denied)."""
    with fake._lock:
        fake._ws.usergroups_restricted = restricted


def usergroup_members(fake: Any, group_id: str) -> list[str]:
    with fake._lock:
        return list(_groups(fake._ws)[group_id]["users"])


def _group(ws: Workspace, args: Args) -> dict[str, Any]:
    group = _groups(ws).get(args.require("usergroup", "missing_argument"))
    if group is None or (group["date_delete"] and not args.flag("include_disabled")):
        raise SlackError("no_such_subteam")
    return group


def _shown(group: dict[str, Any], *, users: bool) -> dict[str, Any]:
    shown = copy.deepcopy(group)
    shown["user_count"] = len(group["users"])
    if not users:
        shown.pop("users")
    return shown


@api_method("usergroups.list")
def usergroups_list(ws: Workspace, args: Args) -> dict[str, Any]:
    groups = [g for g in _groups(ws).values() if not g["date_delete"] or args.flag("include_disabled")]
    return {"usergroups": [_shown(g, users=args.flag("include_users")) for g in groups]}


@api_method("usergroups.users.list")
def usergroups_users_list(ws: Workspace, args: Args) -> dict[str, Any]:
    return {"users": list(_group(ws, args)["users"])}


@api_method("usergroups.users.update")
def usergroups_users_update(ws: Workspace, args: Args) -> dict[str, Any]:
    group = _group(ws, args)
    if ws.usergroups_restricted:
        raise SlackError("permission_denied")
    users = list(dict.fromkeys(args.csv("users")))
    if not users:
        raise SlackError("no_users_provided")
    if any(not USER_ID_RE.match(u) for u in users):
        raise SlackError("invalid_users")
    for user_id in users:
        if user_id in ws.missing:
            raise SlackError("failed_for_some_users")
        user = ws.users.get(user_id)
        if user is not None and user.get("is_bot"):
            raise SlackError("invalid_user")
        if user is not None and user.get("deleted"):
            raise SlackError("failed_for_some_users")
    group["users"] = users
    group["date_update"] = int(time.time())
    group["updated_by"] = BOT_USER_ID
    return {"usergroup": _shown(group, users=True)}
