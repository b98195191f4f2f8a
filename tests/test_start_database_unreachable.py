"""An unreachable PostgreSQL at start is one log line, retried, and the bot comes up when it answers
(issue 17, 3).

Observed: `serve` with PostgreSQL down logged one 9 kB line (SQLAlchemy's traceback, in JSON) and
exited 3. Now it logs `database unreachable at <host>:<port> (<reason>); retrying in Ns` with backoff
from 1 s to 30 s, answers /healthz (and /readyz and everything else with 503) while it waits, starts
when the database answers, and still stops within 10 s on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from tests.harness import ROOT, BotProcess, bot_env, free_port, post_alertmanager, run_cli, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

PASSWORD = "Db-Pa55word"
FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)


def closed_port_url(pg_url: str, port: int) -> str:
    """`pg_url` (its own schema on the test server) at a port where nothing listens, with a password."""
    return pg_url.replace("postgres@127.0.0.1:5432", f"postgres:{PASSWORD}@127.0.0.1:{port}", 1)


def log_lines(bot: BotProcess) -> list[str]:
    return bot.log_path.read_text(errors="replace").splitlines()


def messages(bot: BotProcess) -> list[str]:
    return [json.loads(line)["msg"] for line in log_lines(bot)]


class Forwarder:
    """Listens on `port` and forwards each connection to PostgreSQL: the database "comes up"."""

    def __init__(self, port: int, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", port))
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target)
                self.sockets += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for s in self.sockets:
            with suppress(OSError):
                s.close()


def test_waits_with_one_line_per_attempt_answers_healthz_and_stops_on_sigterm(pg_url, tmp_path):
    port = free_port()
    bot = BotProcess(bot_env("http://127.0.0.1:9/api/", closed_port_url(pg_url, port)), tmp_path / "bot.log")
    bot.launch()
    try:
        wait_until(lambda: any("retrying in 2s" in m for m in messages(bot)), 20, 0.1, "a second attempt")
        # Up and honest while it waits: alive, not ready, and webhooks are told to come back (5xx).
        assert httpx.get(f"{bot.url}/healthz", timeout=5).status_code == 200
        ready = httpx.get(f"{bot.url}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["status"] == "starting", ready.text
        answer = post_alertmanager(bot.url, FIXTURE)
        assert answer.status_code == 503 and answer.headers.get("retry-after"), answer.text
    finally:
        started = time.monotonic()
        code = bot.stop()
        elapsed = time.monotonic() - started
    text = bot.log_path.read_text(errors="replace")
    assert elapsed < 10, f"took {elapsed:.1f}s to stop"
    assert code in (0, -15), text[-3000:]
    waits = [m for m in messages(bot) if m.startswith("database unreachable")]
    assert waits[:2] == [
        f"database unreachable at 127.0.0.1:{port} (connection refused); retrying in 1s",
        f"database unreachable at 127.0.0.1:{port} (connection refused); retrying in 2s",
    ], waits
    assert "Traceback" not in text and PASSWORD not in text
    assert max(len(line) for line in log_lines(bot)) < 1000, max(log_lines(bot), key=len)


def test_starts_once_the_database_answers(fake_slack, pg_url, tmp_path):
    port = free_port()
    bot = BotProcess(bot_env(fake_slack.url, closed_port_url(pg_url, port)), tmp_path / "bot.log")
    bot.launch()
    forwarder = None
    try:
        wait_until(lambda: any("retrying in 1s" in m for m in messages(bot)), 20, 0.1, "a first attempt")
        forwarder = Forwarder(port)

        def ready() -> bool:
            with suppress(httpx.HTTPError):
                return httpx.get(f"{bot.url}/readyz", timeout=2).status_code == 200
            return False

        wait_until(ready, 30, 0.2, "ready once the database answers")
        assert "incidentbot ready" in messages(bot)
        assert post_alertmanager(bot.url, FIXTURE).status_code == 202
        wait_until(lambda: fake_slack.fake.calls_to("conversations.create"), 20, 0.1, "the incident channel")
    finally:
        code = bot.stop()
        if forwarder is not None:
            forwarder.close()
    assert code in (0, -15), bot.log_path.read_text()[-3000:]
    assert "Traceback" not in bot.log_path.read_text()


def test_one_shot_commands_say_so_in_one_line(pg_url, tmp_path):
    port = free_port()
    proc = run_cli("db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": closed_port_url(pg_url, port)})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        f"incidentbot: database unreachable at 127.0.0.1:{port} (connection refused)"
    ]


def test_incidentbot_work_alone_waits_too_and_stops_on_sigterm(pg_url, tmp_path):
    """`incidentbot work` run on its own (another host, say) migrates first: it waits the same way."""
    port = free_port()
    env = {**os.environ, **bot_env("http://127.0.0.1:9/api/", closed_port_url(pg_url, port))}
    log_path = tmp_path / "work.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "work"], env=env, stdout=log, stderr=log, cwd=ROOT
        )
    try:
        said = f"database unreachable at 127.0.0.1:{port} (connection refused); retrying in 1s"
        wait_until(lambda: said in log_path.read_text(), 20, 0.1, "the worker to say why it waits")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log_path.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and PASSWORD not in text
