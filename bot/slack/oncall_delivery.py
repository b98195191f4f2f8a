"""Outbox operations for on-call changes: the swap request message and DMs about it.

* `swap_post`: post the request in the rotation's channel (once per row, marked like every post);
  Slack refusing it for good (an unknown or archived channel, the bot not in a private one) is
  settled with `swaps.unposted`: the requester is told by DM instead of waiting for a Take.
* `swap_update`: show the request as it stands now (taken by, expired); rows of one request share a
  lane, so an update never overtakes its post.
* `oncall_dm`: a DM to a person from people.yaml (their `slack:` ID, else looked up by email). A
  person Slack cannot reach is logged and dropped: the change itself is already made.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from anyio import to_thread
from sqlmodel import Session

from bot.service import swaps
from bot.service.context import Context
from bot.service.oncall_overrides import person_text
from bot.slack.api import SlackCallError
from bot.slack.delivery import Completion, Handler, SlackDelivery
from bot.slack.oncall_views import swap_message
from bot.store.db import reading
from bot.store.tables import Outbox, SwapRequest

log = logging.getLogger(__name__)


class OncallDelivery:
    def __init__(self, base: SlackDelivery, ctx: Context) -> None:
        self.base = base
        self.ctx = ctx
        self._users_by_email: dict[str, str] = {}

    def handlers(self) -> dict[str, Handler]:
        return {swaps.POST_OP: self.post, swaps.UPDATE_OP: self.update, swaps.DM_OP: self.dm}

    def _swap(self, swap_id: int) -> SwapRequest:
        with reading(self.base.engine) as session:
            swap = session.get(SwapRequest, swap_id)
        if swap is None:
            raise SlackCallError("outbox", f"swap request {swap_id} is gone", recoverable=False)
        return swap

    def _message(self, swap: SwapRequest) -> tuple[str, list[dict]]:
        catalog = self.ctx.rotations
        rotation = catalog.rotations.get(swap.rotation) if catalog else None
        zone = ZoneInfo(rotation.timezone if rotation else "UTC")
        text, blocks = swap_message(swap, lambda name: person_text(self.ctx, name), zone)
        return text, [b.to_dict() for b in blocks]

    async def post(self, row: Outbox) -> Completion | None:
        swap = await to_thread.run_sync(self._swap, int(row.payload["swap_id"]))
        if swap.message_ts or swap.status != "open":
            return None
        text, blocks = self._message(swap)
        try:
            ts = await self.base.post_once(row, swap.channel, text=text, blocks=blocks)
        except SlackCallError as exc:
            if exc.recoverable:
                raise
            log.warning("swap request %s could not be posted in %s: %s", swap.id, swap.channel, exc.error)
            now, error = self.base.clock(), exc.error

            def refused(session: Session) -> None:
                assert swap.id is not None
                swaps.unposted(session, swap.id, error, now)

            return refused

        def complete(session: Session) -> None:
            stored = session.get(SwapRequest, swap.id)
            if stored is not None:
                stored.message_ts = ts
                session.add(stored)

        return complete

    async def update(self, row: Outbox) -> Completion | None:
        swap = await to_thread.run_sync(self._swap, int(row.payload["swap_id"]))
        if not swap.message_ts:
            return None  # never posted (refused): nothing to update
        text, blocks = self._message(swap)
        await self.base.slack.call(
            "chat.update", channel=swap.channel, ts=swap.message_ts, text=text, blocks=blocks
        )
        return None

    async def dm(self, row: Outbox) -> Completion | None:
        person = str(row.payload.get("person", ""))
        try:
            user = await self.slack_user(person)
            if user is None:
                log.warning("no Slack user for %s: on-call DM not sent", person)
                return None
            opened = await self.base.slack.call("conversations.open", users=user)
            await self.base.post_once(
                row, str(opened["channel"]["id"]), text=str(row.payload.get("text", ""))
            )
        except SlackCallError as exc:
            if exc.recoverable:
                raise
            log.warning("on-call DM to %s refused: %s", person, exc.error)
        return None

    async def slack_user(self, name: str) -> str | None:
        person = self.ctx.rotations.people.get(name) if self.ctx.rotations else None
        if person is None:
            return None
        if person.slack_id:
            return person.slack_id
        if not person.email:
            return None
        if person.email not in self._users_by_email:
            try:
                found = await self.base.slack.call("users.lookupByEmail", email=person.email)
            except SlackCallError as exc:
                if exc.error == "users_not_found":
                    return None
                raise
            self._users_by_email[person.email] = str(found["user"]["id"])
        return self._users_by_email[person.email]
