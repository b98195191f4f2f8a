"""Process management: the bot as users start it, the fake Slack, alerta, databases, /proc sampling.

Everything started here is stopped by its context manager (SIGTERM, then SIGKILL), whatever happens.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.fakeslack import FakeClient, ThreadFake
from tests.fakeslack.remote import READY_PREFIX

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BOT_TOKEN = "xoxb-test"
AM_TOKEN = "bench-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_db_counter = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree(pid: int) -> list[int]:
    """`pid` and its descendants: the bot is the web process and its worker process."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in task.read_text().split()]
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants, from /proc/<pid>/stat."""
    total = 0.0
    for each in tree(pid):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{each}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def wait_quiet(pid: int, limit: float = 30.0, window: float = 2.0, busy_ms_per_s: float = 10.0) -> float:
    """Wait (at most `limit` s) until the process tree used less than `busy_ms_per_s` of CPU per
    second over a `window`: its start-up work (first claims and ticks, clients, caches) is done.
    The seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = cpu_seconds(pid)
        time.sleep(window)
        if (cpu_seconds(pid) - before) / window * 1000 < busy_ms_per_s:
            break
    return time.monotonic() - start


def memory_kib(pid: int) -> dict[str, int]:
    """Of a process and its descendants, summed, in KiB: VmRSS, VmHWM (peak RSS; the sum of each
    process's peak) and Pss (shared pages split between the processes that map them, so the sum
    is what the processes take together; the RSS sum counts shared libraries once per process)."""
    out = {"VmRSS": 0, "VmHWM": 0, "Pss": 0, "processes": 0}
    for each in tree(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue
        out["processes"] += 1
        for line in (*status.splitlines(), *rollup.splitlines()):
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Pss"):
                out[key] += int(value.split()[0])
    return out


def wait_http(
    url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None, grace: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# -- the fake Slack ---------------------------------------------------------------------------------


class ProcessFake:
    """`python -m bench.fakeslack` in its own process."""

    def __init__(self, rate_limits: bool = False) -> None:
        self.rate_limits = rate_limits
        self.proc: subprocess.Popen[str] | None = None
        self.url = self.base_url = ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> ProcessFake:
        cmd = [sys.executable, "-m", "bench.fakeslack", "--port", "0"]
        if self.rate_limits:
            cmd.append("--rate-limits")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"fake Slack did not start: {line!r}")
        self.url = line[len(READY_PREFIX) :].strip()
        self.base_url = self.url.removesuffix("api/")
        wait_http(f"{self.base_url}_fake/health", 10)
        return self

    @property
    def admin(self) -> FakeClient:
        return FakeClient(self.base_url, timeout=60)

    def stop(self) -> None:
        stop_process(self.proc, grace=5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()


Fake = ProcessFake | ThreadFake


@contextlib.contextmanager
def fake_slack(placement: str = "process", rate_limits: bool = False) -> Iterator[Fake]:
    fake: Fake = ThreadFake(rate_limits) if placement == "thread" else ProcessFake(rate_limits)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


# -- databases --------------------------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # sqlite | postgres
    url: str  # for the bot (SQLAlchemy)
    name: str = ""

    @property
    def libpq_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.name}"


def create_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def database(kind: str, label: str = "bot") -> Iterator[Database]:
    """A fresh, empty database for one run; removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp:
            yield Database("sqlite", f"sqlite:///{tmp}/incidentbot.db")
        return
    name = f"bench_{label}_{os.getpid()}_{next(_db_counter)}"
    create_pg_database(name)
    try:
        yield Database("postgres", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", name)
    finally:
        drop_pg_database(name)


# -- the bot ----------------------------------------------------------------------------------------


class Bot:
    """`python -m bot serve` with settings from the environment, exactly as a user runs it."""

    def __init__(self, slack_url: str, db: Database, log_path: Path, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "bench-signing-secret",
            "SLACK_API_URL": slack_url,
            "DATABASE_URL": db.url,
            "ALERTMANAGER_TOKEN": AM_TOKEN,
            "RUNBOOKS_DIR": str(ROOT / "runbooks"),
            "ROTATIONS_DIR": str(ROOT / "rotations"),
            "LOG_LEVEL": "INFO",
            **extra_env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/alertmanager"

    def start(self) -> Bot:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        wait_http(f"{self.url}/readyz", 60, self.proc, self.log_path)
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    def outbox_pending(self, gauges: tuple[str, ...] = ("outbox", "inbox")) -> int | None:
        """incidentbot_outbox_pending plus incidentbot_inbox_pending from /metrics: the work still
        to do (webhooks stored but not applied yet, Slack calls not delivered yet)."""
        found: list[int] = []
        names = tuple(f"incidentbot_{gauge}_pending " for gauge in gauges)
        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
                for line in resp.read().decode().splitlines():
                    if line.startswith(names):
                        found.append(int(float(line.split()[1])))
        except OSError:
            return None
        return sum(found) if found else None

    def wait_outbox_empty(
        self, limit: float, poll: float = 1.0, gauges: tuple[str, ...] = ("outbox", "inbox")
    ) -> tuple[bool, float]:
        """Wait (at most `limit` s) until nothing is pending in two readings `poll` s apart;
        (drained, seconds waited)."""
        start = time.monotonic()
        zeros = 0
        while time.monotonic() - start < limit:
            zeros = zeros + 1 if self.outbox_pending(gauges) == 0 else 0
            if zeros >= 2:
                return True, time.monotonic() - start - poll  # the second reading only confirms
            time.sleep(poll)
        return False, time.monotonic() - start

    def wait_inbox_empty(self, limit: float, poll: float = 1.0) -> tuple[bool, float]:
        """Every stored webhook applied (the outbox may still be delivering)."""
        return self.wait_outbox_empty(limit, poll, ("inbox",))


@contextlib.contextmanager
def bot(slack_url: str, db: Database, log_path: Path, **extra_env: str) -> Iterator[Bot]:
    proc = Bot(slack_url, db, log_path, **extra_env)
    try:
        yield proc.start()
    finally:
        proc.stop()
