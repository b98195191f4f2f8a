"""Outbox operations that post runbooks and keep their step buttons current."""

from __future__ import annotations

from datetime import UTC, datetime

from anyio import to_thread
from sqlmodel import Session, col, select

from bot.core.runbook_links import RunbookLink
from bot.core.runbooks import Runbook
from bot.core.text import escape
from bot.service import runbooks
from bot.service.context import Context
from bot.service.timeline import record
from bot.slack.delivery import Completion, Handler, SlackDelivery, in_thread, require_channel
from bot.slack.runbook_blocks import no_runbook_blocks, runbook_message, runbook_messages, step_message_index
from bot.store.db import reading
from bot.store.tables import Outbox, RunbookPost


def _done(post: RunbookPost) -> dict[int, tuple[str, datetime]]:
    """Step number -> (user, when): the blocks show the time in each reader's zone."""
    out = {}
    for key, (user, at) in post.done.items():
        when = datetime.fromisoformat(at)
        out[int(key)] = (user, when if when.tzinfo else when.replace(tzinfo=UTC))
    return out


class RunbookDelivery:
    def __init__(self, base: SlackDelivery, ctx: Context) -> None:
        self.base = base
        self.ctx = ctx
        self.runbooks = ctx.runbooks

    def handlers(self) -> dict[str, Handler]:
        return {"post_runbook": self.post, "update_runbook": self.update, "no_runbook": self.no_runbook}

    def _post_row(self, incident_id: int | None, slug: str) -> RunbookPost | None:
        with reading(self.base.engine) as session:
            return session.exec(
                select(RunbookPost).where(
                    col(RunbookPost.incident_id) == incident_id, col(RunbookPost.slug) == slug
                )
            ).first()

    async def _load(self, row: Outbox) -> tuple[Runbook, RunbookPost] | None:
        runbook = self.runbooks.by_slug(str(row.payload["slug"]))
        post = await to_thread.run_sync(self._post_row, row.incident_id, str(row.payload["slug"]))
        return (runbook, post) if runbook and post else None

    async def post(self, row: Outbox) -> Completion | None:
        """Without an index: expand into one row per message. With one: post that message."""
        loaded = await self._load(row)
        if loaded is None:
            return None
        runbook, post = loaded
        assert row.incident_id is not None
        if "index" not in row.payload:
            count = len(runbook_messages(runbook, row.incident_id, _done(post)))
            now = self.base.clock()

            def expand(session: Session) -> None:
                for index in range(count):
                    session.add(
                        Outbox(
                            lane=row.lane,
                            incident_id=row.incident_id,
                            op="post_runbook",
                            payload={"slug": runbook.slug, "index": index},
                            priority=row.priority,
                            not_before=now,
                            created_at=now,
                        )
                    )

            return expand
        index = int(row.payload["index"])
        snap = await self.base.snapshot(row)
        url = await self._source_url(row.incident_id, runbook.slug) if index == 0 else None
        blocks = runbook_message(runbook, row.incident_id, _done(post), index, url)
        ts = await self.base.post_once(
            row,
            require_channel(snap.incident),
            text=f"Runbook: {escape(runbook.title)}",
            blocks=[b.to_dict() for b in blocks],
            **in_thread(snap.incident),
        )

        def complete(session: Session) -> None:
            stored = session.get(RunbookPost, post.id)
            assert stored is not None
            stored.messages = {**stored.messages, str(index): ts}
            session.add(stored)
            if index == 0:
                record(
                    session,
                    row.incident_id or 0,
                    self.base.clock(),
                    "bot",
                    "posted",
                    f"Runbook {runbook.slug} posted",
                    {"ts": ts},
                )

        return complete

    async def update(self, row: Outbox) -> Completion | None:
        """Re-render the message holding the step, and the first one, whose header counts steps done."""
        loaded = await self._load(row)
        if loaded is None:
            return None
        runbook, post = loaded
        assert row.incident_id is not None
        index = step_message_index(runbook).get(int(row.payload["number"]))
        if index is None or post.messages.get(str(index)) is None:
            return None  # not posted yet: the post will render the current state
        snap = await self.base.snapshot(row)
        for shown in dict.fromkeys((index, 0)):
            ts = post.messages.get(str(shown))
            if ts is None:
                continue
            url = await self._source_url(row.incident_id, runbook.slug) if shown == 0 else None
            blocks = runbook_message(runbook, row.incident_id, _done(post), shown, url)
            await self.base.slack.call(
                "chat.update",
                channel=require_channel(snap.incident),
                ts=ts,
                text=f"Runbook: {escape(runbook.title)}",
                blocks=[b.to_dict() for b in blocks],
            )
        return None

    async def _source_url(self, incident_id: int, slug: str) -> str | None:
        return await to_thread.run_sync(runbooks.source_url, self.ctx, incident_id, slug)

    async def no_runbook(self, row: Outbox) -> Completion | None:
        snap = await self.base.snapshot(row)
        p = row.payload
        found = RunbookLink(
            runbook=None,
            url=p.get("url"),
            reason=p.get("reason", ""),
            suggested_file=p.get("suggested"),
            refused=p.get("refused"),
            alertname=p.get("alertname", ""),
        )
        blocks = no_runbook_blocks(found)
        await self.base.post_once(
            row,
            require_channel(snap.incident),
            text="No runbook found",
            blocks=[b.to_dict() for b in blocks],
            **in_thread(snap.incident),
        )
        return None
