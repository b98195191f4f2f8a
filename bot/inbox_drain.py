"""The inbox drain: applies stored webhooks (`bot.service.inbox`) in the worker process (or in the
web process with WORKER_PROCESS=false).

Woken at once when this host stores a row (`wake`, thread-safe: the web process writes to the
worker's pipe); a poll (OUTBOX_POLL_SECONDS, one read-only query) covers rows other replicas
stored, and the wait ends early when a row's backoff runs out. A round claims a batch of lane
heads in one transaction; while rounds find work it claims again at once, so a backlog is worked
through batch after batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from anyio import to_thread

from bot.observability import INCIDENTS_OPENED
from bot.service import inbox as use_case
from bot.service.context import Context
from bot.store import inbox
from bot.store.db import is_postgres
from bot.webhooks import alertmanager, pagerduty

log = logging.getLogger(__name__)

APPLIERS: Mapping[str, use_case.Apply] = {
    alertmanager.SOURCE: alertmanager.apply,
    pagerduty.SOURCE: pagerduty.apply,
}
# Rows per transaction. SQLite has one writer: a long batch would hold accepting webhooks up.
BATCH_POSTGRES = 50
BATCH_SQLITE = 10


class InboxDrain:
    def __init__(
        self, ctx: Context, *, poll_seconds: float = 1.0, appliers: Mapping[str, use_case.Apply] = APPLIERS
    ) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.appliers = appliers
        self.batch = BATCH_POSTGRES if is_postgres(ctx.engine) else BATCH_SQLITE
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._busy = True  # the first look claims at once (rows left by a crash)
        self._idle = poll_seconds

    def wake(self) -> None:
        """Thread-safe: a row was stored, look now rather than at the next poll."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wakeup.clear()  # before looking, so a wake-up during the look is not lost
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("inbox drain failed (database unavailable?); retrying")
                claimed = 0
            if claimed == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle)

    async def run_once(self) -> int:
        """One round: the rows claimed (0 when nothing was ready). While rounds find work the next
        one claims at once; otherwise one read-only look first, which also tells how long to
        wait: until the next poll, or until a row waiting out its backoff may be tried."""
        self._idle = self.poll_seconds
        if not self._busy:
            now = self.ctx.clock()
            first = await to_thread.run_sync(inbox.next_ready, self.ctx.engine)
            if first is None or first > now:
                if first is not None:
                    self._idle = max(0.01, min(self.poll_seconds, (first - now).total_seconds()))
                return 0
        done = await to_thread.run_sync(use_case.apply_batch, self.ctx, self.appliers, self.batch)
        for row, applied in done.applied:
            if applied.opened:
                INCIDENTS_OPENED.labels(row.source).inc()
        self._busy = done.claimed > 0
        return done.claimed

    async def drain(self, limit_seconds: float = 30.0) -> None:
        """Apply until nothing is ready (for the CLI and tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_seconds
        self._busy = True
        while loop.time() < deadline and await self.run_once():
            pass

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
