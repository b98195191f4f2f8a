"""HTTP face of the fake: the Starlette app (Slack Web API + ``/_fake/`` admin API) and a uvicorn runner.

Routes:

* ``GET|POST /api/<method>``     — Slack Web API (form, JSON or query arguments; Bearer or ``token``)
* ``POST /upload/v1/<file_id>``  — the upload_url handed out by files.getUploadURLExternal
* ``/_fake/...``                 — admin JSON API (never faulted, never recorded), see ``admin_routes``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from .admin import admin_routes
from .args import normalize_args
from .faults import Fault
from .model import UPLOAD_METHOD, ApiResult
from .socket_mode import APP_TOKEN_METHODS
from .state import FakeSlack

TRANSPORT_KEY = "fakeslack.transport"


class ExposeTransport:
    """Outermost ASGI wrapper putting uvicorn's socket transport into the scope.

    The ``drop`` fault must close the TCP connection without any HTTP answer; plain ASGI cannot express
    that (uvicorn turns an exception into a 500), so we reach the transport through uvicorn's bound
    ``send`` (its request cycle object) before Starlette wraps it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
        await self.app(scope, receive, send)


# -- request parsing -----------------------------------------------------------------------------------


class BadRequest(Exception):
    """A body Slack could not parse (answered ``invalid_json`` / ``invalid_form_data``)."""


async def parse_call(request: Request) -> tuple[dict[str, Any], str | None]:
    """Arguments (query + body, body wins) and the token (Bearer header first, then ``token`` arg)."""
    args: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == "application/json" and body:
        try:
            data = json.loads(body)
        except ValueError:
            raise BadRequest("invalid_json") from None
        if not isinstance(data, dict):
            raise BadRequest("invalid_json")
        args.update(data)
    elif content_type == "multipart/form-data":
        form = await request.form()
        for key, value in form.multi_items():
            args[key] = value if isinstance(value, str) else await value.read()
    elif body:
        try:
            args.update(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise BadRequest("invalid_form_data") from None
    token = args.pop("token", None)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip() or token
    return normalize_args(args), token


def to_response(result: ApiResult) -> Response:
    """An ApiResult as a Starlette response."""
    return JSONResponse(result.body, status_code=result.status, headers=result.headers)


# -- faults --------------------------------------------------------------------------------------------


async def wait_for_disconnect(request: Request) -> None:
    """Return once the client has gone (uvicorn reports ``http.disconnect`` after the socket closes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def drop_connection(request: Request) -> None:
    """Abort the TCP connection without sending a byte, so the client sees a connection error."""
    transport = request.scope.get(TRANSPORT_KEY)
    if transport is None:
        raise RuntimeError("drop fault needs uvicorn's transport; falling back to a 500")
    transport.abort()
    # Let uvicorn notice the loss so it does not try to answer with its own 500 afterwards.
    await asyncio.wait_for(wait_for_disconnect(request), timeout=5)


def fault_result(fault: Fault) -> ApiResult | None:
    """The HTTP answer of an answering fault (ratelimit/error500/error); None for connection-level ones."""
    if fault.mode == "ratelimit":
        return ApiResult(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)})
    if fault.mode == "error500":
        return ApiResult(fault.status, {"ok": False, "error": fault.error})
    if fault.mode == "error":  # Slack refusing the request: HTTP 200, ok false
        return ApiResult(200, {"ok": False, "error": fault.error})
    return None


async def apply_fault(
    request: Request,
    fake: FakeSlack,
    method: str,
    args: dict[str, Any],
    token: str | None,
    fault: Fault,
    arrival: tuple[float, float],
) -> Response | None:
    """Break this call. Returns the response to send, or None when the call should proceed (``slow``).

    Only ``slow`` lets the call take effect (late); every other mode has no side effect at all.
    """
    if fault.mode == "slow":
        await asyncio.sleep(fault.delay or 0)
        return None
    result = fault_result(fault)
    fake.record(method, args, token, result, fault, arrival)
    if result is not None:
        return to_response(result)
    if fault.mode == "timeout":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_for_disconnect(request), timeout=fault.delay)
    await drop_connection(request)
    return Response(status_code=204)  # never delivered: the connection is already gone


# -- endpoints -----------------------------------------------------------------------------------------


def _fake(request: Request) -> FakeSlack:
    return request.app.state.fake


def _arrival() -> tuple[float, float]:
    return time.monotonic(), time.time()


async def api_endpoint(request: Request) -> Response:
    """``/api/<method>``: parse, maybe fault, otherwise run the method."""
    fake, method, arrival = _fake(request), request.path_params["method"], _arrival()
    try:
        args, token = await parse_call(request)
        if method in APP_TOKEN_METHODS and not request.headers.get("authorization"):
            token = None  # Slack takes the app-level token from the Authorization header only
    except BadRequest as exc:
        result = ApiResult(200, {"ok": False, "error": str(exc)})
        fake.record(method, {}, None, result, None, arrival)
        return to_response(result)
    channel = args.get("channel")
    fault = fake.take_fault(method, channel if isinstance(channel, str) else None)
    if fault is not None:
        response = await apply_fault(request, fake, method, args, token, fault, arrival)
        if response is not None:
            return response
    result = fake.handle(method, args, token, base_url=str(request.base_url), arrival=arrival, fault=fault)
    return to_response(result)


async def upload_endpoint(request: Request) -> Response:
    """The upload_url: raw bytes (slack_sdk) or a multipart ``file`` field (curl -F) both work."""
    fake, arrival = _fake(request), _arrival()
    file_id = request.path_params["file_id"]
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        upload = (await request.form()).get("file")
        content = upload.encode() if isinstance(upload, str) else await upload.read() if upload else b""
    else:
        content = await request.body()
    fault = fake.take_fault(UPLOAD_METHOD)
    if fault is not None:
        args = {"file_id": file_id, "bytes": len(content)}
        response = await apply_fault(request, fake, UPLOAD_METHOD, args, None, fault, arrival)
        if response is not None:
            return response
    result = fake.handle_upload(file_id, content, arrival, fault)
    if result.status != 200:
        return PlainTextResponse("Not Found", status_code=result.status)
    return PlainTextResponse(result.body["text"])


async def socket_mode_endpoint(websocket: WebSocket) -> None:
    """The URL `apps.connections.open` hands out (see :mod:`tests.fakeslack.socket_mode`)."""
    await websocket.app.state.fake.socket_mode.serve(websocket)


def create_app(fake: FakeSlack) -> ASGIApp:
    """The ASGI app serving ``fake``."""
    routes = [
        Route("/api/{method}", api_endpoint, methods=["GET", "POST"]),
        Route("/upload/v1/{file_id}", upload_endpoint, methods=["POST", "PUT"]),
        WebSocketRoute("/link/", socket_mode_endpoint),
        *admin_routes(),
    ]
    app = Starlette(routes=routes)
    app.state.fake = fake
    return ExposeTransport(app)


# -- runner --------------------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 = any free port), bound before uvicorn starts so the URL is known."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def make_server(fake: FakeSlack, *, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``fake``; short graceful shutdown so hanging ``timeout`` faults can't stall."""
    config = uvicorn.Config(
        create_app(fake),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=5,
    )
    return uvicorn.Server(config)


class FakeSlackServer:
    """Run a :class:`FakeSlack` on 127.0.0.1 in a background thread.

    >>> with FakeSlackServer() as fs:
    ...     client = WebClient(token="xoxb-test", base_url=fs.url)
    """

    def __init__(
        self,
        fake: FakeSlack | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.fake = fake or FakeSlack()
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT/`` (admin API lives under ``_fake/``)."""
        return f"http://{self.host}:{self.port}/"

    @property
    def url(self) -> str:
        """Slack API base URL for slack_sdk's ``base_url``: ``http://127.0.0.1:PORT/api/``."""
        return f"{self.base_url}api/"

    def start(self, timeout: float = 10.0) -> FakeSlackServer:
        """Start serving and wait until uvicorn accepts connections."""
        self._sock = bind_socket(self.host, self._requested_port)
        self.port = self._sock.getsockname()[1]
        self._server = make_server(self.fake, log_level=self._log_level)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"fakeslack-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake Slack server failed to start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (in-flight ``timeout`` faults are cancelled)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> FakeSlackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
