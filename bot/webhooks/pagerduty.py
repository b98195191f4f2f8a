"""POST /webhooks/pagerduty: verify the signature, validate the V3 envelope, call the use case.

PagerDuty wants a 2xx within 5 s and retries anything else for up to 48 h, so: 401 for a missing or
wrong `X-PagerDuty-Signature` (checked against every configured secret, before the body is parsed),
400 for malformed JSON, 422 naming the bad field, 200 for event types we ignore (so PagerDuty stops
sending them), 200 `{"status": "duplicate"}` for a redelivery, and 503 only while the database is down.
No Slack or PagerDuty call happens in the request: the use case commits outbox rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Request
from sqlalchemy.exc import SQLAlchemyError

from bot.core.pagerduty import SIGNATURE_HEADER, verify_signature
from bot.observability import INCIDENTS_OPENED, WEBHOOK_SECONDS, WEBHOOKS
from bot.service import pagerduty as use_case
from bot.service.context import Context
from bot.webhooks.common import ERROR_RESPONSES, json_body, parse_json, read_body, validate
from bot.webhooks.pagerduty_models import WebhookIn

log = logging.getLogger(__name__)

WEBHOOK_ID_HEADER = "X-Webhook-Id"


def _incident_key(data: Any) -> str | None:
    """`event.data.incident_key` (the Events API dedup key the incident came from), if any."""
    try:
        value = data["event"]["data"].get("incident_key")
    except (KeyError, TypeError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def router(ctx: Context, secrets: Sequence[str]) -> APIRouter:
    api = APIRouter()
    secrets = tuple(secrets)

    @api.post(
        "/webhooks/pagerduty",
        openapi_extra=json_body(WebhookIn),
        responses={401: {"description": "missing or wrong X-PagerDuty-Signature"}, **ERROR_RESPONSES},
    )
    async def pagerduty(request: Request) -> dict[str, object]:
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
                WEBHOOKS.labels("pagerduty", "ignored").inc()
                return {"status": "ignored", "event_type": payload.event.event_type}
            webhook_id = (request.headers.get(WEBHOOK_ID_HEADER) or "").strip()[:256] or None
            try:
                result = await to_thread.run_sync(
                    lambda: use_case.receive(
                        ctx, event, webhook_id=webhook_id, incident_key=_incident_key(data)
                    )
                )
            except SQLAlchemyError as exc:
                log.error("could not store PagerDuty event: %s", type(exc).__name__)
                raise HTTPException(503, "could not store the event; retry later") from exc
        except HTTPException as exc:
            WEBHOOKS.labels("pagerduty", str(exc.status_code)).inc()
            raise
        WEBHOOKS.labels("pagerduty", result.decision.value).inc()
        WEBHOOK_SECONDS.labels("pagerduty").observe(time.perf_counter() - started)
        if result.decision == use_case.Decision.DUPLICATE:
            return {"status": "duplicate"}
        if result.decision == use_case.Decision.OPENED:
            INCIDENTS_OPENED.labels("pagerduty").inc()
        return {"status": "ok", "decision": result.decision.value, "incident": result.incident_id}

    return api
