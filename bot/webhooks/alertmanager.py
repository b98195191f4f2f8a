"""POST /webhooks/alertmanager: authenticate, validate payload version 4, store it in the inbox.

Alertmanager retries 5xx and drops 4xx: we answer 202 (with the inbox id) once the notification
is stored as one inbox row, 401/400/422/413 for requests that will never succeed, and 503 while
the database cannot take the row. The inbox drain applies it (`apply`, below) moments later.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.alerts import Alert, Notification, Reason, unquote_receiver
from bot.observability import WEBHOOK_SECONDS, WEBHOOKS
from bot.service import alertmanager as use_case
from bot.service.context import Context
from bot.service.inbox import Applied
from bot.store import inbox
from bot.store.inbox_table import InboxRow
from bot.webhooks.common import ERROR_RESPONSES, json_body, parse_json, read_body, utc_time, validate

log = logging.getLogger(__name__)

_LABELS = dict[str, str]
KEY_MAX_BYTES = 2048


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: _LABELS
    annotations: _LABELS = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1, max_length=128)

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc_time(value)


class WebhookIn(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    groupKey: str = Field(min_length=1, max_length=KEY_MAX_BYTES)
    # Stored in an INTEGER column: a larger count is not Alertmanager's (it could never be stored).
    truncatedAlerts: int = Field(default=0, ge=0, le=2**31 - 1)
    status: Literal["firing", "resolved"]
    receiver: str = Field(min_length=1, max_length=KEY_MAX_BYTES)
    groupLabels: _LABELS = Field(default_factory=dict)
    commonLabels: _LABELS = Field(default_factory=dict)
    commonAnnotations: _LABELS = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertIn] = Field(min_length=1, max_length=10_000)

    @field_validator("alerts")
    @classmethod
    def _distinct(cls, alerts: list[AlertIn]) -> list[AlertIn]:
        seen: set[str] = set()
        for alert in alerts:
            if alert.fingerprint in seen:
                raise ValueError(f"fingerprint {alert.fingerprint!r} appears twice")
            seen.add(alert.fingerprint)
        return alerts

    @model_validator(mode="after")
    def _key_fits(self) -> WebhookIn:
        # receiver|groupKey is the open incident's unique key: PostgreSQL's btree takes at most
        # 2704 bytes, and a notification that cannot be stored must get a 4xx, not endless 503s.
        size = len(self.receiver.encode()) + 1 + len(self.groupKey.encode())
        if size > KEY_MAX_BYTES:
            raise ValueError(f"receiver and groupKey together take {size} bytes; at most {KEY_MAX_BYTES} fit")
        return self

    @property
    def key(self) -> str:
        """The group's key (what `Notification.key` is), without building the notification."""
        return f"{unquote_receiver(self.receiver)}|{self.groupKey}"

    def to_core(self) -> Notification:
        return Notification(
            receiver=unquote_receiver(self.receiver),
            status=self.status,
            group_key=self.groupKey,
            group_labels=self.groupLabels,
            common_labels=self.commonLabels,
            common_annotations=self.commonAnnotations,
            external_url=self.externalURL,
            truncated_alerts=self.truncatedAlerts,
            alerts=tuple(
                Alert(
                    fingerprint=a.fingerprint,
                    status=a.status,
                    labels=a.labels,
                    annotations=a.annotations,
                    starts_at=a.startsAt,
                    # Alertmanager sends 0001-01-01T00:00:00Z for "not ended yet".
                    ends_at=a.endsAt if a.endsAt and a.endsAt.year > 1 else None,
                    generator_url=a.generatorURL,
                )
                for a in self.alerts
            ),
        )


# How many webhooks are stored at once (each is one short INSERT; more threads only queue on the
# GIL and, on SQLite, on the one writer lock).
INGEST_THREADS = 4
SOURCE = "alertmanager"
_OPENS = frozenset({Reason.OPEN, Reason.REFIRE, Reason.FOLD})
_QUIET = frozenset({Reason.REPEAT, Reason.IGNORE_RESOLVED, Reason.STALE})


def _ingest_threads() -> Callable[[], CapacityLimiter]:
    made: list[CapacityLimiter] = []

    def limiter() -> CapacityLimiter:
        if not made:  # created on first use, inside the event loop
            made.append(CapacityLimiter(INGEST_THREADS))
        return made[0]

    return limiter


def apply(ctx: Context, session: Session, row: InboxRow) -> Applied:
    """The inbox drain's half: the stored notification, applied to its alert group."""
    result = use_case.apply(ctx, session, WebhookIn.model_validate(row.payload).to_core())
    return Applied(
        result.reason.value, result.incident_id, result.reason not in _QUIET, result.reason in _OPENS
    )


def router(ctx: Context, token: str | None, *, unauthenticated: bool = False) -> APIRouter:
    """`token` is the bearer token Alertmanager must send; without one every request is refused
    (401), unless `unauthenticated` (ALERTMANAGER_AUTH=none) opens the endpoint on purpose."""
    api = APIRouter()
    limiter = _ingest_threads()
    expected = f"Bearer {token}".encode() if token else None
    checked = expected is not None or not unauthenticated

    @api.post(
        "/webhooks/alertmanager",
        status_code=202,
        openapi_extra=json_body(WebhookIn),
        responses={401: {"description": "missing or wrong bearer token"}, **ERROR_RESPONSES},
    )
    async def alertmanager(request: Request) -> dict[str, object]:
        started = time.perf_counter()
        try:
            if checked:
                given = request.headers.get("authorization", "").encode()
                if expected is None or not hmac.compare_digest(given, expected):
                    raise HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
            payload = validate(WebhookIn, parse_json(await read_body(request)))
            stored = payload.model_dump(mode="json")
            try:
                row_id = await to_thread.run_sync(
                    lambda: inbox.accept(ctx.engine, SOURCE, payload.key, stored, ctx.clock()),
                    limiter=limiter(),
                )
            except SQLAlchemyError as exc:
                log.error("could not store alertmanager notification: %s", type(exc).__name__)
                raise HTTPException(503, "could not store the notification; retry later") from exc
        except HTTPException as exc:
            WEBHOOKS.labels(SOURCE, str(exc.status_code)).inc()
            raise
        ctx.wake_inbox()
        WEBHOOKS.labels(SOURCE, "accepted").inc()
        WEBHOOK_SECONDS.labels(SOURCE).observe(time.perf_counter() - started)
        return {"status": "accepted", "inbox": row_id}

    return api
