"""Clean what Slack sends before any listener (or Bolt's own matching) reads it.

Signed requests are still input. Some shapes break things far from where they enter:
* a NUL character, which PostgreSQL text cannot hold, so a command or form would fail at commit;
* a member that is null (`"view": null`) or of the wrong kind (`"view": []`), on which Bolt's own
  listener matching (or its logging of an unhandled request) raises.
Slack sends none of these; dropping them here keeps every listener on the payloads Slack documents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse


def clean(value: Any) -> Any:
    """A copy without NUL characters in strings and without null-valued object members."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


# Top-level members Bolt reads without checking their kind, and the kind Slack sends.
_KINDS: dict[str, type] = {
    **dict.fromkeys(("view", "event", "team", "user", "channel", "container", "message", "enterprise"), dict),
    **dict.fromkeys(("actions", "authorizations"), list),
}


def clean_body(body: Any) -> dict[str, Any]:
    """`clean`, then drop top-level members of the wrong kind (and actions that are not objects)."""
    if not isinstance(body, dict):
        return {}
    cleaned = {k: v for k, v in clean(body).items() if isinstance(v, _KINDS.get(k, object))}
    if "actions" in cleaned:
        cleaned["actions"] = [a for a in cleaned["actions"] if isinstance(a, dict)]
    return cleaned


INTERACTIVE = frozenset(
    {"block_actions", "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion"}
)


def dig(data: Any, *keys: str) -> Any:
    """data[k1][k2]...: None where a member is missing or not an object (payloads are input)."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


class CleanRequest(AsyncMiddleware):
    """Bolt global middleware, before listener matching, for HTTP and Socket Mode alike. A plain
    function middleware would not do: Bolt builds its arguments from the raw body and can raise."""

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        req.body = clean_body(req.body)
        if req.body.get("type") in INTERACTIVE and not isinstance(dig(req.body, "user", "id"), str):
            # Every click and form names its user; the use cases record who acted.
            return BoltResponse(status=400, body="interactive payload without a user id")
        return await next()
