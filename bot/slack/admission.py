"""What `/slack/events` decides about a signed request before Bolt sees it: is it for this
installation, and is it the first time we see it.

Slack signs `v0:<timestamp>:<body>` and the signature holds for 5 minutes, so a captured request
could be sent again within them. Each request is recorded once (a `WebhookReceipt` row, source
"slack", unique across replicas) under what identifies it: the `event_id` of an Events API callback
(Slack's retries, with `X-Slack-Retry-Num`, carry the same one), the `action_ts` of a click, the
`trigger_id` of a command or form, else the signature itself. A second copy is answered 200 with
an empty body and does nothing. A body that is not a Slack request at all gets no receipt: Bolt
refuses it, and it could not do anything twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from anyio import to_thread
from sqlalchemy import Engine

from bot.store import receipts

log = logging.getLogger(__name__)

SOURCE = "slack"
RECORD_WITHIN_SECONDS = 0.8  # of Slack's 3 s (bot.slack.answering counts them from the arrival)
# A receipt not written in time lets a replay through; the use case needs the same database, so a
# longer wait here costs little (a busy SQLite under load took more than 0.3 s).
KEY_MAX = 200


@dataclass(frozen=True)
class Envelope:
    """The parts of a Slack request that say where it comes from and which request it is."""

    key: str | None  # None: not a request Slack sends (Bolt refuses it)
    team_id: str | None = None
    app_id: str | None = None
    command: bool = False


def envelope(body: bytes, content_type: str, signature: str) -> Envelope:
    """Read `body` as Slack sends it (a form with a command or a `payload`, or a JSON object)."""
    fallback = Envelope(key=_key("signature", signature))
    unreadable = Envelope(key=None)
    try:
        if content_type.startswith("application/json"):
            data = json.loads(body)
            return _event(data, fallback) if isinstance(data, dict) else unreadable
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep
        return unreadable
    if "payload" in form:
        try:
            payload = json.loads(form["payload"])
        except (ValueError, RecursionError):
            return unreadable
        return _interaction(payload, fallback) if isinstance(payload, dict) else unreadable
    if not form.get("command"):
        return unreadable  # e.g. Slack's `ssl_check=1`, which does nothing
    trigger = form.get("trigger_id")
    return Envelope(
        key=_key("trigger", trigger) if trigger else fallback.key,
        team_id=form.get("team_id") or None,
        app_id=form.get("api_app_id") or None,
        command=True,
    )


def _event(data: dict[str, Any], fallback: Envelope) -> Envelope:
    event_id = data.get("event_id")
    return Envelope(
        key=_key("event", event_id) if isinstance(event_id, str) and event_id else fallback.key,
        team_id=_text(data.get("team_id")),
        app_id=_text(data.get("api_app_id")),
    )


def _interaction(payload: dict[str, Any], fallback: Envelope) -> Envelope:
    team = payload.get("team")
    user = payload.get("user")
    actions = payload.get("actions")
    first = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    action_ts, trigger = _text(first.get("action_ts")), _text(payload.get("trigger_id"))
    if action_ts:
        who = _text(user.get("id")) if isinstance(user, dict) else None
        key = _key("action", f"{who}:{action_ts}")
    else:
        key = _key("trigger", trigger) if trigger else fallback.key
    return Envelope(
        key=key,
        team_id=_text(team.get("id")) if isinstance(team, dict) else None,
        app_id=_text(payload.get("api_app_id")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _key(kind: str, value: str) -> str:
    key = f"{kind}:{value}"
    # Keys come from the (signed) request; a huge one is stored as its hash.
    return key if len(key) <= KEY_MAX else f"{kind}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"


async def first_time(engine: Engine, key: str, now: datetime) -> bool:
    """Record the request; False for a copy already recorded. Slack's 3 seconds come first: when the
    database cannot record it within RECORD_WITHIN_SECONDS (busy, or down: every use case needs it
    anyway, `/oncall` does not) the request goes on and the receipt is written when it can be."""
    recording = asyncio.ensure_future(to_thread.run_sync(receipts.first_time, engine, SOURCE, key, now))
    done, _ = await asyncio.wait({recording}, timeout=RECORD_WITHIN_SECONDS)
    if not done:
        log.warning("the Slack request receipt is slow to record; handling the request meanwhile")
        recording.add_done_callback(_failed)
        return True
    if recording.exception() is not None:
        _failed(recording)
        return True
    return recording.result()


def _failed(recording: asyncio.Future[bool]) -> None:
    if not recording.cancelled() and (exc := recording.exception()) is not None:
        log.warning("could not record a Slack request receipt (%s); it was handled", type(exc).__name__)
