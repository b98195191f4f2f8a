"""HTTP face of the fake PagerDuty: a Starlette app and a uvicorn runner in a background thread.

One server plays both hosts: the REST API v2 at ``.url`` (like ``https://api.pagerduty.com``) and the
Events API v2 at ``.events_url`` (``<url>/v2/enqueue``, like ``https://events.pagerduty.com/v2/enqueue``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.fakeslack.faults import Fault
from tests.fakeslack.server import ExposeTransport, drop_connection, wait_for_disconnect

from .model import RATE_LIMITED, Result
from .state import FakePagerDuty


def fault_result(fault: Fault, events_api: bool) -> Result | None:
    """The answer of an answering fault, in the shape of the API it hits; None for connection faults."""
    headers = {"Retry-After": str(fault.retry_after)}
    if fault.mode == "ratelimit":
        if events_api:
            return Result(429, {"status": "throttle event", "message": "Too many requests"}, headers)
        return Result(429, {"error": {"message": "Rate Limit Exceeded", "code": RATE_LIMITED}}, headers)
    if fault.mode == "error500":
        if events_api:
            return Result(fault.status, {"status": "error", "message": fault.error, "errors": [fault.error]})
        return Result(fault.status, {"error": {"message": fault.error, "code": 2000}})
    return None


async def _parse(request: Request) -> tuple[str, str, dict[str, list[str]], dict[str, str], Any]:
    query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    headers = {k.lower(): v for k, v in request.headers.items()}
    raw = await request.body()
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            body = raw.decode("utf-8", "replace")
    return request.method.upper(), request.url.path, query, headers, body


def _respond(result: Result) -> Response:
    return JSONResponse(result.body, status_code=result.status, headers=result.headers)


async def endpoint(request: Request) -> Response:
    """Every path: maybe fault, otherwise let the fake answer; always recorded."""
    fake: FakePagerDuty = request.app.state.fake
    arrival = time.monotonic()
    parsed = await _parse(request)
    method, path = parsed[0], parsed[1]
    fault = fake.take_fault(f"{method} {path}")
    if fault is not None and fault.mode == "slow":
        await asyncio.sleep(fault.delay or 0)  # then answer normally, late
    elif fault is not None:
        result = fault_result(fault, events_api=path.startswith("/v2/"))
        fake.record(parsed, result, fault, arrival)
        if result is not None:
            return _respond(result)
        if fault.mode == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wait_for_disconnect(request), timeout=fault.delay)
        await drop_connection(request)
        return Response(status_code=204)  # never delivered: the connection is gone
    result = fake.handle(*parsed)
    fake.record(parsed, result, fault, arrival)
    return _respond(result)


def create_app(fake: FakePagerDuty) -> ASGIApp:
    methods = ["GET", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
    app.state.fake = fake
    return ExposeTransport(app)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


class FakePagerDutyServer:
    """Run a :class:`FakePagerDuty` on 127.0.0.1 in a background thread.

    >>> with FakePagerDutyServer() as pd:
    ...     client = PagerDutyClient("pd-test-token", "me@example.com", pd.url, pd.events_url)
    """

    def __init__(
        self,
        fake: FakePagerDuty | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.fake = fake or FakePagerDuty()
        self.host = host
        self.port = 0
        self._requested_port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """REST API base URL (no trailing slash, like ``https://api.pagerduty.com``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def events_url(self) -> str:
        """Events API v2 enqueue URL."""
        return f"{self.url}/v2/enqueue"

    def start(self, timeout: float = 10.0) -> FakePagerDutyServer:
        self._sock = _bind(self.host, self._requested_port)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.fake),
            log_level=self._log_level,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"fakepd-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake PagerDuty server failed to start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> FakePagerDutyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
