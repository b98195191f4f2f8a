"""Socket Mode, kept connected in the background: it must never stop intake.

With SLACK_APP_TOKEN the bot also takes events, commands and clicks over a WebSocket it opens to
Slack. It used to connect inside the app's start: with Slack unreachable the start never finished, so
the HTTP server never listened (webhooks refused for minutes) and SIGTERM was not acted on.

Now the HTTP server starts first and `SocketModeLink` connects from a background task: each attempt
(`apps.connections.open`, then the WebSocket) is bounded in time; failures retry with exponential
backoff (1 s doubling to 60 s) and are logged at most once a minute; a connection that drops or goes
stale (no pong) is closed and made again the same way. slack_sdk's own reconnect loop is switched off
(it retries every 10 s for ever, logging a traceback each time). `stop()` ends it in any state, within
about two seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

MIN_DELAY = 1.0
MAX_DELAY = 60.0
ATTEMPT_TIMEOUT = 30.0  # apps.connections.open plus the WebSocket handshake
CHECK_EVERY = 5.0  # how often a live connection is looked at
LOG_EVERY = 60.0  # at most one failure line a minute
CLOSE_TIMEOUT = 1.0
STOP_WAIT = 2.0  # the close above, with room to spare: SIGTERM ends the bot within 10 s


class Connection(Protocol):
    async def is_connected(self) -> bool: ...

    async def close(self) -> None: ...


Connect = Callable[[], Awaitable[Connection]]


class SocketModeLink:
    def __init__(
        self,
        connect: Connect,
        *,
        min_delay: float = MIN_DELAY,
        max_delay: float = MAX_DELAY,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
        check_every: float = CHECK_EVERY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._connect = connect
        self._min_delay, self._max_delay = min_delay, max_delay
        self._attempt_timeout, self._check_every = attempt_timeout, check_every
        self._clock, self._sleep = clock, sleep
        self._task: asyncio.Task[None] | None = None
        self._last_logged: float | None = None
        self.attempts = 0  # failed attempts in a row
        self.connected = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="socket-mode")

    async def stop(self) -> None:
        """Stop connecting or close the connection, whatever the state; never waits past STOP_WAIT."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_WAIT)

    async def _run(self) -> None:
        delay = self._min_delay
        while True:
            try:
                connection = await asyncio.wait_for(self._connect(), self._attempt_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # unreachable, refused, bad token, timed out: all retried
                self.attempts += 1
                self._say_failure(exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, self._max_delay)
                continue
            delay = self._min_delay
            self.attempts = 0
            self.connected = True
            log.info("connected to Slack over Socket Mode")
            try:
                await self._watch(connection)
                log.warning("the Socket Mode connection to Slack was lost; connecting again")
            finally:
                self.connected = False
                await _close(connection)

    async def _watch(self, connection: Connection) -> None:
        """Return once the connection has been down at two checks in a row (one miss can be slack_sdk
        replacing it after Slack's `disconnect` frame)."""
        misses = 0
        while misses < 2:
            await self._sleep(self._check_every)
            misses = 0 if await connection.is_connected() else misses + 1

    def _say_failure(self, exc: Exception, delay: float) -> None:
        now = self._clock()
        if self._last_logged is not None and now - self._last_logged < LOG_EVERY:
            return
        self._last_logged = now
        log.error(
            "Socket Mode: cannot connect to Slack (%s); attempt %d, next in %.0f s; HTTP keeps serving",
            _describe(exc),
            self.attempts,
            delay,
        )


async def _close(connection: Connection) -> None:
    # Closing sends a WebSocket close and waits for Slack's answer: bounded, and never raises.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT)


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    response = getattr(exc, "response", None)  # SlackApiError: Slack's error code, never the token
    error = response.get("error") if response is not None and hasattr(response, "get") else None
    return f"{type(exc).__name__}: {error}" if error else type(exc).__name__


class _QuietSDK(logging.Filter):
    """slack_sdk logs every failure of its own loops with a traceback, every few seconds while Slack is
    away: let one warning through a minute, without the traceback (ours says what is going on)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = self._clock()
        if self._last is not None and now - self._last < LOG_EVERY:
            return False
        self._last = now
        record.exc_info = record.exc_text = None
        return True


_SDK_LOG = logging.getLogger(f"{__name__}.sdk")
_SDK_LOG.addFilter(_QuietSDK())


def bolt_connect(bolt: object, app_token: str) -> Connect:
    """The real `connect`: one Socket Mode connection for the Bolt app, or an exception."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    async def connect() -> Connection:
        handler = AsyncSocketModeHandler(bolt, app_token, logger=_SDK_LOG)  # type: ignore[arg-type]
        client = handler.client
        client.default_auto_reconnect_enabled = client.auto_reconnect_enabled = False  # we reconnect
        try:
            client.wss_uri = await client.issue_new_wss_url()  # apps.connections.open: raises on error
            await client.connect()
            if not await client.is_connected():
                raise ConnectionError("the WebSocket did not open")
        except BaseException:
            await _close(client)
            raise
        return client

    return connect
