"""Channel membership for the permission check, when Slack's member events are not enough.

The database knows who joined an incident channel from `member_joined_channel` events. A use case
refused only because the person is not known to be in the channel (`NotAllowed.if_member`) asks
Slack once (`conversations.members`, at most once a minute per channel, within a couple of seconds)
and tries again: events lost while the bot was down, or an incident in a thread of a channel the bot
joined long ago, do not lock people out. While Slack is down the database's answer stands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import NotAllowed
from bot.service import channel_members
from bot.service.context import Context

log = logging.getLogger(__name__)

T = TypeVar("T")
ASK_AGAIN_AFTER_SECONDS = 60.0
ANSWER_WITHIN_SECONDS = 2.0
MAX_PAGES = 10  # of 1000 members: channels bigger than that are not incident channels


class ChannelMembers:
    def __init__(self, ctx: Context, client: AsyncWebClient) -> None:
        self.ctx = ctx
        self.client = client
        self._asked: dict[str, float] = {}  # channel -> monotonic time of the last question

    async def learn(self, channel_id: str) -> bool:
        """Store the channel's members as Slack lists them now; False when not asked (asked within
        the last minute) or Slack did not answer."""
        now = time.monotonic()
        if now - self._asked.get(channel_id, -ASK_AGAIN_AFTER_SECONDS) < ASK_AGAIN_AFTER_SECONDS:
            return False
        self._asked[channel_id] = now
        try:
            members = await asyncio.wait_for(self._members(channel_id), ANSWER_WITHIN_SECONDS)
        except Exception as exc:
            log.warning("could not ask Slack who is in %s: %s", channel_id, exc)
            return False
        await to_thread.run_sync(channel_members.replace, self.ctx, channel_id, members)
        return True

    async def _members(self, channel_id: str) -> list[str]:
        members: list[str] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page: Any = await self.client.conversations_members(channel=channel_id, limit=1000, cursor=cursor)
            members += [str(m) for m in page.get("members") or ()]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return members

    async def run(self, call: Callable[[], T]) -> T:
        """Run a use case (in a worker thread); when refused for want of channel membership, learn
        the channel's members from Slack and run it once more."""
        try:
            return await to_thread.run_sync(call)
        except NotAllowed as exc:
            if not (exc.if_member and exc.channel_id and await self.learn(exc.channel_id)):
                raise
        return await to_thread.run_sync(call)
