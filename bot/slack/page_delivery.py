"""Outbox operations that page people: a DM with the buttons, an invite, a line in the channel.

A page Slack refuses for good (a deactivated account, a bot, an unknown user, a workspace rule, no
Slack user for the email) is settled with `page_failures.page_failed` in the same transaction:
said in the channel, recorded, and the next step brought forward when nobody else on the step can
be reached. Rate limits, 5xx and network trouble are retried by the worker as for any call.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from anyio import to_thread
from sqlmodel import Session, col, select

from bot.core.notify_rules import dnd_paused
from bot.core.text import escape
from bot.service import notifications
from bot.service.context import Context
from bot.service.incidents import incident_lane
from bot.service.page_failures import NO_SLACK_USER, page_failed
from bot.service.people import people_of
from bot.service.timeline import record
from bot.slack import views
from bot.slack.api import SlackCallError
from bot.slack.delivery import Completion, Handler, SlackDelivery, require_channel
from bot.store import outbox
from bot.store.db import reading
from bot.store.tables import Outbox, Page

log = logging.getLogger(__name__)

USER_CACHE_SECONDS = 3600.0
# A DM channel never changes, but Slack keeps accepting posts into it after the account is
# deactivated; only conversations.open says `user_disabled`. Opening it again after a while finds
# that out, at one call per person per this long.
DM_CACHE = timedelta(minutes=5)


class PageDelivery:
    def __init__(self, base: SlackDelivery, ctx: Context) -> None:
        self.base = base
        self.ctx = ctx
        self._users_by_email: dict[str, tuple[str, float]] = {}  # email -> (user id, fetched at)
        self._dm_channels: dict[str, tuple[str, datetime]] = {}  # user id -> (DM channel, opened at)

    def handlers(self) -> dict[str, Handler]:
        return {"page": self.page, "invite": self.invite, "update_pages": self.update_pages, "dm": self.dm}

    async def dm(self, row: Outbox) -> Completion | None:
        """`dm` {user, text}: a line for one person, outside any incident (test page answers)."""
        channel = await self.dm_channel(str(row.payload["user"]))
        await self.base.post_once(row, channel, text=str(row.payload["text"]))
        return None

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
        now = self.base.clock()
        cached = self._dm_channels.get(user)
        if cached is None or now - cached[1] >= DM_CACHE:
            opened = await self.base.slack.call("conversations.open", users=user)
            cached = self._dm_channels[user] = (str(opened["channel"]["id"]), now)
        return cached[0]

    async def page(self, row: Outbox) -> Completion | None:
        page = await to_thread.run_sync(self._page_row, int(row.payload["page_id"]))
        # The page's Slack notification (rows queued before notification rules existed have none).
        notification = row.payload.get("notification_id")
        if page.dm_ts or page.failed_at:
            return self._already(int(notification), page) if notification and page.dm_ts else None
        snap = await self.base.snapshot(row)
        incident_id = snap.incident.id
        assert incident_id is not None and page.id is not None
        user: str | None = None
        try:
            user = await self.slack_user(page)
            if user is None:
                return self._failed(incident_id, page.id, NO_SLACK_USER, None, notification)
            paused = bool(row.payload.get("dnd_check")) and await self.in_dnd(user)
            dm = await self.dm_channel(user)
            text, blocks = views.page_message(snap.view(), _page_label(page), page.id)
            ts = await self.base.post_once(row, dm, text=text, blocks=[b.to_dict() for b in blocks])
        except SlackCallError as exc:
            if exc.recoverable:
                raise  # rate limits, 5xx, network: the worker retries with backoff
            if user is not None:
                self._dm_channels.pop(user, None)  # open it again next time
            return self._failed(incident_id, page.id, exc.error, user, notification)
        now = self.base.clock()
        said = bool(row.payload.get("said"))

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
                f"Paged {people_of(self.ctx).name(page.person)} by DM",
                {
                    "person": page.person,
                    "user": user,
                    "step": page.step_key,
                    "mentions": [user],
                    "method": "slack",
                    "dnd": paused,
                },
            )
            line = {"text": f":pager: Paged <@{user}> ({escape(_page_label(page))}).", "trusted": True}
            # A step that spoke in the channel already named who it pages: one line, not two.
            for op, payload in [("invite", {"users": [user]})] + ([] if said else [("say", line)]):
                session.add(
                    Outbox(
                        lane=incident_lane(incident_id),
                        incident_id=incident_id,
                        op=op,
                        payload=payload,
                        not_before=now,
                        created_at=now,
                        priority=max(row.priority, outbox.CHANNEL),  # after other pages
                    )
                )
            if notification:
                notifications.sent(session, int(notification), "DM posted", now)
                if paused:
                    notifications.in_dnd(self.ctx, session, int(notification), now)

        return complete

    async def in_dnd(self, user: str) -> bool:
        """Whether Slack holds the person's notifications now (Do Not Disturb). A lookup that fails
        (a missing dnd:read scope, Slack trouble) never delays or stops the page: it says no."""
        try:
            info = await self.base.slack.call("dnd.info", user=user)
        except SlackCallError as exc:
            log.warning("dnd.info for %s failed (%s): paging as if not in Do Not Disturb", user, exc.error)
            return False
        return dnd_paused(info, self.base.clock().timestamp())

    def _already(self, notification: int, page: Page) -> Completion:
        """A later rule asks for Slack again: the DM is there already (one per page)."""
        now = self.base.clock()

        def complete(session: Session) -> None:
            notifications.sent(session, notification, "the page DM was already posted", now)

        return complete

    def _failed(
        self, incident_id: int, page_id: int, error: str, user: str | None, notification: object = None
    ) -> Completion:
        now = self.base.clock()

        def complete(session: Session) -> None:
            if not notification:
                page_failed(self.ctx, session, incident_id, page_id, error, now, user=user)
                return
            page = session.get(Page, page_id)
            if page is not None and user and not page.slack_user:
                page.slack_user = user  # named in the channel line, as a mention
                session.add(page)
            notifications.failed(self.ctx, session, int(str(notification)), error, now)

        return complete

    async def invite(self, row: Outbox) -> Completion | None:
        incident = (await self.base.snapshot(row)).incident
        if incident.thread_ts:
            return None  # the incident lives in a thread of a shared channel or a DM: nobody to add
        channel = require_channel(incident)
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
