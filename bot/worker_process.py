"""The outbox worker and the scheduler in a child process of `incidentbot serve`.

Why: Slack delivery (claims, calls, settles) and webhook handling in one process share one GIL, so
under load a webhook's answer waits behind delivery work. In a child process delivery runs on the
second core and webhooks are answered in their own process.

`serve` forks the child before it starts its event loop, threads or database connections, with
every module already imported and frozen out of the garbage collector's reach (`gc.freeze`), so
both processes share those pages copy-on-write instead of holding a copy each. The child waits
for the parent's first byte on a pipe (sent once migrations are done), then delivers.

The parent wakes the child through that pipe (a byte per commit that enqueued rows, dropped when
the pipe is full: one pending wake-up is enough). The child dies with its parent, also on SIGKILL
(PR_SET_PDEATHSIG), so a crash of the bot is a crash of both, as with one process; and it stops
when the pipe closes. If the child dies alone, the parent starts a new one (`incidentbot work`).

Ctrl+C in a terminal sends SIGINT to the whole process group, parent and child alike. The child
ignores it: the parent stops it in order (by closing the pipe) once its own graceful shutdown has
begun. A child that stopped on SIGINT by itself was taken for a crash and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.service.context import Context, utcnow
from bot.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
RESTART_DELAY = 1.0
OUTBOX, INBOX = b"!", b"i"  # what a byte on the wake pipe wakes


@dataclass(frozen=True)
class Forked:
    """A child forked by `fork_worker`, waiting for its first byte on `wake_fd`."""

    pid: int
    wake_fd: int  # the pipe's write end (the child reads the other)


def fork_worker(settings: Settings) -> Forked:
    """Fork the worker process. Call before any event loop, thread or database connection exists
    (the child must not inherit any of them in use)."""
    import httpcore  # noqa: F401  (httpx imports it with its first client: share it, do not load it twice)

    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # objects made so far move out of the GC's reach, so it does not copy their pages
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            os.close(write_fd)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's (see above)
            _die_with_parent()
            # The parent's go-ahead (the schema is migrated); nothing if it stopped or died first.
            go = os.read(read_fd, 1)
            code = run(settings, read_fd, migrate=False) if go else 0
        except BaseException:
            log.exception("the worker process failed")
        finally:
            logging.shutdown()
            os._exit(code)  # never return into the parent's `serve`
    os.close(read_fd)
    os.set_blocking(write_fd, False)
    return Forked(pid, write_fd)


class WorkerProcess:
    """Parent side: let the child start, wake it, start a new one if it dies, stop it."""

    def __init__(self, forked: Forked | None = None) -> None:
        self._forked = forked
        self._proc: asyncio.subprocess.Process | None = None
        self._wake_fd: int | None = forked.wake_fd if forked else None
        # Held while writing to or closing `_wake_fd`: once closed, its number may be reused by
        # another file (a database socket), which a late wake-up must never write to.
        self._fd_lock = threading.Lock()
        self._exit: asyncio.Task[int] | None = None  # the current child's exit code
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    def attach(self, ctx: Context) -> None:
        """Commits in this process wake the child's outbox worker (`!`) and inbox drain (`i`)."""
        ctx.wake, ctx.wake_inbox = self.wake, self.wake_inbox

    def wake(self, what: bytes = OUTBOX) -> None:
        """Thread-safe, never blocks, never raises: the child polls anyway."""
        with self._fd_lock, contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            if self._wake_fd is not None:
                os.write(self._wake_fd, what)

    def wake_inbox(self) -> None:
        self.wake(INBOX)

    async def start(self) -> None:
        """Called once the database is migrated."""
        if self._forked is not None:
            os.write(self._forked.wake_fd, b"!")  # go ahead
            self._exit = asyncio.create_task(self._reap(self._forked.pid))
            log.info("outbox worker and scheduler run in process %d", self._forked.pid)
        else:
            await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="worker-process")

    @staticmethod
    async def _reap(pid: int) -> int:
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        return os.waitstatus_to_exitcode(status)

    def _pid(self) -> int | None:
        if self._proc is not None:
            return self._proc.pid
        return self._forked.pid if self._forked else None

    async def _spawn(self) -> None:
        """A fresh `incidentbot work` (after a crash the parent runs an event loop and threads, so
        it must not fork again)."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            # From the event loop's (main) thread: PDEATHSIG fires when the creating thread exits.
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "work", "--wake-fd", str(read_fd), pass_fds=(read_fd,)
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        self._forked = None
        self._replace_wake_fd(write_fd)
        self._exit = asyncio.create_task(self._proc.wait())
        log.info("outbox worker and scheduler run in process %d", self._proc.pid)

    def _replace_wake_fd(self, fd: int | None) -> None:
        with self._fd_lock:
            old, self._wake_fd = self._wake_fd, fd
            if old is not None:
                with contextlib.suppress(OSError):
                    os.close(old)

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._exit is not None
            code = await asyncio.shield(self._exit)
            if self._stopping:
                return
            log.error("the worker process exited with %s; starting a new one", code)
            await asyncio.sleep(RESTART_DELAY)
            try:
                await self._spawn()
            except Exception:
                log.exception("could not start the worker process; trying again")

    async def stop(self, grace_seconds: float = 8.0) -> None:
        """Closing the pipe asks the child to finish in-flight deliveries and exit."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        self._replace_wake_fd(None)
        if self._exit is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), grace_seconds)
        except TimeoutError:
            log.warning("the worker process did not stop in %.0f s; killing it", grace_seconds)
            pid = self._pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await self._exit


_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena, and the bot's thread pools
    (ingest, drain, delivery) keep freed memory in a dozen of them. Two arenas are enough with the
    GIL: PSS of both processes at 10,000 open incidents after traffic, SQLite, 198.5 -> 189.3 MiB.
    What MALLOC_ARENA_MAX=2 does, set from here so that it holds however the bot is started."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas)


def _die_with_parent() -> None:
    """SIGKILL when the parent dies (if it died before this took effect, the pipe is closed and
    the child stops at its first read instead); named so that `ps -o comm`/`top` tell it apart."""
    with contextlib.suppress(OSError, AttributeError):  # Linux only; elsewhere the pipe's EOF does it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        libc.prctl(_PR_SET_NAME, b"incidentbot-wrk")


def run(settings: Settings, wake_fd: int | None, *, migrate: bool = True) -> int:
    """Deliver and fire timers until the pipe closes or SIGTERM (`incidentbot work`, or the child)."""
    limit_malloc_arenas()
    if wake_fd is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a child of `serve`: Ctrl+C is the parent's
        _die_with_parent()
        # Behind the web process for CPU: a webhook's answer is what Alertmanager waits on, and
        # Slack deliveries come in batches that can wait a few ms. Measured at 80% of sustained
        # load on PostgreSQL: webhook p99 47-49 -> 34-38 ms, time to page p99 148 -> 122-137 ms.
        os.nice(settings.worker_nice)
    return asyncio.run(_work(settings, wake_fd, migrate))


async def _work(settings: Settings, wake_fd: int | None, migrate: bool) -> int:
    from bot.wiring import build_background, build_context, web_client

    ctx = build_context(settings, utcnow)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM,) if wake_fd is not None else (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    if migrate and not await _migrated(ctx.engine, done):
        ctx.engine.dispose()
        return 0
    background = build_background(settings, ctx, web_client(settings))
    if wake_fd is not None:

        def woken() -> None:
            try:
                data = os.read(wake_fd, 4096)
            except BlockingIOError:
                return
            if data:
                if OUTBOX in data:
                    background.worker.wake()
                if INBOX in data:
                    background.inbox.wake()
            else:  # the parent closed the pipe (stopping) or died
                loop.remove_reader(wake_fd)
                done.set()

        os.set_blocking(wake_fd, False)
        loop.add_reader(wake_fd, woken)
    task = asyncio.create_task(background.run(), name="inbox-and-outbox")
    background.scheduler.start()
    log.info("worker ready", extra={"database": ctx.engine.dialect.name})
    try:
        await done.wait()
    finally:
        await background.stop(grace_seconds=5)
        task.cancel()
        ctx.engine.dispose()
    return 0


async def _migrated(engine: Engine, stop: asyncio.Event) -> bool:
    """Migrate, waiting for an unreachable database (see bot/startup.py); False if told to stop."""
    from bot.startup import upgrade_when_reachable
    from bot.store.db import DatabaseUnreachable, upgrade

    try:
        await asyncio.to_thread(upgrade, engine)
        return True
    except DatabaseUnreachable as unreachable:
        waiting = asyncio.create_task(upgrade_when_reachable(engine, unreachable))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in (waiting, stopping):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    return not stop.is_set()
