"""First run as the Docker image runs it: a non-root user, a read-only app directory, `.env` copied
from `.env.example` (also passed as the container's environment, like `docker run --env-file .env`),
and the image's own ENV from the Dockerfile with DATA_DIR pointing at a writable directory.

declare -> resolve -> close through signed slash commands; the database and the post-mortem draft
land under DATA_DIR and the draft reaches Slack. When the post-mortem directory cannot be written,
the draft is still uploaded and the channel is told why it is not on disk (no retrying for ever).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness import (
    AM_TOKEN,
    BOT_TOKEN,
    ROOT,
    SIGNING_SECRET,
    free_port,
    reachable_by_others,
    slack_headers,
    slash_command_body,
    wait_until,
)

pytestmark = pytest.mark.e2e

IMAGE_DATA = "/data"  # the Dockerfile's volume; the test maps it to a temporary directory
IMAGE_APP = "/app"  # the Dockerfile's WORKDIR; the test maps it to the read-only copy


def dockerfile_env() -> dict[str, str]:
    """The ENV the image sets (continuation lines joined; `KEY=VALUE` pairs)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line.split()[1:] if "=" in pair)
    return env


def env_file(path: Path) -> dict[str, str]:
    """`docker run --env-file` semantics: KEY=VALUE lines, `#` comments, no quoting, blanks kept."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value
    return out


@dataclass
class Sandbox:
    app: Path  # read-only copy of the installed app (bot/, runbooks/, rotations/, .env)
    data: Path  # DATA_DIR, writable by the bot's user
    uid: int
    gid: int


def _runner_ids() -> tuple[int, int]:
    """Root runs the bot as `nobody` (like the image's non-root user); others run it as themselves."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "nobody"], check=True)
        user = pwd.getpwnam("nobody")
    return user.pw_uid, user.pw_gid


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    base = Path(tempfile.mkdtemp(prefix="incidentbot-docker-like-"))
    base.chmod(0o755)  # mkdtemp makes it 0700: the bot's user must reach app/ and data/
    app, data = base / "app", base / "data"
    for part in ("bot", "runbooks", "rotations"):
        shutil.copytree(ROOT / part, app / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".env.example", app / ".env")
    data.mkdir()
    uid, gid = _runner_ids()
    os.chown(data, uid, gid)
    reachable_by_others(Path(sys.prefix))  # the venv the bot runs from
    for path in [app, *app.rglob("*")]:  # read-only for everyone, as /app is for the image's user
        mode = path.stat().st_mode
        path.chmod((mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH) & ~0o222)
    try:
        yield Sandbox(app, data, uid, gid)
    finally:
        for path in [base, *base.rglob("*")]:
            # SQLite's -shm/-wal may go between the listing and the chmod (the bot just stopped).
            with contextlib.suppress(FileNotFoundError):
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(base, ignore_errors=True)


class ContainerLikeBot:
    """`incidentbot serve` from the read-only app directory, as the sandbox's user."""

    def __init__(self, box: Sandbox, slack_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        image = {
            k: v.replace(IMAGE_DATA, str(box.data)).replace(IMAGE_APP, str(box.app))
            for k, v in dockerfile_env().items()
        }
        assert image.get("DATA_DIR") == str(box.data), "the image must set DATA_DIR=/data"
        # Only the secrets (refused as placeholders) and where Slack is are overridden, as a user would.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **image,
            **env_file(box.app / ".env"),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "ALERTMANAGER_TOKEN": AM_TOKEN,
            "SLACK_API_URL": slack_url,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
        }
        self.box, self.log = box, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ContainerLikeBot:
        as_user = []
        if os.geteuid() == 0:
            ids = [f"--reuid={self.box.uid}", f"--regid={self.box.gid}", "--clear-groups"]
            as_user = ["setpriv", *ids, "--"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*as_user, sys.executable, "-m", "bot", "serve"],
                cwd=self.box.app,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-3000:]
                raise AssertionError(f"bot exited with {self.proc.returncode}:\n{tail}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 30, 0.1, "bot /readyz")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def slash(self, text: str, channel: str) -> str:
        body = slash_command_body("/incident", text, user="U01ALEX", channel=channel)
        r = httpx.post(f"{self.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
        assert r.status_code == 200, r.text
        return r.json().get("text", "") if r.content else ""


@pytest.fixture
def container(sandbox, fake_slack, tmp_path) -> Iterator[ContainerLikeBot]:
    bot = ContainerLikeBot(sandbox, fake_slack.url, tmp_path / "bot.log")
    try:
        yield bot
    finally:
        bot.stop()


def declare_resolve_close(bot: ContainerLikeBot, fake) -> str:
    """The incident's channel id, once `/incident close` was answered."""
    assert "declared" in bot.slash("declare Checkout is failing sev2", "C0GENERAL")
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
        20,
        0.1,
        "incident channel",
    )
    bot.slash("resolve rolled back", chan.id)
    wait_until(lambda: "resolved" in fake.channel(chan.id).topic, 20, 0.1, "resolved")
    bot.slash("close", chan.id)
    return chan.id


def uploaded_draft(fake, channel: str):
    return wait_until(
        lambda: next(
            (f for f in fake.files.values() if f.completed and channel in f.channels and f.content), None
        ),
        30,
        0.1,
        "post-mortem upload",
    )


def test_image_defaults_win_over_a_copied_env_example(container, sandbox, fake_slack):
    fake = fake_slack.fake
    container.start()
    channel = declare_resolve_close(container, fake)

    draft = uploaded_draft(fake, channel)
    assert draft.filename.endswith(".md") and "Checkout is failing" in draft.text
    on_disk = wait_until(lambda: list((sandbox.data / "postmortems").glob("*.md")), 10, 0.1, "draft file")
    assert [p.name for p in on_disk] == [draft.filename]
    assert on_disk[0].read_text() == draft.text
    # The database is the image's /data/incidentbot.db, not ./incidentbot.db in the read-only app.
    assert (sandbox.data / "incidentbot.db").exists()
    assert not list(sandbox.app.glob("incidentbot.db*")) and not (sandbox.app / "postmortems").exists()


def test_unwritable_postmortem_directory_still_uploads_and_says_why(container, sandbox, fake_slack):
    fake = fake_slack.fake
    blocked = sandbox.data / "postmortems"
    blocked.mkdir(mode=0o555)  # owned by the test's user, not writable by the bot's
    container.start()
    channel = declare_resolve_close(container, fake)

    draft = uploaded_draft(fake, channel)
    assert "Checkout is failing" in draft.text and not list(blocked.iterdir())
    said = draft.initial_comment or ""
    assert f"Could not write the post-mortem draft to {blocked}: permission denied" in said
    assert "POSTMORTEMS_DIR" in said and "DATA_DIR" in said

    # Settled, not retried for ever: the postmortem row is done and nothing is left pending.
    def outbox(query: str) -> list[tuple]:
        with sqlite3.connect(sandbox.data / "incidentbot.db") as db:
            return db.execute(query).fetchall()

    pending = "SELECT id FROM outbox WHERE status = 'pending'"
    wait_until(lambda: not outbox(pending), 20, 0.1, "outbox drained")
    assert outbox("SELECT status, attempts FROM outbox WHERE op = 'postmortem'") == [("sent", 1)]
    log = container.log.read_text()
    assert "permission denied" in log.lower() and BOT_TOKEN not in log
