"""auth.test, bots.info, users.*, views.* and files.* (upload v2) methods."""

from __future__ import annotations

import time
from typing import Any

from .api_chat import bot_message, invalid_blocks
from .args import Args
from .blocks import validate_view
from .model import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    FAKE_WORKSPACE_URL,
    TEAM_ID,
    TEAM_NAME,
    FakeFile,
    SlackError,
)
from .paging import paginate
from .registry import api_method
from .workspace import Workspace


@api_method("auth.test")
def auth_test(ws: Workspace, args: Args) -> dict[str, Any]:
    """Who the token belongs to: always the fake bot. Like Slack's documented answer for a bot token,
    it names the bot (`bot_id`) but not its app: `bots.info` does."""
    return {
        "url": FAKE_WORKSPACE_URL,
        "team": TEAM_NAME,
        "user": BOT_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


@api_method("bots.info")
def bots_info(ws: Workspace, args: Args) -> dict[str, Any]:
    """The fake bot by its ``bot`` ID (with its ``app_id`` and ``user_id``); anything else is
    ``bot_not_found``, as Slack answers."""
    if args.text("bot") != BOT_ID:
        raise SlackError("bot_not_found")
    icons = {f"image_{n}": f"https://fake.slack.com/bot_{n}.png" for n in (36, 48, 72)}
    bot = {"id": BOT_ID, "deleted": False, "name": BOT_NAME, "updated": 1449272004}
    return {"bot": {**bot, "app_id": APP_ID, "user_id": BOT_USER_ID, "icons": icons}}


@api_method("users.info")
def users_info(ws: Workspace, args: Args) -> dict[str, Any]:
    """A user from the directory, or a synthetic one for any well-formed ID."""
    return {"user": ws.user(args.require("user", "user_not_found"))}


@api_method("users.lookupByEmail")
def users_lookup_by_email(ws: Workspace, args: Args) -> dict[str, Any]:
    """Only users in the configured directory can be found by email."""
    user_id = ws.emails.get(args.text("email").strip().lower())
    if user_id is None:
        raise SlackError("users_not_found")
    return {"user": ws.users[user_id]}


@api_method("users.list")
def users_list(ws: Workspace, args: Args) -> dict[str, Any]:
    """The directory plus the bot, cursor-paginated."""
    page, metadata = paginate(list(ws.users.values()), args, default_limit=200)
    return {"members": page, "cache_ts": int(time.time()), "response_metadata": metadata}


# -- views ---------------------------------------------------------------------------------------------


def _view_arg(args: Args) -> dict[str, Any]:
    """The ``view`` argument, validated; Slack answers schema violations on views with invalid_arguments."""
    view = args.structured("view", "invalid_arguments")
    if view is None:
        raise SlackError("invalid_arguments")
    errors = validate_view(view)
    if errors:
        raise invalid_blocks(errors, error="invalid_arguments")
    return view


def _consume_trigger(ws: Workspace, args: Args) -> None:
    """trigger_ids are single use in Slack; reusing one is ``exchanged_trigger_id``."""
    trigger = args.text("trigger_id") or args.text("interactivity_pointer")
    if not trigger:
        raise SlackError("invalid_arguments")
    if trigger in ws.used_triggers:
        raise SlackError("exchanged_trigger_id")
    ws.used_triggers.add(trigger)


def _store_view(
    ws: Workspace, view: dict[str, Any], *, view_id: str | None = None, root_view_id: str | None = None
) -> dict[str, Any]:
    """Persist a view the way Slack echoes it back (id, hash, empty state...)."""
    external_id = view.get("external_id", "")
    if external_id and any(
        v.get("external_id") == external_id and v["id"] != view_id for v in ws.views.values()
    ):
        raise SlackError("duplicate_external_id")
    view_id = view_id or ws.new_id("V")
    stored = {
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        "submit": None,
        "close": None,
        "clear_on_close": False,
        "notify_on_close": False,
        **view,
        "id": view_id,
        "team_id": TEAM_ID,
        "app_id": APP_ID,
        "bot_id": BOT_ID,
        "state": {"values": {}},
        "hash": f"{int(time.time())}.{ws.new_id('H')}",
        "root_view_id": root_view_id or view_id,
        "previous_view_id": None,
    }
    ws.views[view_id] = stored
    return stored


@api_method("views.open")
def views_open(ws: Workspace, args: Args) -> dict[str, Any]:
    """Open a modal for a trigger."""
    view = _view_arg(args)
    _consume_trigger(ws, args)
    return {"view": _store_view(ws, view)}


@api_method("views.push")
def views_push(ws: Workspace, args: Args) -> dict[str, Any]:
    """Push a modal onto the stack (modelled like open)."""
    view = _view_arg(args)
    _consume_trigger(ws, args)
    return {"view": _store_view(ws, view)}


@api_method("views.update")
def views_update(ws: Workspace, args: Args) -> dict[str, Any]:
    """Replace a view by ``view_id`` or ``external_id``; a stale ``hash`` is ``hash_conflict``."""
    view = _view_arg(args)
    external_id = args.text("external_id")
    current = ws.views.get(args.text("view_id")) or next(
        (v for v in ws.views.values() if external_id and v["external_id"] == external_id), None
    )
    if current is None:
        raise SlackError("not_found")
    if args.text("hash") and args.text("hash") != current["hash"]:
        raise SlackError("hash_conflict")
    return {"view": _store_view(ws, view, view_id=current["id"], root_view_id=current["root_view_id"])}


@api_method("views.publish")
def views_publish(ws: Workspace, args: Args) -> dict[str, Any]:
    """Publish a Home tab for a user (one per user)."""
    view = _view_arg(args)
    user_id = args.require("user_id", "invalid_arguments")
    ws.user(user_id)
    existing = next((v for v in ws.views.values() if v.get("_home_user") == user_id), None)
    stored = _store_view(ws, view, view_id=existing["id"] if existing else None)
    stored["_home_user"] = user_id
    return {"view": {k: v for k, v in stored.items() if not k.startswith("_")}}


# -- files (upload v2) ---------------------------------------------------------------------------------


@api_method("files.getUploadURLExternal")
def files_get_upload_url(ws: Workspace, args: Args) -> dict[str, Any]:
    """Step 1: reserve a file id and hand out an upload URL on this same server."""
    filename = args.require("filename", "invalid_arguments")
    length = args.integer("length", -1)
    if length < 0:
        raise SlackError("invalid_arguments")
    file = FakeFile(
        id=ws.new_id("F"),
        filename=filename,
        length=length,
        created=int(time.time()),
        alt_txt=args.text("alt_txt") or None,
        snippet_type=args.text("snippet_type") or None,
    )
    ws.files[file.id] = file
    return {"upload_url": f"{args.base_url}upload/v1/{file.id}", "file_id": file.id}


def store_upload(ws: Workspace, file_id: str, content: bytes) -> FakeFile:
    """Step 2 (raw POST to the upload URL): keep the bytes until the upload is completed."""
    file = ws.files.get(file_id)
    if file is None:
        raise SlackError("file_not_found")
    file.content = content
    return file


@api_method("files.completeUploadExternal")
def files_complete_upload(ws: Workspace, args: Args) -> dict[str, Any]:
    """Step 3: finish uploads and share them (one message with all files) in channel_id/channels."""
    entries = args.structured("files", "invalid_arguments")
    if not isinstance(entries, list) or not entries:
        raise SlackError("invalid_arguments")
    files = []
    for entry in entries:
        file = ws.files.get(str(entry.get("id"))) if isinstance(entry, dict) else None
        if file is None or file.content is None or file.completed:
            raise SlackError("file_not_found")
        files.append((file, entry))
    targets = args.csv("channels") or ([args.text("channel_id")] if args.text("channel_id") else [])
    channels = [ws.writable_channel(target) for target in targets]
    for file, entry in files:
        file.completed = True
        file.title = str(entry.get("title") or file.filename)
        file.channels = [c.id for c in channels]
        file.thread_ts = args.text("thread_ts") or None
        file.initial_comment = args.text("initial_comment") or None
    for channel in channels:
        message = bot_message(ws.next_ts(), {"text": args.text("initial_comment")})
        message.update({"upload": True, "files": [f.to_api(args.base_url) for f, _ in files]})
        if args.text("thread_ts"):
            message["thread_ts"] = args.text("thread_ts")
        ws.append_message(channel, message)
    return {"files": [{"id": f.id, "title": f.title} for f, _ in files]}


@api_method("files.info")
def files_info(ws: Workspace, args: Args) -> dict[str, Any]:
    """File metadata for a completed upload."""
    file = ws.files.get(args.text("file"))
    if file is None or not file.completed:
        raise SlackError("file_not_found")
    return {"file": file.to_api(args.base_url), "comments": [], "response_metadata": {"next_cursor": ""}}
