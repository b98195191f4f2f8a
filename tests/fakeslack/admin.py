"""``/_fake/`` admin JSON API: the same controls as the ``FakeSlack`` methods, for tests whose fake runs
in another process (e.g. ``python -m tests.fakeslack`` next to a bot subprocess).

* ``GET    /_fake/health``                 -> ``{"ok": true, "next_call": n}``
* ``GET    /_fake/calls?method=&since=``   -> ``{"ok": true, "calls": [...]}`` (since = first index)
* ``DELETE /_fake/calls``                  -> forget recorded calls only
* ``GET    /_fake/state``                  -> channels (with messages), files, views, users, faults
* ``POST   /_fake/reset``                  -> forget everything but tokens and users
* ``GET    /_fake/faults``                 -> installed rules; ``POST`` installs one (or a list), ``DELETE``
  clears all; ``DELETE /_fake/faults/<id>`` removes one
* ``GET|POST /_fake/users``                -> read / replace the email directory (``{email: user_id}``)
* ``POST   /_fake/users/<id>``             -> change one account: ``{"deleted": true}`` (deactivate),
  ``{"is_bot": true}``, ``{"exists": false}`` (unknown ID), other keys go to the profile
* ``POST   /_fake/dnd/<id>``               -> that user's Do Not Disturb: ``{"start", "end", "enabled"}``
* ``POST   /_fake/channels``               -> ``{"name", "members", "bot_member", "is_private", "archived"}``
* ``POST   /_fake/messages``               -> ``{"channel", "text", "user", "thread_ts"}`` (a human message)
* ``GET    /_fake/files/<id>``             -> the uploaded bytes
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .model import SlackError
from .state import FakeSlack


def _fake(request: Request) -> FakeSlack:
    return request.app.state.fake


async def _json(request: Request) -> Any:
    body = await request.body()
    return await request.json() if body.strip() else {}


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


async def health(request: Request) -> Response:
    """Liveness probe for spawners; `next_call` marks where later `calls?since=` polls start."""
    return JSONResponse({"ok": True, "next_call": _fake(request).next_call_index})


async def calls(request: Request) -> Response:
    """Recorded calls, optionally one method and/or from an index on (for incremental polling)."""
    fake = _fake(request)
    if request.method == "DELETE":
        fake.clear_calls()
        return JSONResponse({"ok": True})
    method = request.query_params.get("method")
    since = int(request.query_params.get("since", "0"))

    def answer() -> JSONResponse:
        selected = fake.calls_to(method) if method else fake.calls
        return JSONResponse({"ok": True, "calls": [c.to_dict() for c in selected if c.index >= since]})

    # A long log takes a while to encode: in a thread, so the API calls arriving meanwhile (a
    # bench's last pages) are still answered as they come, not after it.
    return await run_in_threadpool(answer)


async def state(request: Request) -> Response:
    """The whole workspace state."""
    return JSONResponse({"ok": True, **_fake(request).state_json()})


async def reset(request: Request) -> Response:
    """Back to an empty workspace."""
    _fake(request).reset()
    return JSONResponse({"ok": True})


async def faults(request: Request) -> Response:
    """List, install (object or list of objects) or clear fault rules."""
    fake = _fake(request)
    if request.method == "POST":
        spec = await _json(request)
        specs = spec if isinstance(spec, list) else [spec]
        try:
            added = [fake.add_fault(s) for s in specs]
        except (TypeError, ValueError) as exc:
            return _error(str(exc))
        return JSONResponse({"ok": True, "faults": added, "fault_id": added[-1]["id"] if added else None})
    if request.method == "DELETE":
        fake.clear_faults()
    return JSONResponse({"ok": True, "faults": fake.faults})


async def fault_item(request: Request) -> Response:
    """Remove one fault rule by id."""
    removed = _fake(request).remove_fault(int(request.path_params["fault_id"]))
    return JSONResponse({"ok": removed}, status_code=200 if removed else 404)


async def users(request: Request) -> Response:
    """Read or replace the user directory (body: the directory itself, or ``{"directory": ...}``)."""
    fake = _fake(request)
    if request.method == "POST":
        body = await _json(request)
        fake.set_users(body.get("directory", body) if isinstance(body, dict) else {})
    return JSONResponse({"ok": True, "users": fake.users})


async def user_item(request: Request) -> Response:
    """Change one account (deactivate it, make it a bot, make its ID unknown)."""
    body = await _json(request)
    if not isinstance(body, dict):
        return _error("expected an object")
    user = _fake(request).update_user(request.path_params["user_id"], **body)
    return JSONResponse({"ok": True, "user": user})


async def dnd_item(request: Request) -> Response:
    """Set one user's Do Not Disturb: ``{"start", "end", "enabled", "snooze_until"}``."""
    body = await _json(request)
    if not isinstance(body, dict):
        return _error("expected an object")
    _fake(request).set_dnd(request.path_params["user_id"], **body)
    return JSONResponse({"ok": True})


async def channels(request: Request) -> Response:
    """Create a pre-existing channel."""
    body = await _json(request)
    try:
        channel = _fake(request).create_channel(
            body.get("name", ""),
            members=body.get("members", []),
            bot_member=body.get("bot_member", True),
            is_private=body.get("is_private", False),
            archived=body.get("archived", False),
        )
    except SlackError as exc:
        return JSONResponse(exc.body(), status_code=400)
    return JSONResponse({"ok": True, "channel": channel.to_dict()})


async def messages(request: Request) -> Response:
    """Inject a message as if a human had posted it."""
    body = await _json(request)
    try:
        message = _fake(request).add_message(
            body.get("channel", ""),
            body.get("text", ""),
            user=body.get("user", "U0HUMAN"),
            thread_ts=body.get("thread_ts"),
        )
    except SlackError as exc:
        return JSONResponse(exc.body(), status_code=400)
    return JSONResponse({"ok": True, "message": message})


async def file_content(request: Request) -> Response:
    """Raw bytes of an uploaded file."""
    try:
        content = _fake(request).file_content(request.path_params["file_id"])
    except KeyError:
        return _error("file_not_found", 404)
    return Response(content or b"", media_type="application/octet-stream")


def admin_routes() -> list[Route]:
    """Routes mounted by :func:`tests.fakeslack.server.create_app`."""
    return [
        Route("/_fake/health", health, methods=["GET"]),
        Route("/_fake/calls", calls, methods=["GET", "DELETE"]),
        Route("/_fake/state", state, methods=["GET"]),
        Route("/_fake/reset", reset, methods=["POST"]),
        Route("/_fake/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_fake/faults/{fault_id:int}", fault_item, methods=["DELETE"]),
        Route("/_fake/users", users, methods=["GET", "POST"]),
        Route("/_fake/users/{user_id}", user_item, methods=["POST"]),
        Route("/_fake/dnd/{user_id}", dnd_item, methods=["POST"]),
        Route("/_fake/channels", channels, methods=["POST"]),
        Route("/_fake/messages", messages, methods=["POST"]),
        Route("/_fake/files/{file_id}", file_content, methods=["GET"]),
    ]
