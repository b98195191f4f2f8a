"""The scheduler: APScheduler ticks about once a second; each tick fires the timers that are due.

Nothing about timers lives in memory: a tick asks the database what is due, so a restart or a
second replica changes nothing. A tick also learns when the next timer is due; if that comes
before the next tick, a one-off job runs exactly then, so steps fire on time, not up to a tick late.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from functools import partial

from anyio import to_thread
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from bot.service import handoffs
from bot.service.context import Context
from bot.service.timers import fire_due
from bot.store import inbox, receipts

log = logging.getLogger(__name__)

RECEIPTS_KEPT = timedelta(days=3)
SLACK_RECEIPTS_KEPT = timedelta(hours=1)  # a signed Slack request is valid for 5 minutes
DELIVERED_KEPT = timedelta(days=7)


class Scheduler:
    def __init__(
        self, ctx: Context, tick_seconds: float, inbox_retention: timedelta = timedelta(days=7)
    ) -> None:
        self.ctx = ctx
        self.tick_seconds = tick_seconds
        self.inbox_retention = inbox_retention
        self._firing = asyncio.Lock()  # the interval job and a one-off job never fire side by side
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=tick_seconds,
            max_instances=1,
            coalesce=True,
            id="timers",
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.add_job(self.housekeeping, "interval", hours=1, max_instances=1, coalesce=True)

    async def tick(self) -> int:
        async with self._firing:
            try:
                done = await to_thread.run_sync(fire_due, self.ctx)
            except SQLAlchemyError as exc:
                log.warning("timer tick failed (database unavailable?): %s", type(exc).__name__)
                return 0
            except Exception:
                log.exception("timer tick failed")
                return 0
        if done.fired:
            self.ctx.wake()
        self._aim(done.next_due, again=done.fired > 0)
        return done.fired

    def _aim(self, due: datetime | None, *, again: bool) -> None:
        """Run a one-off tick at `due` when that comes before the next regular tick; at once when
        timers fell due while this pass ran (`again`: it fired some, so it is not stuck on busy ones)."""
        if due is None:
            return
        ahead = (due - self.ctx.clock()).total_seconds()
        if ahead >= self.tick_seconds or (ahead <= 0 and not again):
            return
        # APScheduler runs on the wall clock; the bot's clock may be offset (tests), so aim by delay.
        # Two instances may overlap (one aims the next while it runs); `_firing` serialises them.
        self.scheduler.add_job(
            self.tick,
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=max(0.0, ahead)),
            id="timers-at",
            replace_existing=True,
            misfire_grace_time=None,
            max_instances=2,
        )

    async def housekeeping(self) -> None:
        """Hourly: forget webhook receipts no sender can still retry (PagerDuty: 48 h; Slack: its
        5-minute window, and event retries within the hour), and inbox rows processed longer ago
        than INBOX_RETENTION (in small batches); plan handoffs and sync user groups."""
        now = self.ctx.clock()
        try:
            pruned = await to_thread.run_sync(receipts.prune, self.ctx.engine, now - RECEIPTS_KEPT)
            pruned += await to_thread.run_sync(
                partial(receipts.prune, self.ctx.engine, now - SLACK_RECEIPTS_KEPT, source="slack")
            )
            processed = await to_thread.run_sync(inbox.prune, self.ctx.engine, now - self.inbox_retention)
        except Exception:
            log.exception("housekeeping failed; it runs again in an hour")
            return
        if pruned or processed:
            log.info("pruned %d old webhook receipts and %d processed inbox rows", pruned, processed)
        # Handoffs: a layer whose timer failed is planned again, a user group edited by hand repaired.
        await to_thread.run_sync(handoffs.start, self.ctx)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
