"""Starting before the database answers (issue 17).

PostgreSQL that is down, still starting or unreachable when the bot starts is not a crash: the bot
says so in one line (`database unreachable at db:5432 (connection refused); retrying in 4s`), tries
again with backoff (1 s doubling to 30 s) until it answers, then migrates and starts its work.

Meanwhile the HTTP server is up: /healthz answers 200 (the process is alive: an orchestrator must not
restart it for waiting), /readyz 503, and every other request 503 with Retry-After (Alertmanager,
PagerDuty and Slack retry a 5xx; nothing is accepted that could not be stored). SIGTERM cancels the
wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine

from bot.store.db import DatabaseUnreachable, upgrade

log = logging.getLogger(__name__)

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# Answered while the bot waits for its database; everything else gets 503.
ALWAYS_ANSWERED = frozenset({"/healthz", "/readyz", "/metrics"})


async def upgrade_when_reachable(
    engine: Engine,
    unreachable: DatabaseUnreachable,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> None:
    """Migrate once the database answers, after a first attempt failed with `unreachable`."""
    delay = FIRST_DELAY
    problem, failure = str(unreachable), None
    while True:
        log.error("%s; retrying in %ds", problem, delay, exc_info=failure)
        await sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
        try:
            # Abandoned on cancel (SIGTERM): the attempt ends by itself within the connect timeout.
            await to_thread.run_sync(upgrade, engine, abandon_on_cancel=True)
            return
        except DatabaseUnreachable as exc:
            problem, failure = str(exc), None
        except Exception as exc:  # e.g. the connection lost in the middle: said with its traceback
            problem, failure = "migrating the database failed", exc


class Readiness:
    """Set once the database is migrated and the bot's work has started."""

    def __init__(self) -> None:
        self.ready = False


class StartGate:
    """ASGI middleware: until `readiness.ready`, requests other than ALWAYS_ANSWERED get 503."""

    def __init__(self, app: Any, readiness: Readiness) -> None:
        self.app = app
        self.readiness = readiness

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.readiness.ready or scope["type"] != "http" or scope["path"] in ALWAYS_ANSWERED:
            await self.app(scope, receive, send)
            return
        body = b'{"detail":"starting: waiting for the database"}'
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"5"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
