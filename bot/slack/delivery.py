"""How each outbox operation is carried out against Slack.

A handler makes at most one non-idempotent Slack call (a post) and returns a completion that
the worker applies in the same transaction that marks the row sent, so "channel created" and
"row done" are committed together. Posts carry a mark in message metadata (this database, the
incident, the outbox row; see `marks`): after a crash or an ambiguous failure the handler first
looks for its own message instead of posting twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session

from bot.catalog.rotations import Catalog
from bot.core.text import escape
from bot.service.timeline import record
from bot.slack import views
from bot.slack.api import SlackAPI, SlackCallError
from bot.slack.marks import find_marked, mark
from bot.slack.snapshot import CHANNEL_REFUSED, Snapshot, read_snapshot
from bot.store.instance import instance_id
from bot.store.tables import Incident, Outbox

__all__ = ["CHANNEL_REFUSED", "Completion", "Handler", "SlackDelivery", "Snapshot", "require_channel"]

log = logging.getLogger(__name__)

Completion = Callable[[Session], None]
Handler = Callable[[Outbox], Awaitable[Completion | None]]


def _nothing(_: Session) -> None:
    return None


class SlackDelivery:
    def __init__(
        self,
        engine: Engine,
        slack: SlackAPI,
        announce_channel: str | None,
        clock: Callable,
        *,
        silences: bool = False,
        rotations: Catalog | None = None,
    ) -> None:
        self.engine = engine
        self.slack = slack
        self.announce_channel = announce_channel
        self.clock = clock
        self.silences = silences
        self.rotations = rotations  # who the next escalation step pages, and people's names
        self._bot_user: str | None = None
        self._instance: str | None = None

    def handlers(self) -> dict[str, Handler]:
        return {
            "post_card": self.post_card,
            "pin_card": self.pin_card,
            "sync": self.sync,
            "announce": self.announce,
            "say": self.say,
        }

    # -- reading state -------------------------------------------------------------------
    async def snapshot(self, row: Outbox, *, card: bool = False) -> Snapshot:
        """The incident as the database has it now; `card`: also what only the card shows (pages,
        the next escalation step), read for the operations that render it."""
        return await to_thread.run_sync(self._read, row.incident_id, card)

    def _read(self, incident_id: int | None, card: bool) -> Snapshot:
        found = read_snapshot(self.engine, incident_id, self.silences, self.rotations, card=card)
        if found is None:
            raise SlackCallError("outbox", f"incident {incident_id} is gone", recoverable=False)
        return found

    async def bot_user(self) -> str:
        if self._bot_user is None:
            self._bot_user = str((await self.slack.call("auth.test")).get("user_id", ""))
        return self._bot_user

    async def instance(self) -> str:
        if self._instance is None:
            self._instance = await to_thread.run_sync(instance_id, self.engine)
        return self._instance

    async def post_once(self, row: Outbox, channel: str, **params: Any) -> str:
        """chat.postMessage exactly once per outbox row; returns the message ts. With `thread_ts`
        the post is a reply, and the lookup reads that thread."""
        instance = await self.instance()
        if row.in_flight:
            found = await find_marked(self.slack, instance, row, channel, params.get("thread_ts"))
            if found:
                log.info("outbox %s: message already posted before a crash, not posting again", row.id)
                return found
        params["metadata"] = mark(instance, row)
        response = await self.slack.call("chat.postMessage", channel=channel, **params)
        return str(response["ts"])

    # -- operations ----------------------------------------------------------------------
    async def post_card(self, row: Outbox) -> Completion | None:
        snap = await self.snapshot(row, card=True)
        incident = snap.incident
        if incident.card_ts:
            return None
        channel = require_channel(incident)
        view = snap.view()
        ts = await self.post_once(
            row,
            channel,
            text=views.fallback_text(view),
            blocks=[b.to_dict() for b in views.card(view)],
            **in_thread(incident),
        )

        def complete(session: Session) -> None:
            inc = session.get(Incident, incident.id)
            assert inc is not None and inc.id is not None
            inc.card_ts = ts
            session.add(inc)
            record(session, inc.id, self.clock(), "bot", "posted", "Incident card posted", {"ts": ts})
            session.add(
                Outbox(
                    lane=row.lane,
                    incident_id=inc.id,
                    op="pin_card",
                    priority=row.priority,
                    not_before=self.clock(),
                    created_at=self.clock(),
                )
            )

        return complete

    async def pin_card(self, row: Outbox) -> Completion | None:
        incident = (await self.snapshot(row)).incident
        if not incident.card_ts or incident.thread_ts:
            return None  # in a thread, a pin would be the whole announce channel's (or DM's)
        try:
            await self.slack.call("pins.add", channel=require_channel(incident), timestamp=incident.card_ts)
        except SlackCallError as exc:
            if exc.error != "already_pinned":
                raise
        return None

    async def sync(self, row: Outbox) -> Completion | None:
        snap = await self.snapshot(row, card=True)
        incident, view = snap.incident, snap.view()
        if not incident.channel_id:
            return None
        new_topic = views.topic(view)
        if new_topic != incident.topic and not incident.thread_ts:  # no topic of its own in a thread
            await self.slack.call("conversations.setTopic", channel=incident.channel_id, topic=new_topic)
        if incident.card_ts:
            await self.slack.call(
                "chat.update",
                channel=incident.channel_id,
                ts=incident.card_ts,
                text=views.fallback_text(view),
                blocks=[b.to_dict() for b in views.card(view)],
            )
        if incident.announce_ts and self.announce_channel:
            await self.slack.call(
                "chat.update",
                channel=self.announce_channel,
                ts=incident.announce_ts,
                text=views.announcement(view, snap.refused),
            )

        def complete(session: Session) -> None:
            inc = session.get(Incident, incident.id)
            assert inc is not None
            inc.topic = new_topic
            session.add(inc)

        return complete

    async def announce(self, row: Outbox) -> Completion | None:
        if not self.announce_channel:
            return None
        snap = await self.snapshot(row)
        if snap.incident.announce_ts:
            return None
        ts = await self.post_once(
            row, self.announce_channel, text=views.announcement(snap.view(), snap.refused)
        )

        def complete(session: Session) -> None:
            inc = session.get(Incident, snap.incident.id)
            assert inc is not None and inc.id is not None
            inc.announce_ts = ts
            session.add(inc)
            record(
                session,
                inc.id,
                self.clock(),
                "bot",
                "announced",
                "Announced in the incident channel list",
                {"channel": self.announce_channel, "ts": ts},
            )

        return complete

    async def say(self, row: Outbox) -> Completion | None:
        incident = (await self.snapshot(row)).incident
        raw = str(row.payload.get("text", ""))
        text = raw if row.payload.get("trusted") else escape(raw)
        where: dict[str, str] = {}
        if row.payload.get("channel") == "announce" and self.announce_channel:
            channel = self.announce_channel
        elif row.payload.get("channel") == "announce" and not row.payload.get("notice"):
            return None
        else:  # a failure notice without an announce channel is said in the incident's own
            channel, where = require_channel(incident), in_thread(incident)
        ts = await self.post_once(row, channel, text=text, **where)

        def complete(session: Session) -> None:
            assert incident.id is not None
            record(session, incident.id, self.clock(), "bot", "posted", raw, {"ts": ts})

        return complete


def in_thread(incident: Incident) -> dict[str, str]:
    """`thread_ts` for posts of an incident that lives in a thread (no channel could be made)."""
    return {"thread_ts": incident.thread_ts} if incident.thread_ts else {}


def require_channel(incident: Incident) -> str:
    if not incident.channel_id:
        raise SlackCallError("outbox", f"incident {incident.id} has no channel", recoverable=False)
    return incident.channel_id
