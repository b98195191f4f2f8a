"""Socket Mode: with SLACK_APP_TOKEN the bot also takes slash commands over a WebSocket, and it must
never stop intake (issue 16, item 1.6).

Observed: with SLACK_APP_TOKEN set and Slack unreachable at start, the HTTP server never started
(webhooks refused for minutes) and SIGTERM was ignored: the app's start awaited the connection, and
slack_sdk retries it for ever. Now the HTTP server starts first, Socket Mode connects in the background
with backoff, and SIGTERM stops the bot within 10 s whether it is connecting, connected or reconnecting.

The fake Slack plays Slack's part (`apps.connections.open` and the WebSocket, see
tests/fakeslack/socket_mode.py); "unreachable" is a port that accepts connections and never answers
(the worst case: nothing fails fast).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot.slack.socket_mode import LOG_EVERY, SocketModeLink
from tests.harness import BotProcess, bot_env, post_alertmanager, processed, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)
APP_TOKEN = "xapp-1-A0APP-1-test"
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def help_envelope(envelope_id: str) -> dict:
    return {
        "envelope_id": envelope_id,
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": {
            "command": "/incident",
            "text": "help",
            "user_id": "U01ALEX",
            "channel_id": "C0GENERAL",
            "team_id": "T0TEAM",
            "api_app_id": "A0APP",
            "trigger_id": "1.2.3",
            "response_url": "http://127.0.0.1:9/x",
        },
    }


def acked(hub, envelope_id: str) -> dict | None:
    return next((a for a in hub.acks if a.get("envelope_id") == envelope_id), None)


class Blackhole:
    """A TCP port that accepts connections and never sends a byte (an unreachable Slack, worst case)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def blackhole():
    hole = Blackhole()
    yield hole
    hole.close()


# -- the fake plays Slack's part as Slack does ---------------------------------------------------------


def test_fake_apps_connections_open_answers_like_slack(fake_slack):
    fake = fake_slack.fake
    fake.add_app_token(APP_TOKEN)

    def call(token: str | None, in_body: bool = False) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token and not in_body else {}
        data = {"token": token} if in_body and token else {}
        return httpx.post(f"{fake_slack.url}apps.connections.open", headers=headers, data=data).json()

    opened = call(APP_TOKEN)
    assert opened["ok"] and opened["url"].startswith(f"ws://127.0.0.1:{fake_slack.port}/link/?ticket=")
    assert call(None) == {"ok": False, "error": "not_authed"}
    assert call(APP_TOKEN, in_body=True) == {"ok": False, "error": "not_authed"}  # header only
    assert call("xoxb-test") == {"ok": False, "error": "not_allowed_token_type"}
    assert call("xapp-1-unknown") == {"ok": False, "error": "invalid_auth"}
    # An app-level token cannot call the Web API as the bot.
    r = httpx.post(f"{fake_slack.url}auth.test", headers={"Authorization": f"Bearer {APP_TOKEN}"}).json()
    assert r == {"ok": False, "error": "not_allowed_token_type"}


# -- in the app --------------------------------------------------------------------------------------


@sqlite_only
def test_slash_command_over_socket_mode_and_webhooks_over_http(start_bot, fake_slack):
    hub = fake_slack.fake.socket_mode
    fake_slack.fake.add_app_token(APP_TOKEN)
    bot = start_bot(slack_app_token=APP_TOKEN)
    assert hub.wait_connected(15), "the bot did not connect over Socket Mode"
    hub.send(help_envelope("env-1"))
    ack = wait_until(lambda: acked(hub, "env-1"), 15, what="the ack")
    assert "/incident declare <title>" in json.dumps(ack.get("payload", {}))
    # Webhooks keep working over HTTP.
    assert post_alertmanager(bot.url, FIXTURE).status_code == 202


@sqlite_only
def test_after_slacks_disconnect_the_bot_connects_again(start_bot, fake_slack):
    hub = fake_slack.fake.socket_mode
    fake_slack.fake.add_app_token(APP_TOKEN)
    start_bot(slack_app_token=APP_TOKEN)
    assert hub.wait_connected(15)
    hub.disconnect("refresh_requested")
    assert hub.wait_connected(30, hellos=2), "no new connection after Slack's disconnect"
    hub.send(help_envelope("env-2"))
    wait_until(lambda: acked(hub, "env-2"), 15, what="an ack on the new connection")


@sqlite_only
def test_webhooks_are_served_at_once_while_slack_is_unreachable(start_bot, blackhole):
    bot = start_bot(slack_app_token=APP_TOKEN, slack_api_url=blackhole.url)
    r = post_alertmanager(bot.url, FIXTURE)
    assert r.status_code == 202 and processed(bot, r)["decision"] == "first notification"


# -- SIGTERM in every state, as users run it ---------------------------------------------------------


def stop_within_10s(bot: BotProcess) -> None:
    started = time.monotonic()
    code = bot.stop()
    elapsed = time.monotonic() - started
    log = bot.log_path.read_text()
    assert elapsed < 10, f"took {elapsed:.1f}s to exit:\n{log[-3000:]}"
    assert code in (0, -15), log[-2000:]


@sqlite_only
def test_sigterm_while_slack_is_unreachable(database_url, blackhole, tmp_path):
    # Before: /readyz never answered (the start waited for Slack), and SIGTERM was ignored.
    env = bot_env(blackhole.url, database_url, SLACK_APP_TOKEN=APP_TOKEN)
    bot = BotProcess(env, tmp_path / "bot.log").start(ready_timeout=20)
    r = post_alertmanager(bot.url, FIXTURE)
    assert r.status_code == 202, r.text
    wait_until(lambda: blackhole.accepted, 10, what="a connection attempt to Slack")
    stop_within_10s(bot)


@sqlite_only
def test_sigterm_while_connected(database_url, fake_slack, tmp_path):
    hub = fake_slack.fake.socket_mode
    fake_slack.fake.add_app_token(APP_TOKEN)
    env = bot_env(fake_slack.url, database_url, SLACK_APP_TOKEN=APP_TOKEN)
    bot = BotProcess(env, tmp_path / "bot.log").start()
    assert hub.wait_connected(15)
    hub.send(help_envelope("env-3"))
    wait_until(lambda: acked(hub, "env-3"), 15, what="an ack")
    stop_within_10s(bot)
    wait_until(lambda: hub.connections == 0, 5, what="the WebSocket closed")


@sqlite_only
def test_sigterm_while_reconnecting_to_a_slack_that_stopped_answering(database_url, fake_slack, tmp_path):
    hub = fake_slack.fake.socket_mode
    fake_slack.fake.add_app_token(APP_TOKEN)
    env = bot_env(fake_slack.url, database_url, SLACK_APP_TOKEN=APP_TOKEN)
    bot = BotProcess(env, tmp_path / "bot.log").start()
    assert hub.wait_connected(15)
    # Slack goes away: apps.connections.open hangs, and the connection is ended.
    fake_slack.fake.add_fault({"method": "apps.connections.open", "mode": "timeout", "delay": 120})
    hub.disconnect("warning")
    wait_until(lambda: fake_slack.fake.calls_to("apps.connections.open")[1:], 15, what="a reconnect")
    assert post_alertmanager(bot.url, FIXTURE).status_code == 202  # intake goes on
    stop_within_10s(bot)


# -- backoff and logging (no real waiting: the sleeps are recorded) ----------------------------------


class Refused:
    def __init__(self, fail: int) -> None:
        self.fail, self.calls = fail, 0

    async def __call__(self):
        self.calls += 1
        if self.calls <= self.fail:
            raise ConnectionRefusedError("refused")
        return Live()


class Live:
    def __init__(self) -> None:
        self.closed = False

    async def is_connected(self) -> bool:
        return not self.closed

    async def close(self) -> None:
        self.closed = True


def test_backoff_doubles_to_a_minute_and_failures_are_logged_once_a_minute(caplog):
    caplog.set_level(logging.INFO, logger="bot.slack.socket_mode")
    now = [0.0]
    sleeps: list[float] = []
    connect = Refused(fail=12)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds
        if connect.calls > connect.fail and len(sleeps) > connect.fail:
            raise asyncio.CancelledError  # connected and watching: enough

    async def run() -> SocketModeLink:
        link = SocketModeLink(connect, clock=lambda: now[0], sleep=sleep)
        link.start()
        await asyncio.wait({link._task}, timeout=5)  # ends with the CancelledError above
        return link

    asyncio.run(run())
    assert sleeps[:12] == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60]
    assert connect.calls == 13
    failures = [r for r in caplog.records if "cannot connect to Slack" in r.getMessage()]
    # 12 failures over 1+2+...+60... = 363 s of (fake) time: one line at most per LOG_EVERY.
    assert 1 < len(failures) <= 1 + sum(sleeps[:12]) // LOG_EVERY, [r.getMessage() for r in failures]
    assert "attempt 1," in failures[0].getMessage() and "HTTP keeps serving" in failures[0].getMessage()
    assert any("connected to Slack over Socket Mode" in r.getMessage() for r in caplog.records)


def test_stop_ends_a_connect_that_hangs():
    async def hangs():
        await asyncio.Event().wait()

    async def run() -> bool:
        link = SocketModeLink(hangs)
        link.start()
        task = link._task
        await asyncio.sleep(0)  # the attempt is under way
        await link.stop()
        return task is not None and task.done()

    assert asyncio.run(run())
