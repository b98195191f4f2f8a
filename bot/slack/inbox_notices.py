"""Outbox operation `inbox_parked`: a webhook the inbox drain could not apply, said once in the
announce channel (nowhere when none is configured: the log and /metrics say it too)."""

from __future__ import annotations

import logging

from bot.slack.delivery import Completion, Handler, SlackDelivery
from bot.store.tables import Outbox

log = logging.getLogger(__name__)


class InboxNotices:
    def __init__(self, delivery: SlackDelivery) -> None:
        self.delivery = delivery

    def handlers(self) -> dict[str, Handler]:
        return {"inbox_parked": self.parked}

    async def parked(self, row: Outbox) -> Completion | None:
        channel = self.delivery.announce_channel
        if not channel:
            log.warning("inbox %s parked; no announce channel to say so in", row.payload.get("inbox"))
            return None
        await self.delivery.post_once(row, channel, text=str(row.payload.get("text", "")))
        return None
