"""Creating an incident's channel.

A name already taken is either our own channel from an attempt whose answer was lost (a crash
between Slack's answer and our commit: adopt it) or someone else's (take the next free `-N`
suffix, reserved in the database so replicas never pick the same one). A channel Slack refuses for
good (`restricted_action`) is not retried: the incident goes on in a thread (`incident_thread`).
"""

from __future__ import annotations

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.text import with_suffix
from bot.service.timeline import record
from bot.slack.api import SlackCallError
from bot.slack.delivery import Completion, Handler, SlackDelivery
from bot.slack.incident_thread import IncidentThread
from bot.slack.marks import METADATA_EVENT, messages_where_posted
from bot.store.db import reading, transaction
from bot.store.outbox import COSMETIC
from bot.store.tables import Incident, Outbox


class ChannelDelivery:
    def __init__(self, base: SlackDelivery) -> None:
        self.base = base
        self.thread = IncidentThread(base)
        # Incidents whose channel Slack refused for good (and the error), while their row waits for
        # a thread to go on in: not asked to create it again every few seconds.
        self._refused: dict[int, str] = {}

    def handlers(self) -> dict[str, Handler]:
        return {"create_channel": self.create_channel}

    async def create_channel(self, row: Outbox) -> Completion | None:
        snap = await self.base.snapshot(row)
        incident = snap.incident
        if incident.channel_id:
            return None
        assert incident.id is not None
        if incident.id in self._refused:  # refused already; waiting for a thread to go on in
            return await self.thread.continue_in_thread(row, snap, self._refused[incident.id])
        name = incident.channel_name
        for _ in range(50):
            try:
                response = await self.base.slack.call("conversations.create", name=name, is_private=False)
                channel_id = str(response["channel"]["id"])
                break
            except SlackCallError as exc:
                if exc.error != "name_taken" and not exc.recoverable:  # e.g. restricted_action
                    self._refused[incident.id] = exc.error
                    return await self.thread.continue_in_thread(row, snap, exc.error)
                if exc.error != "name_taken":
                    raise
                adopted = await self._adoptable(name, incident)
                if adopted:
                    channel_id = adopted
                    break
                name = await self._next_name(incident, name)
        else:
            raise SlackCallError("conversations.create", "no free channel name", recoverable=False)

        final_name = name

        def complete(session: Session) -> None:
            inc = session.get(Incident, incident.id)
            assert inc is not None and inc.id is not None
            inc.channel_id, inc.channel_name = channel_id, final_name
            session.add(inc)
            record(
                session,
                inc.id,
                self.base.clock(),
                "bot",
                "channel_created",
                f"Channel #{final_name} created",
                {"channel_id": channel_id},
            )
            # Pages may have gone out before the channel existed: give their DMs the link.
            now = self.base.clock()
            session.add(
                Outbox(
                    lane=row.lane,
                    incident_id=inc.id,
                    op="update_pages",
                    priority=COSMETIC,
                    not_before=now,
                    created_at=now,
                )
            )

        return complete

    async def _adoptable(self, name: str, incident: Incident) -> str | None:
        """A channel we created ourselves before a crash (same name, our bot, no incident here, and
        no post marked by another database or incident: after a database reset, or with a second
        deployment on the same Slack app, our bot user also made the older incidents' channels)."""
        cursor = None
        me = await self.base.bot_user()
        while True:
            page = await self.base.slack.call(
                "conversations.list",
                limit=1000,
                exclude_archived=False,
                types="public_channel",
                **({"cursor": cursor} if cursor else {}),
            )
            for channel in page.get("channels", []):
                if channel.get("name") == name:
                    if channel.get("creator") != me or channel.get("is_archived"):
                        return None
                    cid = str(channel["id"])
                    if await to_thread.run_sync(self._channel_linked, cid):
                        return None
                    return None if await self._marked_by_others(cid, incident) else cid
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    async def _marked_by_others(self, channel_id: str, incident: Incident) -> bool:
        instance = await self.base.instance()
        for message in await messages_where_posted(self.base.slack, channel_id, None):
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == METADATA_EVENT and (
                payload.get("instance") != instance or payload.get("incident_id") != incident.id
            ):
                return True
        return False

    def _channel_linked(self, channel_id: str) -> bool:
        with reading(self.base.engine) as session:
            return (
                session.exec(select(Incident.id).where(col(Incident.channel_id) == channel_id)).first()
                is not None
            )

    async def _next_name(self, incident: Incident, taken: str) -> str:
        """Reserve the next `-N` suffix in the database (unique), so replicas never collide."""

        def reserve() -> str:
            for suffix in range(2, 1000):
                candidate = with_suffix(taken, suffix)
                try:
                    with transaction(self.base.engine) as session:
                        inc = session.get(Incident, incident.id)
                        assert inc is not None
                        if inc.channel_name != taken and inc.channel_name != candidate:
                            return inc.channel_name
                        inc.channel_name = candidate
                        session.add(inc)
                    return candidate
                except IntegrityError:
                    continue
            raise SlackCallError("conversations.create", "no free channel name", recoverable=False)

        return await to_thread.run_sync(reserve)
