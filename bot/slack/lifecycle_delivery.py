"""Outbox operations around an incident's life: silences at Alertmanager, archiving the channel."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from bot.core.durations import format_duration
from bot.core.text import escape
from bot.integrations.alertmanager import AlertmanagerAPI
from bot.integrations.errors import DeliveryError
from bot.service.incidents import expire_silences, say
from bot.service.timeline import record
from bot.slack.delivery import Completion, Handler, SlackDelivery, require_channel
from bot.store.tables import Incident, Outbox


class LifecycleDelivery:
    def __init__(self, base: SlackDelivery, alertmanager: AlertmanagerAPI | None) -> None:
        self.base = base
        self.alertmanager = alertmanager

    def handlers(self) -> dict[str, Handler]:
        return {"archive": self.archive, "silence": self.silence, "expire_silences": self.expire_silences}

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
        labels = incident.group_labels or (snap.alerts[0].labels if snap.alerts else {})
        duration = timedelta(seconds=int(row.payload["seconds"]))
        by = str(row.payload.get("by", "incidentbot"))
        try:  # a silence that cannot be made is said in the channel: whoever clicked must not think it is
            if not labels:
                raise DeliveryError("alertmanager", "the incident has no alert labels", recoverable=False)
            api = self._require_api()
            silence_id = await api.create_silence(
                dict(labels),
                self.base.clock(),
                duration,
                f"incidentbot ({by})",
                f"Silenced from incident #{incident.id}",
            )
        except DeliveryError as exc:
            if exc.recoverable:
                raise
            return self._not_silenced(incident, by, exc.error)
        now = self.base.clock()
        text = (
            f":no_bell: Silenced for {format_duration(duration)} by <@{by}>: "
            f"<{api.silence_link(silence_id)}|silence {silence_id[:8]}>"
        )

        def complete(session: Session) -> None:
            # Locked: a resolve committing meanwhile either sees this silence (and expires it) or
            # is seen here.
            stored = session.get(Incident, incident.id, with_for_update=True)
            assert stored is not None and stored.id is not None
            stored.silences = [*stored.silences, silence_id]
            session.add(stored)
            if stored.status in ("resolved", "closed"):  # resolved while Alertmanager answered
                record(session, stored.id, now, "bot", "silence", "Silence made after the incident resolved")
                expire_silences(session, stored, now, [silence_id])
                return
            record(
                session,
                stored.id,
                now,
                f"slack:{by}",
                "silence",
                f"Silenced for {format_duration(duration)}",
                {"silence_id": silence_id, "seconds": duration.total_seconds()},
            )
            session.add(
                Outbox(
                    lane=f"incident:{stored.id}",
                    incident_id=stored.id,
                    op="say",
                    payload={"text": text, "trusted": True},
                    not_before=now,
                    created_at=now,
                )
            )

        require_channel(incident)
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

        def complete(session: Session) -> None:
            stored = session.get(Incident, row.incident_id)
            if stored is None or stored.id is None:
                return
            stored.silences = [s for s in stored.silences if s not in ids]
            session.add(stored)
            record(
                session,
                stored.id,
                self.base.clock(),
                "bot",
                "silence_expired",
                f"Expired {len(ids)} silence(s)",
                {"silence_ids": ids},
            )

        return complete
