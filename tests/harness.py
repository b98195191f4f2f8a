"""Running the real bot for tests: in a thread (injectable clock) or as a subprocess."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test"
AM_TOKEN = "s3cret-token"


def reachable_by_others(path: Path) -> None:
    """As root, let the tests' `nobody` reach `path`: a directory above it that others cannot enter
    (mkdtemp's 0700, a CI checkout inside one) gets o+x, nothing more."""
    if os.geteuid() != 0:
        return
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def children(pid: int) -> list[int]:
    """The child processes of `pid` (the worker process of a `serve`)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class Clock:
    """Real time shifted by an offset: it flows (so retries and backoff happen), and a test can
    jump it forward to make escalation steps due without waiting for them."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = (start - datetime.now(UTC)) if start else timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._offset += timedelta(**delta)


class ThreadServer:
    """uvicorn serving an ASGI app on 127.0.0.1 from a background thread (real HTTP)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 20, what="bot start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def bot_env(slack_url: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_url,
        "DATABASE_URL": database_url,
        "ALERTMANAGER_TOKEN": AM_TOKEN,
        "RUNBOOKS_DIR": str(ROOT / "runbooks"),
        "ROTATIONS_DIR": str(ROOT / "rotations"),
        "OUTBOX_POLL_SECONDS": "0.2",
        # Bulk tests want one channel per incident at the fake's speed; storm and pacing tests
        # set these back to realistic values themselves.
        "STORM_THRESHOLD": "100000",
        "SLACK_RATE_SCALE": "1000",
        "LOG_FORMAT": "json",
        "HANDOFF_NOTICES": "false",  # handoff tests turn them on
    }
    env.update(extra)
    return env


class BotProcess:
    """`incidentbot serve` as users run it, for restart, crash and end-to-end tests."""

    def __init__(
        self, env: dict[str, str], log_path: Path, port: int | None = None, *, own_group: bool = False
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        if env.get("DATABASE_URL"):
            register(self.url, env["DATABASE_URL"])
        self.log_path = log_path
        # In a process group of its own, a test can send it (and its worker child) what a terminal's
        # Ctrl+C sends, without reaching pytest.
        self.own_group = own_group
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> BotProcess:
        """Start `serve` without waiting for it to be ready."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            process_group=0 if self.own_group else None,
        )
        return self

    def start(self, ready_timeout: float = 30) -> BotProcess:
        self.launch()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"bot exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, ready_timeout, 0.1, "bot /readyz")
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None


def slack_headers(
    body: bytes,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    base = f"v0:{ts}:".encode() + body
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": content_type}


_REQUESTS = itertools.count(1)


def trigger_id() -> str:
    """A fresh trigger_id, as Slack gives every command, click and form (the bot deduplicates
    requests by it: reusing one is a replay)."""
    return f"{time.time_ns()}.{next(_REQUESTS)}.abcd"


def action_ts() -> str:
    """A click's `action_ts`: Slack's time of the click, unique per click."""
    return f"{time.time():.6f}{next(_REQUESTS) % 10}"


def slash_command_body(command: str, text: str, user: str = "U01ALEX", channel: str = "C0GENERAL") -> bytes:
    return urlencode(
        {
            "token": "deprecated",
            "team_id": "T0TEAM",
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0APP",
            "response_url": "http://127.0.0.1:9/response",
            "trigger_id": trigger_id(),
        }
    ).encode()


def block_action_body(
    action_id: str, value: str, user: str = "U01ALEX", channel: str = "C0GENERAL", message_ts: str = "1.0"
) -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0TEAM", "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "deprecated",
        "trigger_id": trigger_id(),
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "channel": {"id": channel, "name": "incident"},
        "message": {"ts": message_ts, "text": "card", "type": "message"},
        "response_url": "http://127.0.0.1:9/response",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b",
                "type": "button",
                "value": value,
                "action_ts": action_ts(),
                "text": {"type": "plain_text", "text": "x"},
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def post_alertmanager(
    base_url: str,
    payload: dict[str, Any] | bytes,
    token: str | None = AM_TOKEN,
    *,
    wait: bool = True,
    **kw: Any,
) -> httpx.Response:
    """POST as Alertmanager does; with `wait`, return once the bot processed what it accepted (see
    `settle`), so a test reads the effects right after, as before the inbox."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    r = httpx.post(f"{base_url}/webhooks/alertmanager", content=body, headers=headers, timeout=10, **kw)
    return settle(base_url, r) if wait else r


# The database of each bot a test started, by its URL: webhooks answer 202 once the notification is
# stored in the inbox, and the drain applies it moments later.
_DATABASES: dict[str, Any] = {}


def register(base_url: str, where: Any) -> None:
    """`where` (an Engine or a DATABASE_URL) is the database of the bot at `base_url`."""
    _DATABASES[base_url] = where


def settle(base_url: str, response: httpx.Response, timeout: float = 20.0) -> httpx.Response:
    """`response` (a webhook's answer), once the inbox row its 202 names is processed, when the
    bot at `base_url` is one this test run started."""
    where = _DATABASES.get(base_url)
    if response.status_code == 202 and where is not None and "inbox" in response.json():
        inbox_row(where, int(response.json()["inbox"]), timeout)
    return response


class FixedClock:
    """A clock that stands still until a test sets `t` (use cases called directly, no bot process)."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def service_context(
    db_dir: Path, clock: Callable[[], datetime], rotations_dir: Path = ROOT / "rotations", **fields: Any
):
    """A Context on a fresh SQLite database in `db_dir`, with the rotations of `rotations_dir`."""
    from bot.catalog.rotations import load_rotations
    from bot.service.context import Context
    from bot.store.db import make_engine, upgrade

    catalog, problems = load_rotations(rotations_dir)
    assert not problems and catalog is not None, problems
    engine = make_engine(f"sqlite:///{db_dir / 'bot.db'}")
    upgrade(engine)
    return Context(engine=engine, clock=clock, rotations=catalog, **fields)


def join_channel(bot, fake, channel_id: str, user: str, secret: str = SIGNING_SECRET) -> None:
    """`user` joins a channel in Slack, and Slack tells the bot (`member_joined_channel`): channel
    members may acknowledge, add notes and action items, and tick off runbook steps."""
    fake.channel(channel_id).members.append(user)
    event = {"type": "member_joined_channel", "user": user, "channel": channel_id, "channel_type": "C"}
    slack_event(bot, event, secret)


def paged_user(bot, incident_id: int, timeout: float = 15) -> str:
    """The Slack user first paged for an incident (who may then act on it), once the page is stored."""
    from sqlmodel import Session, col, select

    from bot.store.tables import Page

    def first() -> str | None:
        with Session(bot.ctx.engine) as session:
            query = select(Page.slack_user).where(col(Page.incident_id) == incident_id).order_by(col(Page.id))
            return session.exec(query).first()

    return wait_until(first, timeout, what=f"a page for incident {incident_id}")


def slack_event(bot, event: dict[str, Any], secret: str = SIGNING_SECRET) -> None:
    """Deliver a signed Events API callback (pin_added, reaction_added, ...) to the bot."""
    body = json.dumps(
        {
            "token": "x",
            "team_id": "T0TEAM",
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()
    headers = slack_headers(body, secret=secret, content_type="application/json")
    assert httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10).status_code == 200


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`incidentbot <args>` as a user runs it, in `cwd` (no `.env` there unless the test put one),
    with none of the bot's settings inherited from the test's own environment: only `env`'s."""
    from bot.settings import Settings

    ours = {name.upper() for name in Settings.model_fields}
    base = {k: v for k, v in os.environ.items() if k not in ours}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_ENGINES: dict[str, Any] = {}


def processed(where: Any, response: httpx.Response, timeout: float = 20.0) -> dict[str, Any]:
    """What a webhook led to, now that it lives on its inbox row rather than in the answer: waits
    until the drain processed the row the 202 names, and returns {"decision", "incident",
    "status", "inbox"}. `where` is a RunningBot, an Engine or a DATABASE_URL."""
    assert response.status_code == 202, (response.status_code, response.text)
    row_id = int(response.json()["inbox"])
    return inbox_row(where, row_id, timeout)


def inbox_row(where: Any, row_id: int, timeout: float = 20.0) -> dict[str, Any]:
    """The inbox row `row_id` once it is processed (done or parked), as a dict."""
    from sqlmodel import Session

    from bot.store.db import make_engine
    from bot.store.inbox_table import InboxRow

    if isinstance(where, str):
        engine = _ENGINES.get(where) or _ENGINES.setdefault(where, make_engine(where))
    else:
        engine = where.ctx.engine if hasattr(where, "ctx") else where

    def settled() -> dict[str, Any] | None:
        try:
            with Session(engine) as session:
                row = session.get(InboxRow, row_id)
                if row is None or row.status == "pending":
                    return None
                return {
                    "decision": row.decision,
                    "incident": row.incident_id,
                    "status": row.status,
                    "inbox": row.id,
                }
        except Exception:  # the database is busy with a crash recovery: ask again
            return None

    return wait_until(settled, timeout, what=f"inbox row {row_id} processed")
