"""The HTTP server: uvicorn, with deadlines a slow client cannot outlast.

uvicorn closes a keep-alive connection that stays idle (`timeout_keep_alive`), and nothing else: its
keep-alive timer is reset by every byte that arrives, so a client that sends its request a byte at a
time (slow loris), or connects and sends nothing, holds the connection for as long as it likes, and
enough of them hold the server. uvicorn has no option for it and ASGI middleware runs only once the
headers are in, so `RequestDeadlines` wraps uvicorn's HTTP protocol:

* from the connection's first moment (and from the first byte of each later request on it), the
  request line and headers must arrive within HTTP_HEADER_TIMEOUT;
* then the body within HTTP_BODY_TIMEOUT (all of it: a body trickled byte by byte is cut off too);
* a connection past its deadline is closed; the app, if it was reading the body, sees a disconnect.

While the app works on a request nothing is timed (a webhook that waits on the database is not the
client's fault). HTTP_KEEPALIVE_TIMEOUT is uvicorn's idle timeout, and HTTP_MAX_CONNECTIONS its
`limit_concurrency` (beyond it, 503: Alertmanager and PagerDuty retry). WebSockets are off: the bot
serves none (Socket Mode is a connection the bot makes).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from prometheus_client import Counter
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from bot.settings import Settings

CLOSED_SLOW = Counter(
    "incidentbot_http_slow_connections_closed_total",
    "Connections closed because the client did not send its request in time",
    ["phase"],
)


class RequestDeadlines:
    """Mixin over uvicorn's httptools or h11 protocol (both keep `cycle`, `more_body` and
    `response_complete` the same way). `header_timeout` and `body_timeout` are set by `protocol()`."""

    header_timeout: float
    body_timeout: float
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._timer: asyncio.TimerHandle | None = None
        self._phase = ""
        self._seen: object = None  # the last request whose headers were in
        self._arm("headers", self.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._timer is None and self._between_requests():  # a new request starts on this connection
            self._arm("headers", self.header_timeout)
        super().data_received(data)  # type: ignore[misc]
        self._observe()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._observe()  # a pipelined request may have been started

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _between_requests(self) -> bool:
        cycle = self.cycle
        return cycle is None or (cycle.response_complete and not cycle.more_body)

    def _observe(self) -> None:
        cycle = self.cycle
        if cycle is None:
            return
        if cycle is not self._seen:  # a request's headers are in: now its body, if any
            self._seen = cycle
            if cycle.more_body:
                self._arm("body", self.body_timeout)
            else:
                self._disarm()
        elif self._phase == "body" and not cycle.more_body:
            self._disarm()  # the body is in: the app's turn, untimed

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._timer = self.loop.call_later(seconds, self._expired, phase)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, ""

    def _expired(self, phase: str) -> None:
        self._timer, self._phase = None, ""
        if not self.transport.is_closing():
            CLOSED_SLOW.labels(phase).inc()
            self.transport.close()


def protocol(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools if installed, else h11) with request deadlines."""
    return type(
        "DeadlineHTTPProtocol",
        (RequestDeadlines, AutoHTTPProtocol),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )


def server_config(app: Any, settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol(settings.http_header_timeout, settings.http_body_timeout),
        ws="none",
        timeout_keep_alive=settings.http_keepalive_timeout,  # type: ignore[arg-type]  (float is fine)
        limit_concurrency=settings.http_max_connections,
        log_config=None,
        timeout_graceful_shutdown=3,  # then the lifespan gives in-flight deliveries 5 s
        access_log=False,
    )


def serve(app: Any, settings: Settings, host: str, port: int) -> int:
    """Serve until SIGTERM/SIGINT; 3 if the server could not start (uvicorn.run's convention)."""
    server = uvicorn.Server(server_config(app, settings, host, port))
    server.run()
    return 0 if server.started else 3
