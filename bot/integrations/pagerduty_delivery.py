"""How each PagerDuty outbox operation is carried out (the worker runs these like the Slack ones).

* `pd_update` {pd_incident, status}: REST `PUT /incidents/{id}` to acknowledged or resolved (with the
  `From` header the client sends), for a Slack acknowledgement or resolution of a PagerDuty incident.
* `pd_event` {action, routing_key, dedup_key, ...}: an Events API v2 trigger/acknowledge/resolve.
* `pd_page` {page_id, level, schedule_id, escalation_policy_id}: who PagerDuty has on call at that
  escalation level (through the one-minute `OnCallCache`), written into the Page row, then handed to
  the usual Slack `page` operation (DM, looked up by email) in the incident's lane. Several people at
  one level each get a page. If PagerDuty can't be reached the last known on-call list is used and the
  channel is told; with no list at all, the lookup is retried with backoff (the channel is told once).

The worker classifies failures by `SlackCallError`; a `PagerDutyCallError` is translated into one with
the same `recoverable` and `retry_after`, so 429/5xx/network trouble retry and other 4xx fail fast.
Every call here is idempotent (a status PUT, an Events API call with a dedup key), so a retry after an
ambiguous failure is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session

from bot.core.pagerduty import OnCallEntry
from bot.core.text import escape
from bot.integrations.oncall_cache import OnCallCache
from bot.integrations.pagerduty import PagerDutyCallError
from bot.service.incidents import lane, send_page
from bot.service.timeline import record
from bot.slack.api import SlackCallError
from bot.slack.delivery import Completion, Handler
from bot.store import outbox
from bot.store.db import reading
from bot.store.tables import Incident, Outbox, Page

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_LOOKUP_ATTEMPTS = 12  # on-call lookups with no last known answer, about 40 minutes of backoff


class PagerDutyPort(Protocol):
    def acknowledge(self, incident_id: str) -> str: ...
    def resolve(self, incident_id: str) -> str: ...
    def trigger_event(
        self,
        routing_key: str,
        dedup_key: str,
        summary: str,
        severity: str,
        source: str,
        links: Iterable[Mapping[str, str]] = (),
    ) -> str: ...
    def acknowledge_event(self, routing_key: str, dedup_key: str) -> str: ...
    def resolve_event(self, routing_key: str, dedup_key: str) -> str: ...


def lookup_delay(attempt: int) -> float:
    """5 s, 10 s, 20 s ... capped at 5 minutes."""
    return min(300.0, 5.0 * 2.0 ** max(0, attempt))


class PagerDutyDelivery:
    def __init__(
        self, engine: Engine, client: PagerDutyPort, oncall: OnCallCache, clock: Callable[[], datetime]
    ) -> None:
        self.engine = engine
        self.client = client
        self.oncall = oncall
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {"pd_update": self.update, "pd_event": self.event, "pd_page": self.page}

    def _status(self, incident_id: int | None) -> str | None:
        with reading(self.engine) as session:
            incident = session.get(Incident, incident_id)
            return incident.status if incident else None

    async def _call(self, op: str, func: Callable[[], T]) -> T:
        try:
            return await to_thread.run_sync(func)
        except PagerDutyCallError as exc:
            raise SlackCallError(
                op, exc.error, recoverable=exc.recoverable, retry_after=exc.retry_after
            ) from exc

    # -- operations ----------------------------------------------------------------------------------

    async def update(self, row: Outbox) -> Completion | None:
        pd_incident, status = str(row.payload["pd_incident"]), str(row.payload["status"])
        if status == "resolved":
            func = self.client.resolve
        elif status == "acknowledged":
            func = self.client.acknowledge
        else:
            raise SlackCallError("pd_update", f"unknown status {status!r}", recoverable=False)
        try:
            after = await to_thread.run_sync(func, pd_incident)
        except PagerDutyCallError as exc:
            if status == "acknowledged" and exc.status == 400 and "already resolved" in exc.error.lower():
                after = "resolved"  # resolved in PagerDuty meanwhile: nothing left to acknowledge
            else:
                raise SlackCallError(
                    "pd_update", exc.error, recoverable=exc.recoverable, retry_after=exc.retry_after
                ) from exc
        now = self.clock()

        def complete(session: Session) -> None:
            assert row.incident_id is not None
            record(
                session,
                row.incident_id,
                now,
                "bot",
                "pagerduty_update",
                f"PagerDuty incident {pd_incident} set to {status} (now {after})",
                {"pd_incident": pd_incident, "status": status, "pd_status": after},
            )

        return complete

    async def event(self, row: Outbox) -> Completion | None:
        p = row.payload
        action, key, dedup = str(p["action"]), str(p["routing_key"]), str(p["dedup_key"])
        if action == "trigger":
            url = str(p.get("url") or "")
            links = [{"href": url, "text": "Source"}] if url.startswith(("http://", "https://")) else []
            await self._call(
                "pd_event trigger",
                lambda: self.client.trigger_event(
                    key,
                    dedup,
                    str(p.get("summary") or dedup),
                    str(p.get("severity") or "error"),
                    str(p.get("source") or "incidentbot"),
                    links,
                ),
            )
        elif action == "acknowledge":
            await self._call("pd_event acknowledge", lambda: self.client.acknowledge_event(key, dedup))
        elif action == "resolve":
            await self._call("pd_event resolve", lambda: self.client.resolve_event(key, dedup))
        else:
            raise SlackCallError("pd_event", f"unknown action {action!r}", recoverable=False)
        return None

    async def page(self, row: Outbox) -> Completion | None:
        p = row.payload
        level, attempt = int(p["level"]), int(p.get("attempt", 0))
        schedule_id, policy_id = p.get("schedule_id"), p.get("escalation_policy_id")
        now = self.clock()
        if await to_thread.run_sync(self._status, row.incident_id) != "triggered":
            log.info("incident %s is no longer triggered: not paging level %d", row.incident_id, level)
            return None
        try:
            entries, stale = await to_thread.run_sync(lambda: self.oncall.get(schedule_id, policy_id))
        except PagerDutyCallError as exc:
            if exc.recoverable and attempt + 1 < MAX_LOOKUP_ATTEMPTS:
                log.warning("on-call lookup for level %d failed, retrying: %s", level, exc.error)
                return self._retry_lookup(row, level, attempt, exc.error, now)
            return self._not_paged(row, level, f"PagerDuty's on-call could not be read ({exc.error})", now)
        at_level = _unique(e for e in entries if e.escalation_level == level)
        if not at_level:
            return self._not_paged(row, level, f"PagerDuty lists nobody on call at level {level}", now)

        def complete(session: Session) -> None:
            incident = session.get(Incident, row.incident_id)
            page = session.get(Page, int(p["page_id"]))
            if incident is None or incident.id is None or page is None:
                return
            pages = [page] + [
                Page(
                    incident_id=incident.id,
                    person="",
                    layer=page.layer,
                    step_key=page.step_key,
                    paged_at=page.paged_at,
                )
                for _ in at_level[1:]
            ]
            for target, entry in zip(pages, at_level, strict=True):
                target.person = entry.user_summary or entry.user_email or entry.user_id
                target.email = entry.user_email
                send_page(session, incident, target, now)
            names = ", ".join(e.user_summary or e.user_id for e in at_level)
            note = " (last known list: PagerDuty is unreachable)" if stale else ""
            record(
                session,
                incident.id,
                now,
                "bot",
                "pagerduty_oncall",
                f"PagerDuty level {level} on call: {names}{note}",
                {"level": level, "users": [e.user_id for e in at_level], "stale": stale},
            )
            if stale:
                _say(
                    session,
                    incident,
                    now,
                    ":warning: PagerDuty could not be reached, so level "
                    f"{level} is paged from the last known on-call list: {escape(names)}.",
                )

        return complete

    def _retry_lookup(self, row: Outbox, level: int, attempt: int, error: str, now: datetime) -> Completion:
        def complete(session: Session) -> None:
            incident = session.get(Incident, row.incident_id)
            if incident is None:
                return
            if attempt == 0:
                _say(
                    session,
                    incident,
                    now,
                    f":warning: PagerDuty could not be reached to find who is on call at level {level}; "
                    "retrying. Page someone by hand if this is urgent.",
                )
            session.add(
                Outbox(
                    lane=row.lane,
                    incident_id=row.incident_id,
                    op=row.op,
                    payload={**row.payload, "attempt": attempt + 1},
                    priority=row.priority,
                    not_before=now + timedelta(seconds=lookup_delay(attempt)),
                    created_at=now,
                    last_error=error,
                )
            )

        return complete

    def _not_paged(self, row: Outbox, level: int, why: str, now: datetime) -> Completion:
        def complete(session: Session) -> None:
            incident = session.get(Incident, row.incident_id)
            if incident is None or incident.id is None:
                return
            record(session, incident.id, now, "bot", "page_failed", f"Could not page level {level}: {why}")
            _say(session, incident, now, f":warning: Could not page PagerDuty level {level}: {escape(why)}.")

        return complete


def _unique(entries: Iterable[OnCallEntry]) -> list[OnCallEntry]:
    seen: dict[str, OnCallEntry] = {}
    for entry in entries:
        seen.setdefault(entry.user_id or entry.user_email or entry.user_summary, entry)
    return list(seen.values())


def _say(session: Session, incident: Incident, now: datetime, text: str) -> None:
    outbox.enqueue(
        session, lane(incident), "say", now, {"text": text, "trusted": True}, incident_id=incident.id
    )
