"""The fake Slack (tests/fakeslack) for benchmarks: in its own process or in a thread, optionally
behind Slack-like rate limits (bench/ratelimit.py).

Process: ``python -m bench.fakeslack --port 0 [--rate-limits]`` prints ``FAKESLACK READY <url>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import urllib.request
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from bench.ratelimit import Limiter, RateLimited
from tests.fakeslack import DEFAULT_TOKEN, FakeSlack, RemoteFakeSlack, create_app
from tests.fakeslack.remote import READY_PREFIX
from tests.fakeslack.server import bind_socket

# People in rotations/people.yaml without a `slack:` ID, found by users.lookupByEmail.
USERS = {"sarah@example.com": "U01SARAH", "tom@example.com": "U01TOM"}


def build_app(rate_limits: bool) -> ASGIApp:
    # Message ts follow the wall clock; the bot posts to channels it created (membership checked).
    fake = FakeSlack([DEFAULT_TOKEN], users=USERS, ts_start=None)
    app = create_app(fake)
    return RateLimited(app, Limiter()) if rate_limits else app


def _config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
        backlog=1024,
    )


class FakeClient(RemoteFakeSlack):
    """Admin client (calls, state) plus the bench rate-limit report."""

    def ratelimits(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.base_url}_bench/ratelimits", timeout=self.timeout) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def calls_since(self, method: str | None, since: int) -> list[dict[str, Any]]:
        return self.calls(method, since)


class ThreadFake:
    """The fake served by uvicorn in a thread of the bench process."""

    def __init__(self, rate_limits: bool = False) -> None:
        self.sock = bind_socket("127.0.0.1", 0)
        port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/"
        self.url = f"{self.base_url}api/"
        self.server = uvicorn.Server(_config(build_app(rate_limits)))
        self.thread = threading.Thread(target=self._run, name="bench-fakeslack", daemon=True)
        self.pid: int | None = None  # shares the bench process

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> ThreadFake:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Slack thread did not start")
            time.sleep(0.01)
        return self

    @property
    def admin(self) -> FakeClient:
        return FakeClient(self.base_url, timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fakeslack")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-limits", action="store_true")
    opts = parser.parse_args(argv)
    sock = bind_socket("127.0.0.1", opts.port)
    print(f"{READY_PREFIX}http://127.0.0.1:{sock.getsockname()[1]}/api/", flush=True)
    uvicorn.Server(_config(build_app(opts.rate_limits))).run(sockets=[sock])


if __name__ == "__main__":
    main()
