"""The services the outbox calls (Slack), and what the worker does when one cannot be used.

Two reasons to stop sending a far side its rows, handled differently:

- It looks down (a 5xx, a timeout, a dropped connection: not a 429). Its rows are held and it is
  probed with a harmless call, after 1 s, 2 s, 4 s ... up to 15 s; once it answers, every waiting row
  comes forward at once and claims take them by priority, so pages go first.
- It refuses our credentials (invalid_auth, token_revoked, account_inactive...). That is not an
  outage and probing every second would only repeat the refusal: the rows wait, the problem is
  logged at most once a minute (never the token), and the far side is asked again once a minute of
  the bot's clock. When it accepts them again, what waited is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.integrations.errors import DeliveryError

log = logging.getLogger(__name__)

MAX_PROBE_INTERVAL = 15.0
CREDENTIALS_RECHECK = timedelta(seconds=60)


@dataclass(frozen=True)
class FarSide:
    """A service the outbox calls: the operations that call it, and how to see it answers again."""

    name: str
    ops: frozenset[str]
    probe: Callable[[], Awaitable[None]]  # raises DeliveryError while the service is down
    credentials: str = "its credentials"  # what an operator fixes when they are refused


class FarSides:
    """Which far sides are held, and the tasks that find out when they can be used again."""

    def __init__(
        self,
        sides: tuple[FarSide, ...],
        clock: Callable[[], datetime],
        back: Callable[[], Awaitable[None]],
    ) -> None:
        self.sides = sides
        self.clock = clock
        self._back = back  # bring the waiting rows forward and wake the worker
        self._down: dict[str, asyncio.Task[None]] = {}  # far sides being probed
        self._refused: dict[str, datetime] = {}  # far sides refusing our credentials: next re-check
        self._rechecking: dict[str, asyncio.Task[None]] = {}
        self._told: dict[str, datetime] = {}  # when the credentials problem was last logged
        self._stopping = False

    def side_of(self, op: str) -> FarSide | None:
        return next((side for side in self.sides if op in side.ops), None)

    def held_ops(self) -> frozenset[str]:
        held = set(self._down) | set(self._refused)
        return frozenset().union(*(side.ops for side in self.sides if side.name in held))

    def stop(self) -> None:
        self._stopping = True
        for task in (*self._down.values(), *self._rechecking.values()):
            task.cancel()

    # -- looks down: probe until it answers -------------------------------------------------------
    def suspect(self, op: str) -> None:
        side = self.side_of(op)
        if side is None or side.name in self._down or side.name in self._refused or self._stopping:
            return
        log.warning("%s looks down: holding its rows and probing it until it answers", side.name)
        self._down[side.name] = asyncio.create_task(self._probe(side))

    async def _probe(self, side: FarSide) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await side.probe()
                break
            except DeliveryError as exc:
                if not exc.looks_down:
                    break  # it answered (even "no"): it is up
            except Exception:
                log.exception("probing %s failed", side.name)
            delay = min(MAX_PROBE_INTERVAL, delay * 2)
        log.warning("%s answers again: sending what waited, most urgent first", side.name)
        self._down.pop(side.name, None)
        await self._back()

    # -- refuses our credentials: hold, and ask again once a minute ---------------------------------
    def refused(self, op: str, error: str) -> datetime | None:
        """`op` was refused for credentials: until when its far side's rows wait (None: `op` calls
        no known far side, treat it as any other failure)."""
        side = self.side_of(op)
        if side is None:
            return None
        now = self.clock()
        until = self._refused.setdefault(side.name, now + CREDENTIALS_RECHECK)
        self._tell_refused(side, error, now)
        return until

    def recheck_due(self) -> None:
        """Start the re-check of every far side whose minute is up (called on each worker look)."""
        now = self.clock()
        for side in self.sides:
            until = self._refused.get(side.name)
            if (
                until is not None
                and until <= now
                and side.name not in self._rechecking
                and not self._stopping
            ):
                self._rechecking[side.name] = asyncio.create_task(self._recheck(side))

    async def _recheck(self, side: FarSide) -> None:
        try:
            await side.probe()
        except DeliveryError as exc:
            if exc.credentials:
                now = self.clock()
                self._refused[side.name] = now + CREDENTIALS_RECHECK
                self._tell_refused(side, exc.error, now)
                return
            # Any other answer: the credentials are not what stops us now (if it looks down, the
            # outage probing takes over once the rows fail that way).
        except Exception:
            log.exception("checking the credentials of %s failed", side.name)
            self._refused[side.name] = self.clock() + CREDENTIALS_RECHECK
            return
        finally:
            self._rechecking.pop(side.name, None)
        self._refused.pop(side.name, None)
        self._told.pop(side.name, None)
        log.warning("%s accepts the credentials again: sending what waited", side.name)
        await self._back()

    def _tell_refused(self, side: FarSide, error: str, now: datetime) -> None:
        last = self._told.get(side.name)
        if last is not None and now - last < CREDENTIALS_RECHECK:
            return
        self._told[side.name] = now
        log.error(
            "%s refused the credentials (%s): check %s. Its calls wait (nothing is lost) and it is "
            "asked again every %d s",
            side.name,
            error,
            side.credentials,
            CREDENTIALS_RECHECK.total_seconds(),
        )
