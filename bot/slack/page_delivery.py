"""Outbox operations that page people: a DM with the buttons, an invite, a line in the channel."""

from __future__ import annotations

import time

from anyio import to_thread
from sqlmodel import Session, col, select

from bot.core.text import escape
from bot.service.incidents import incident_lane
from bot.service.timeline import record
from bot.slack import views
from bot.slack.api import SlackCallError
from bot.slack.delivery import Completion, Handler, SlackDelivery, require_channel
from bot.store.db import reading
from bot.store.tables import Outbox, Page

USER_CACHE_SECONDS = 3600.0


class PageDelivery:
    def __init__(self, base: SlackDelivery) -> None:
        self.base = base
        self._users_by_email: dict[str, tuple[str, float]] = {}  # email -> (user id, fetched at)
        self._dm_channels: dict[str, str] = {}  # user id -> DM channel id (it never changes)

    def handlers(self) -> dict[str, Handler]:
        return {"page": self.page, "invite": self.invite, "update_pages": self.update_pages}

    def _page_row(self, page_id: int) -> Page:
        with reading(self.base.engine) as session:
            page = session.get(Page, page_id)
            if page is None:
                raise SlackCallError("page", f"page {page_id} is gone", recoverable=False)
            return page

    async def slack_user(self, page: Page) -> str | None:
        """The person's Slack ID: from the rotation file, else looked up by email (cached)."""
        if page.slack_user:
            return page.slack_user
        if not page.email:
            return None
        cached = self._users_by_email.get(page.email)
        now = time.monotonic()
        if cached and now - cached[1] < USER_CACHE_SECONDS:
            return cached[0]
        try:
            found = await self.base.slack.call("users.lookupByEmail", email=page.email)
        except SlackCallError as exc:
            if exc.error == "users_not_found":
                return None
            raise
        user_id = str(found["user"]["id"])
        self._users_by_email[page.email] = (user_id, now)
        return user_id

    async def dm_channel(self, user: str) -> str:
        if user not in self._dm_channels:
            opened = await self.base.slack.call("conversations.open", users=user)
            self._dm_channels[user] = str(opened["channel"]["id"])
        return self._dm_channels[user]

    async def page(self, row: Outbox) -> Completion | None:
        page = await to_thread.run_sync(self._page_row, int(row.payload["page_id"]))
        if page.dm_ts:
            return None
        snap = await self.base.snapshot(row)
        incident_id = snap.incident.id
        user = await self.slack_user(page)
        now = self.base.clock()
        if user is None:

            def unreachable(session: Session) -> None:
                assert incident_id is not None
                text = (
                    f":warning: Could not page {escape(page.person)}: no Slack user for "
                    f"{escape(page.email or 'them')}. Add `slack:` to rotations/people.yaml."
                )
                session.add(
                    Outbox(
                        lane=incident_lane(incident_id),
                        incident_id=incident_id,
                        op="say",
                        not_before=now,
                        created_at=now,
                        payload={"text": text, "trusted": True},
                        priority=row.priority,
                    )
                )
                record(
                    session,
                    incident_id,
                    now,
                    "bot",
                    "page_failed",
                    f"Could not page {page.person}: no Slack user",
                )

            return unreachable
        dm = await self.dm_channel(user)
        text, blocks = views.page_message(snap.view(), _page_label(page), page.id)
        ts = await self.base.post_once(row, dm, text=text, blocks=[b.to_dict() for b in blocks])

        def complete(session: Session) -> None:
            assert incident_id is not None
            stored = session.get(Page, page.id)
            assert stored is not None
            stored.slack_user, stored.dm_channel, stored.dm_ts = user, dm, ts
            session.add(stored)
            record(
                session,
                incident_id,
                now,
                "bot",
                "paged",
                f"Paged {page.person} by DM",
                {"person": page.person, "user": user, "step": page.step_key, "mentions": [user]},
            )
            for op, payload in (
                ("invite", {"users": [user]}),
                ("say", {"text": f":pager: Paged <@{user}> ({escape(_page_label(page))}).", "trusted": True}),
            ):
                session.add(
                    Outbox(
                        lane=incident_lane(incident_id),
                        incident_id=incident_id,
                        op=op,
                        payload=payload,
                        not_before=now,
                        created_at=now,
                        priority=row.priority,
                    )
                )

        return complete

    async def invite(self, row: Outbox) -> Completion | None:
        channel = require_channel((await self.base.snapshot(row)).incident)
        try:
            await self.base.slack.call(
                "conversations.invite", channel=channel, users=",".join(row.payload["users"])
            )
        except SlackCallError as exc:
            if exc.error not in ("already_in_channel", "cant_invite_self"):
                raise
        return None

    def _pages(self, incident_id: int | None) -> list[Page]:
        with reading(self.base.engine) as session:
            return list(
                session.exec(
                    select(Page).where(col(Page.incident_id) == incident_id, col(Page.dm_ts).is_not(None))
                )
            )

    async def update_pages(self, row: Outbox) -> Completion | None:
        """Show the new state in every page DM (and drop their buttons once acknowledged)."""
        snap = await self.base.snapshot(row)
        for page in await to_thread.run_sync(self._pages, row.incident_id):
            text, blocks = views.page_message(snap.view(), _page_label(page), page.id)
            await self.base.slack.call(
                "chat.update",
                channel=page.dm_channel,
                ts=page.dm_ts,
                text=text,
                blocks=[b.to_dict() for b in blocks],
            )
        return None


def _page_label(page: Page) -> str:
    step = page.step_key.split("s")[-1]
    label = f"step {int(step) + 1}" if step.isdigit() else page.step_key
    return f"{page.layer}, {label}" if page.layer else label
