"""Slow clients cannot hold the HTTP server (issue 16, item 1.10).

uvicorn only times out idle keep-alive connections, and every byte received resets that timer: a client
sending its headers a byte at a time (slow loris), or connecting and sending nothing, kept its connection
for ever. Now the headers must arrive within HTTP_HEADER_TIMEOUT and the body within HTTP_BODY_TIMEOUT,
and HTTP_MAX_CONNECTIONS bounds what the server holds. The bot runs as users run it (`incidentbot
serve`), with short timeouts so the tests are quick.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.http_server import RequestDeadlines
from tests.harness import AM_TOKEN, BotProcess, ThreadServer, bot_env, post_alertmanager, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)
TIMEOUTS = {"HTTP_HEADER_TIMEOUT": "2", "HTTP_BODY_TIMEOUT": "3", "HTTP_KEEPALIVE_TIMEOUT": "5"}
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Trickler:
    """Connections that send a byte every `every` seconds and note when the server closed them."""

    def __init__(self, port: int, count: int, start: bytes, every: float = 0.3) -> None:
        self.socks = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if start:
                sock.sendall(start)
            self.socks.append(sock)
        self.closed: set[int] = set()
        self.sent_after_start = 0
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for n, sock in enumerate(self.socks):
                if n in self.closed:
                    continue
                readable, _, _ = select.select([sock], [], [], 0)
                try:
                    if readable and sock.recv(4096) == b"":
                        self.closed.add(n)
                        continue
                    sock.sendall(b"a")
                    self.sent_after_start += 1
                except OSError:  # reset or broken pipe: closed by the server
                    self.closed.add(n)
            self._stop.wait(self.every)

    def all_closed(self) -> bool:
        return len(self.closed) == len(self.socks)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


class Idle:
    """Connections that send nothing at all (or only `start`) and wait."""

    def __init__(self, port: int, count: int, start: bytes = b"") -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        for sock in self.socks:
            if start:
                sock.sendall(start)

    def all_closed(self) -> bool:
        for sock in self.socks:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            try:
                if sock.recv(4096) != b"":
                    return False
            except OSError:
                pass
        return True

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


@pytest.fixture
def bot(fake_slack, database_url, tmp_path):
    def start(**extra: str) -> BotProcess:
        env = bot_env(fake_slack.url, database_url, **TIMEOUTS, **extra)
        started = BotProcess(env, tmp_path / "bot.log").start()
        running.append(started)
        return started

    running: list[BotProcess] = []
    yield start
    for process in running:
        process.stop()


HEADERS_START = b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: bot\r\nX-Slow: "


@sqlite_only
def test_slow_loris_headers_are_cut_off_and_webhooks_still_answered(bot):
    process = bot()
    loris = Trickler(process.port, 30, HEADERS_START)
    idle = Idle(process.port, 10)  # connected, silent
    try:
        r = post_alertmanager(process.url, FIXTURE)
        assert r.status_code == 202 and r.json()["status"] == "accepted"
        wait_until(loris.all_closed, 30, 0.2, "the slow-loris connections closed by the server")
        assert loris.sent_after_start > len(loris.socks)  # they were still sending when cut off
        wait_until(idle.all_closed, 30, 0.2, "the silent connections closed by the server")
    finally:
        loris.stop()
        idle.close()
    assert httpx.get(f"{process.url}/healthz", timeout=5).status_code == 200
    log = process.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]


@sqlite_only
def test_a_body_trickled_byte_by_byte_is_cut_off(bot):
    process = bot()
    head = (
        "POST /webhooks/alertmanager HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {AM_TOKEN}\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    rudy = Trickler(process.port, 5, head + b'{"version": "4", "x": "')
    try:
        wait_until(rudy.all_closed, 30, 0.2, "the slow bodies cut off")
        assert rudy.sent_after_start > len(rudy.socks)
    finally:
        rudy.stop()
    r = post_alertmanager(process.url, FIXTURE)
    assert r.status_code == 202 and r.json()["inbox"] == 1  # nothing was stored from the slow ones
    log = process.log_path.read_text()
    assert "Exception in ASGI application" not in log and "Traceback" not in log, log[-3000:]


@sqlite_only
def test_at_the_connection_limit_requests_get_503_until_the_slow_ones_are_cut_off(bot):
    process = bot(HTTP_MAX_CONNECTIONS="10")
    idle = Idle(process.port, 10)
    try:
        r = post_alertmanager(process.url, FIXTURE)
        assert r.status_code == 503  # Alertmanager retries a 5xx: nothing is lost
        wait_until(idle.all_closed, 30, 0.2, "the idle connections closed")
        r = post_alertmanager(process.url, FIXTURE)
        assert r.status_code == 202, r.text
    finally:
        idle.close()


@sqlite_only
def test_a_kept_alive_connection_is_reused_across_requests(bot):
    # The header deadline starts with each request's first byte, not at the connection's start: a
    # client idling between requests (less than the keep-alive timeout) is not cut off.
    process = bot()
    sock = socket.create_connection(("127.0.0.1", process.port), timeout=10)
    request = b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n"

    def answer() -> bytes:
        got = b""
        while not got.endswith(b'{"status":"ok"}'):
            chunk = sock.recv(4096)
            assert chunk, f"the server closed the connection after {got!r}"
            got += chunk
        return got

    try:
        for _ in range(2):
            sock.sendall(request)
            assert answer().startswith(b"HTTP/1.1 200")
            time.sleep(3)  # longer than HTTP_HEADER_TIMEOUT, shorter than HTTP_KEEPALIVE_TIMEOUT
        sock.sendall(request)
        assert answer().startswith(b"HTTP/1.1 200")
    finally:
        sock.close()


@pytest.mark.parametrize("implementation", ["h11", "httptools"])
def test_the_deadlines_work_over_either_http_implementation(implementation):
    """uvicorn picks httptools when it is installed, h11 otherwise: the mixin holds over both."""
    base = {"h11": H11Protocol, "httptools": HttpToolsProtocol}[implementation]
    protocol = type("P", (RequestDeadlines, base), {"header_timeout": 1.0, "body_timeout": 1.0})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = ThreadServer(app)
    config = uvicorn.Config(app, port=server.port, http=protocol, lifespan="off", log_config=None)
    server.server = uvicorn.Server(config)
    with server:
        loris = Trickler(server.port, 3, HEADERS_START)
        body = Trickler(server.port, 3, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n")
        try:
            assert httpx.get(server.url, timeout=5).text == "ok"
            wait_until(loris.all_closed, 20, 0.2, "slow headers cut off")
            wait_until(body.all_closed, 20, 0.2, "slow body cut off")
        finally:
            loris.stop()
            body.stop()
