"""The scheduler: APScheduler ticks about once a second; each tick fires the timers that are due.

Nothing about timers lives in memory: a tick asks the database what is due, so a restart or a
second replica changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from anyio import to_thread
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from bot.service.context import Context
from bot.service.timers import fire_due
from bot.store import receipts

log = logging.getLogger(__name__)

RECEIPTS_KEPT = timedelta(days=3)
DELIVERED_KEPT = timedelta(days=7)


class Scheduler:
    def __init__(self, ctx: Context, tick_seconds: float) -> None:
        self.ctx = ctx
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=tick_seconds,
            max_instances=1,
            coalesce=True,
            id="timers",
            next_run_time=datetime.now(ctx.clock().tzinfo),
        )
        self.scheduler.add_job(self.housekeeping, "interval", hours=1, max_instances=1, coalesce=True)

    async def tick(self) -> int:
        try:
            fired = await to_thread.run_sync(fire_due, self.ctx)
        except SQLAlchemyError as exc:
            log.warning("timer tick failed (database unavailable?): %s", type(exc).__name__)
            return 0
        except Exception:
            log.exception("timer tick failed")
            return 0
        if fired:
            self.ctx.wake()
        return fired

    async def housekeeping(self) -> None:
        """Hourly: forget webhook receipts no sender can still retry (PagerDuty: 48 h)."""
        try:
            pruned = await to_thread.run_sync(
                receipts.prune, self.ctx.engine, self.ctx.clock() - RECEIPTS_KEPT
            )
        except Exception:
            log.exception("housekeeping failed; it runs again in an hour")
            return
        if pruned:
            log.info("pruned %d old webhook receipts", pruned)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
