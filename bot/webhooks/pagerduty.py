"""POST /webhooks/pagerduty: verify the signature, validate the V3 envelope, store it in the inbox.

PagerDuty wants a 2xx within 5 s and retries anything else for up to 48 h, so: 401 for a missing or
wrong `X-PagerDuty-Signature` (checked against every configured secret, before the body is parsed),
400 for malformed JSON, 422 naming the bad field, 200 for event types we ignore (so PagerDuty stops
sending them), 200 `{"status": "duplicate"}` for a redelivery (its `event.id` or `X-Webhook-Id` is
already stored), 202 with the inbox id once the event is stored, and 503 only while the database
cannot take the row. The inbox drain applies it (`apply`, below): no Slack or PagerDuty call
happens in the request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.pagerduty import SIGNATURE_HEADER, verify_signature
from bot.observability import WEBHOOK_SECONDS, WEBHOOKS
from bot.service import pagerduty as use_case
from bot.service.context import Context
from bot.service.inbox import Applied
from bot.store import inbox
from bot.store.inbox_table import InboxRow
from bot.webhooks.common import ERROR_RESPONSES, json_body, parse_json, read_body, validate
from bot.webhooks.pagerduty_models import WebhookIn

log = logging.getLogger(__name__)

WEBHOOK_ID_HEADER = "X-Webhook-Id"
SOURCE = "pagerduty"


def _incident_key(data: Any) -> str | None:
    """`event.data.incident_key` (the Events API dedup key the incident came from), if any."""
    try:
        value = data["event"]["data"].get("incident_key")
    except (KeyError, TypeError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def apply(ctx: Context, session: Session, row: InboxRow) -> Applied:
    """The inbox drain's half: the stored event, applied to the incident it is about."""
    event = WebhookIn.model_validate(row.payload["webhook"]).to_core()
    assert event is not None  # only handled event types are stored
    result = use_case.apply(ctx, session, event, row.payload.get("incident_key"))
    opened = result.decision == use_case.Decision.OPENED
    changed = opened or result.decision == use_case.Decision.CHANGED
    return Applied(result.decision.value, result.incident_id, changed, opened)


def router(ctx: Context, secrets: Sequence[str]) -> APIRouter:
    api = APIRouter()
    secrets = tuple(secrets)

    @api.post(
        "/webhooks/pagerduty",
        status_code=202,
        openapi_extra=json_body(WebhookIn),
        responses={
            200: {"description": "an event type the bot ignores, or a redelivery (duplicate)"},
            401: {"description": "missing or wrong X-PagerDuty-Signature"},
            **ERROR_RESPONSES,
        },
    )
    async def pagerduty(request: Request, response: Response) -> dict[str, object]:
        started = time.perf_counter()
        try:
            raw = await read_body(request)
            if not verify_signature(raw, request.headers.get(SIGNATURE_HEADER), secrets):
                raise HTTPException(401, f"missing or wrong {SIGNATURE_HEADER}")
            data = parse_json(raw)
            payload = validate(WebhookIn, data)
            event = payload.to_core()
            if event is None:
                log.info(
                    "ignoring PagerDuty event type %s",
                    payload.event.event_type,
                    extra={"event_id": payload.event.id},
                )
                WEBHOOKS.labels(SOURCE, "ignored").inc()
                response.status_code = 200
                return {"status": "ignored", "event_type": payload.event.event_type}
            webhook_id = (request.headers.get(WEBHOOK_ID_HEADER) or "").strip()[:256] or None
            stored = {"webhook": payload.model_dump(mode="json"), "incident_key": _incident_key(data)}
            keys = use_case.receipt_keys(event.id, webhook_id)
            try:
                row_id = await to_thread.run_sync(
                    lambda: inbox.accept(ctx.engine, SOURCE, event.incident_id, stored, ctx.clock(), keys)
                )
            except SQLAlchemyError as exc:
                log.error("could not store PagerDuty event: %s", type(exc).__name__)
                raise HTTPException(503, "could not store the event; retry later") from exc
        except HTTPException as exc:
            WEBHOOKS.labels(SOURCE, str(exc.status_code)).inc()
            raise
        WEBHOOK_SECONDS.labels(SOURCE).observe(time.perf_counter() - started)
        if row_id is None:
            WEBHOOKS.labels(SOURCE, "duplicate").inc()
            response.status_code = 200
            return {"status": "duplicate"}
        ctx.wake_inbox()
        WEBHOOKS.labels(SOURCE, "accepted").inc()
        return {"status": "accepted", "inbox": row_id}

    return api
