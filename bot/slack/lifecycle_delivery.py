"""Outbox operations around an incident's life: silences at Alertmanager (make, expire, and look
at a silenced group's alerts), archiving the channel."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session

from bot.core.durations import format_duration
from bot.core.text import escape
from bot.integrations.alertmanager import AlertmanagerAPI
from bot.integrations.errors import DeliveryError
from bot.service import silences
from bot.service.context import Context
from bot.service.incidents import say
from bot.service.timeline import record
from bot.slack.delivery import Completion, Handler, SlackDelivery, Snapshot
from bot.store.tables import Incident, Outbox

log = logging.getLogger(__name__)


class LifecycleDelivery:
    def __init__(self, base: SlackDelivery, alertmanager: AlertmanagerAPI | None, ctx: Context) -> None:
        self.base = base
        self.alertmanager = alertmanager
        self.ctx = ctx  # silences' completions are use cases (they resolve, say, sync)

    def handlers(self) -> dict[str, Handler]:
        return {
            "archive": self.archive,
            "silence": self.silence,
            "expire_silences": self.expire_silences,
            silences.CHECK_OP: self.check_silenced,
        }

    async def archive(self, row: Outbox) -> Completion | None:
        incident = (await self.base.snapshot(row)).incident
        if incident.status != "closed" or not incident.channel_id or incident.thread_ts:
            return None  # reopened meanwhile, or never had a channel (a thread is not archived)
        try:
            await self.base.slack.call("conversations.archive", channel=incident.channel_id)
        except DeliveryError as exc:
            if exc.error != "already_archived":
                raise

        def complete(session: Session) -> None:
            assert incident.id is not None
            record(session, incident.id, self.base.clock(), "bot", "archived", "Channel archived")

        return complete

    def _require_api(self) -> AlertmanagerAPI:
        if self.alertmanager is None:
            raise DeliveryError("alertmanager", "ALERTMANAGER_URL is not set", recoverable=False)
        return self.alertmanager

    async def silence(self, row: Outbox) -> Completion | None:
        """Create the silence (matchers = the group's labels) and say where it is."""
        snap = await self.base.snapshot(row)
        incident = snap.incident
        if incident.status in ("resolved", "closed"):
            return None  # resolved before we got here: a silence now would mute its next firing
        labels = _group_labels(snap)
        duration = timedelta(seconds=int(row.payload["seconds"]))
        by = str(row.payload.get("by", "incidentbot"))
        start = self.base.clock()
        try:  # a silence that cannot be made is said in the channel: whoever clicked must not think it is
            if not labels:
                raise DeliveryError("alertmanager", "the incident has no alert labels", recoverable=False)
            api = self._require_api()
            silence_id = await api.create_silence(
                labels, start, duration, f"incidentbot ({by})", f"Silenced from incident #{incident.id}"
            )
        except DeliveryError as exc:
            if exc.recoverable:
                raise
            return self._not_silenced(incident, by, exc.error)
        text = (
            f":no_bell: Silenced for {format_duration(duration)} by <@{by}>: "
            f"<{api.silence_link(silence_id)}|silence {silence_id[:8]}>"
        )
        assert incident.id is not None
        incident_id = incident.id  # recorded even if the channel is gone: it must be expired later

        def complete(session: Session) -> None:
            silences.made(
                self.ctx, session, incident_id, silence_id, start + duration, by, text, self.base.clock()
            )

        return complete

    def _not_silenced(self, incident: Incident, by: str, error: str) -> Completion:
        now = self.base.clock()

        def complete(session: Session) -> None:
            assert incident.id is not None
            record(session, incident.id, now, f"slack:{by}", "silence_failed", f"Silence failed: {error}")
            say(
                session,
                incident,
                now,
                f":warning: <@{by}> No silence was made: {escape(error)}",
                trusted=True,
            )

        return complete

    async def expire_silences(self, row: Outbox) -> Completion | None:
        api = self._require_api()
        ids = [str(i) for i in row.payload.get("ids", [])]
        for silence_id in ids:
            await api.expire_silence(silence_id)
        by = str(row.payload.get("by") or "")
        incident_id = row.incident_id
        assert incident_id is not None

        def complete(session: Session) -> None:
            silences.expired(self.ctx, session, incident_id, ids, by or None)

        return complete

    async def check_silenced(self, row: Outbox) -> Completion | None:
        """Which of the group's alerts are still active at Alertmanager (silenced ones included)?
        Any failure is logged and left to the next check: never resolve on an error."""
        snap = await self.base.snapshot(row)
        incident = snap.incident
        if incident.status in ("resolved", "closed") or incident.id is None:
            return None
        incident_id = incident.id
        try:
            listed = await self._require_api().active_alerts(_group_labels(snap))
        except DeliveryError as exc:
            log.warning(
                "could not ask Alertmanager about a silenced group; asking again at the next check: %s",
                exc.error,
                extra={"incident": incident_id},
            )
            return None

        def complete(session: Session) -> None:
            silences.alerts_checked(self.ctx, session, incident_id, listed)

        return complete


def _group_labels(snap: Snapshot) -> dict[str, str]:
    """The group's labels: what the silence matches and what Alertmanager is asked about."""
    return dict(snap.incident.group_labels or (snap.alerts[0].labels if snap.alerts else {}))
