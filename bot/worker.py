"""Outbox delivery: claim ready lane heads, call Slack, settle or retry with backoff.

Webhooks never wait for Slack: they commit rows and wake this worker. Slack being slow or down
delays messages here; a crash leaves rows pending (or in flight) for the next claim.

When a far side (Slack) looks down (a 5xx, a timeout, a dropped connection: not a 429), the worker
stops sending it rows and probes it with a harmless call instead. Once it answers, every waiting
row comes forward at once and claims take them by priority, so pages go first, rather than in
whatever order their separate backoffs happen to expire. When it refuses the bot's credentials, the
rows wait and it is asked again once a minute (see `bot.far_sides`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import random
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session

from bot.far_sides import FarSide, FarSides
from bot.integrations.errors import DeliveryError, backoff
from bot.observability import OUTBOX_DELIVERED
from bot.outbox_rounds import Outcome, record_and_claim
from bot.slack.delivery import Handler
from bot.store import outbox
from bot.store.tables import Outbox

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        engine: Engine,
        handlers: dict[str, Handler],
        clock: Callable[[], datetime],
        *,
        poll_seconds: float = 2.0,
        concurrency: int = 8,
        lease: timedelta = timedelta(seconds=60),
        sides: tuple[FarSide, ...] = (),
    ) -> None:
        self.engine = engine
        self.handlers = handlers
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._pages_in_flight: set[asyncio.Task[None]] = set()  # cosmetic updates wait for these
        self._busy = False  # the last claim found work
        # When rows this worker backed off become ready: it wakes for them on time, so the poll
        # (for rows of other processes and dead leases) can stay slow and idle stays cheap.
        self._retries: list[datetime] = []
        self.far = FarSides(sides, clock, self._far_side_back)
        self._unfinished: dict[int, datetime] = {}  # rows whose last call may still land, until when
        # Outcomes waiting to be recorded: the next claim records them in its own transaction, so
        # a busy worker commits once per round instead of once per Slack call.
        self._outcomes: list[Outcome] = []
        self.looks = 0  # times the worker looked for work (a barrier for tests, a sign of life)
        # Rows were committed since the last claim: with every slot busy, one more delivery may
        # start for a page (a page must not wait for eight channel messages to finish).
        self._fresh = False

    def wake(self) -> None:
        """Thread-safe: new rows were committed, look now rather than at the next poll."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._fresh = True
        self._wakeup.set()

    def owner_alive(self, owner: str) -> bool:
        """Owners are `host:pid:nonce`: on this host, a missing pid means that process died."""
        host, _, rest = owner.partition(":")
        pid = rest.split(":", 1)[0]
        if host != socket.gethostname() or not pid.isdigit() or owner == self.owner:
            return True
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            freed = await to_thread.run_sync(outbox.release_dead_leases, self.engine, self.owner_alive)
            if freed:
                log.info("took over %d outbox rows from a process that died", freed)
        except Exception:
            log.exception("could not release dead leases; they will expire")
        while not self._stopping:
            # Cleared before looking, so a wake-up that arrives while we look is not lost.
            self._wakeup.clear()
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("outbox claim failed; retrying")
                claimed = 0
            if claimed == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_seconds())

    def _idle_seconds(self) -> float:
        """Sleep until the next poll, or until a row this worker backed off is ready, if sooner."""
        now = self.clock()
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)
        if not self._retries:
            return self.poll_seconds
        return min(self.poll_seconds, (self._retries[0] - now).total_seconds())

    async def run_once(self) -> int:
        """Record finished deliveries, claim what is ready now and deliver it; the rows claimed."""
        self.looks += 1
        self.far.recheck_due()
        outcomes, self._outcomes = self._outcomes, []
        free = self.concurrency - len(self._inflight)
        fresh, self._fresh = self._fresh, False
        page_slot = free <= 0 and fresh and len(self._inflight) == self.concurrency
        if free <= 0 and not outcomes and not page_slot:
            await self._slot_or_wake()
            return 1
        now = self.clock()
        # The cheap read-only look only pays off when idle: after a claim that found work, claim.
        idle = not outcomes and not self._busy
        if idle and not await to_thread.run_sync(outbox.has_ready, self.engine, now):
            return 0
        held = self.far.held_ops()
        pages, limit = bool(self._pages_in_flight), 1 if page_slot else max(free, 0)

        def claim(session: Session) -> list[Outbox]:
            return outbox.claim(session, self.owner, now, limit, self.lease, held, pages, page_slot)

        rows = await to_thread.run_sync(
            record_and_claim, self.engine, outcomes, now, claim if limit else None
        )
        self._busy = bool(rows)
        for row in rows:
            task = asyncio.create_task(self.deliver(row))
            if row.priority <= outbox.PAGE:
                self._pages_in_flight.add(task)
            self._inflight.add(task)
            task.add_done_callback(self._delivered)
        if rows and len(self._inflight) >= self.concurrency:
            await self._slot_or_wake()
        return len(rows) or int(bool(outcomes))

    async def _slot_or_wake(self) -> None:
        """Until a delivery finishes, or new rows are committed (one of them may be a page)."""
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({*self._inflight, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()

    def _delivered(self, task: asyncio.Task[None]) -> None:
        # A settled row may have made the next row of its lane ready: look again at once.
        self._inflight.discard(task)
        self._pages_in_flight.discard(task)
        self._wakeup.set()

    async def stop(self, grace_seconds: float = 8.0) -> None:
        """Stop claiming; let in-flight deliveries finish (their leases cover a hard stop)."""
        self._stopping = True
        self.far.stop()
        self._wakeup.set()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=grace_seconds)
        await self._record_outcomes()

    async def _record_outcomes(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if outcomes:
            with contextlib.suppress(Exception):  # logged; the leases cover what was not recorded
                await to_thread.run_sync(record_and_claim, self.engine, outcomes, self.clock(), None)

    async def drain(self, limit_seconds: float = 30.0) -> None:
        """Deliver until nothing is ready (for the CLI and tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_seconds
        while loop.time() < deadline:
            if await self.run_once() == 0 and not self._inflight and not self._outcomes:
                return
            if self._inflight:
                await asyncio.wait(self._inflight, timeout=1)

    async def deliver(self, row: Outbox) -> None:
        try:
            await self._deliver(row)
        except Exception:
            # Typically the database went away mid-delivery: the lease expires and the row is
            # claimed again, so nothing is lost; never let the worker task die.
            log.exception("outbox %s (%s) could not be settled; it will be retried", row.id, row.op)

    async def _deliver(self, row: Outbox) -> None:
        assert row.id is not None
        handler = self.handlers.get(row.op)
        if handler is None:
            self._record(Outcome(row.id, row.op, "failed", None, f"unknown operation {row.op!r}"))
            return
        try:
            completion = await handler(row)
        except DeliveryError as exc:
            until = self.far.refused(row.op, exc.error) if exc.credentials else None
            if until is not None:
                await self._hold(row, exc, until)
                return
            await self._failed(row, exc)
            if exc.looks_down:
                self.far.suspect(row.op)
            return
        except Exception as exc:
            log.exception("outbox %s (%s) crashed; will retry", row.id, row.op)
            await self._failed(
                row, DeliveryError(row.op, f"bug: {type(exc).__name__}", recoverable=True, maybe_done=True)
            )
            return
        self._record(Outcome(row.id, row.op, "sent", completion, None))
        if row.attempts > 1:
            # The far side works again: bring every backed-off row forward, so the next claims
            # order them by priority (pages first) rather than by who failed last.
            await self._retry_now()

    async def _failed(self, row: Outbox, exc: DeliveryError) -> None:
        assert row.id is not None
        if not exc.recoverable:
            log.error(
                "outbox %s (%s) failed for good: %s",
                row.id,
                row.op,
                exc.error,
                extra={"incident": row.incident_id},
            )
            notice = not row.payload.get("notice")
            self._record(Outcome(row.id, row.op, "failed", None, exc.error, row.incident_id, notice))
            return
        delay = exc.retry_after if exc.retry_after is not None else backoff(row.attempts + 1)
        log.warning("outbox %s (%s) will retry in %.1fs: %s", row.id, row.op, delay, exc.error)
        OUTBOX_DELIVERED.labels(row.op, "retry").inc()
        when = self.clock() + timedelta(seconds=delay)
        heapq.heappush(self._retries, when)
        if exc.unfinished:
            self._unfinished[row.id] = when
        # Once an attempt may have reached the far side, every later attempt must look first, even
        # after attempts that failed without side effects (row.in_flight: the earlier ones).
        maybe_done = exc.maybe_done or row.in_flight
        await to_thread.run_sync(outbox.retry_later, self.engine, row.id, when, exc.error, maybe_done)

    async def _retry_now(self) -> None:
        """Bring backed-off rows forward, except those whose last call may still be landing: a
        lookup before it lands would miss it and post a second time."""
        now = self.clock()
        self._unfinished = {row: until for row, until in self._unfinished.items() if until > now}
        await to_thread.run_sync(outbox.retry_now, self.engine, now, frozenset(self._unfinished))

    async def _hold(self, row: Outbox, exc: DeliveryError, until: datetime) -> None:
        """Refused credentials: the call did nothing; the row waits for the next re-check."""
        assert row.id is not None
        OUTBOX_DELIVERED.labels(row.op, "held").inc()
        heapq.heappush(self._retries, until)
        await to_thread.run_sync(outbox.retry_later, self.engine, row.id, until, exc.error, row.in_flight)

    async def _far_side_back(self) -> None:
        try:
            await self._retry_now()
        finally:
            self._wakeup.set()

    def _record(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._wakeup.set()
