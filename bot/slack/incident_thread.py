"""Where an incident goes on when Slack refuses, for good, to create its channel.

Workspaces where only admins may create channels answer conversations.create with
`restricted_action`. The incident then lives in a thread (`Incident.channel_id` + `thread_ts`):

- with an announce channel, the thread of its announcement (posted here if it is not there yet,
  saying why): where people already look for incidents;
- without one, the thread under the page DM of the first person paged. A thread, not the DM's top
  level: the page and its Acknowledge button head the thread, and a second incident paging the same
  person gets a thread of its own instead of interleaving with the first. That DM must have been
  delivered: while it is on its way the row waits (pages have their own lane, and go first).

Everything posted for the incident later goes to that thread (`delivery.in_thread`); what would act
on the whole channel (topic, pins, invites, archive) is skipped.
"""

from __future__ import annotations

import logging

from anyio import to_thread
from sqlmodel import Session, col, select

from bot.core.delivery_failures import continues_in_thread
from bot.service.timeline import record
from bot.slack import views
from bot.slack.api import SlackCallError
from bot.slack.delivery import CHANNEL_REFUSED, Completion, SlackDelivery, Snapshot
from bot.store import outbox
from bot.store.db import reading
from bot.store.tables import Incident, Outbox, Page

log = logging.getLogger(__name__)

PAGE_WAIT_SECONDS = 5.0
PAGE_WAIT_ATTEMPTS = 60  # about five minutes for the first page DM to go out


class IncidentThread:
    def __init__(self, base: SlackDelivery) -> None:
        self.base = base

    async def continue_in_thread(self, row: Outbox, snap: Snapshot, error: str) -> Completion:
        incident = snap.incident
        announce = self.base.announce_channel
        if announce:
            channel = announce
            thread = incident.announce_ts or await self.base.post_once(
                row, announce, text=views.announcement(snap.view(), error)
            )
            if incident.announce_ts:  # announced already: the announcement now says why
                await self.base.slack.call(
                    "chat.update", channel=announce, ts=thread, text=views.announcement(snap.view(), error)
                )
        else:  # its first reply says why (in the announce channel, the announcement does)
            channel, thread = await self._page_dm(row, incident, error)
            await self.base.post_once(
                row, channel, thread_ts=thread, text=f":information_source: {continues_in_thread(error)}."
            )
        log.warning(
            "incident %s: Slack refused to create its channel (%s); it continues in a thread of %s",
            incident.id,
            error,
            channel,
        )
        now = self.base.clock()

        def complete(session: Session) -> None:
            inc = session.get(Incident, incident.id)
            assert inc is not None and inc.id is not None
            inc.channel_id, inc.thread_ts = channel, thread
            if announce:
                inc.announce_ts = thread
            session.add(inc)
            record(
                session,
                inc.id,
                now,
                "bot",
                CHANNEL_REFUSED,
                f"Slack refused to create a channel ({error}); the incident continues in a thread",
                {"error": error, "channel": channel, "thread_ts": thread},
            )
            if announce:  # pages sent before: their DMs point to the announce channel, not a pending name
                outbox.enqueue(
                    session, row.lane, "update_pages", now, incident_id=inc.id, priority=outbox.COSMETIC
                )

        return complete

    async def _page_dm(self, row: Outbox, incident: Incident, error: str) -> tuple[str, str]:
        pages = await to_thread.run_sync(self._pages, incident.id)
        delivered = next((p for p in pages if p.dm_channel and p.dm_ts), None)
        if delivered is not None:
            assert delivered.dm_channel and delivered.dm_ts
            return delivered.dm_channel, delivered.dm_ts
        if any(p.failed_at is None for p in pages) and row.attempts < PAGE_WAIT_ATTEMPTS:
            raise SlackCallError(
                "conversations.create",
                f"{error}: waiting for the page DM to continue in its thread",
                recoverable=True,
                retry_after=PAGE_WAIT_SECONDS,
            )
        # Nobody was paged by DM: there is no thread to go on in. Counted and logged as failed.
        raise SlackCallError("conversations.create", error, recoverable=False)

    def _pages(self, incident_id: int | None) -> list[Page]:
        with reading(self.base.engine) as session:
            return list(
                session.exec(select(Page).where(col(Page.incident_id) == incident_id).order_by(col(Page.id)))
            )
