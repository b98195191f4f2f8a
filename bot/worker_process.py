"""The outbox worker and the scheduler in a child process of `incidentbot serve`.

Why: Slack delivery (claims, calls, settles) and webhook handling in one process share one GIL, so
under load a webhook's answer waits behind delivery work. In a child process delivery runs on the
second core and webhooks are answered in their own process.

The parent wakes the child through a pipe (a byte per commit that enqueued rows, dropped when the
pipe is full: one pending wake-up is enough). The child dies with its parent, also on SIGKILL
(PR_SET_PDEATHSIG), so a crash of the bot is a crash of both, as with one process; and it stops
when the pipe closes. If the child dies alone, the parent starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys

from bot.service.context import utcnow
from bot.settings import Settings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
RESTART_DELAY = 1.0


class WorkerProcess:
    """Parent side: start `incidentbot work`, wake it, restart it if it dies, stop it."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._wake_fd: int | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Thread-safe, never blocks, never raises: the child polls anyway."""
        fd = self._wake_fd
        if fd is None:
            return
        with contextlib.suppress(OSError):  # full (a wake-up is pending) or closed (restarting)
            os.write(fd, b"!")

    async def start(self) -> None:
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="worker-process")

    async def _spawn(self) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            # Started from the event loop's (main) thread: PDEATHSIG fires when the creating thread
            # exits, so a short-lived helper thread must not create it.
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "work", "--wake-fd", str(read_fd), pass_fds=(read_fd,)
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        old, self._wake_fd = self._wake_fd, write_fd
        if old is not None:
            os.close(old)
        log.info("outbox worker and scheduler run in process %d", self._proc.pid)

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            log.error("the worker process exited with %s; starting it again", code)
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
        fd, self._wake_fd = self._wake_fd, None
        if fd is not None:
            os.close(fd)
        if self._proc is None or self._proc.returncode is not None:
            return
        try:
            await asyncio.wait_for(self._proc.wait(), grace_seconds)
        except TimeoutError:
            log.warning("the worker process did not stop in %.0f s; killing it", grace_seconds)
            self._proc.kill()
            await self._proc.wait()


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):  # Linux only; elsewhere the pipe's EOF does it
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        sys.exit(1)


def run(settings: Settings, wake_fd: int | None) -> int:
    """Child side (`incidentbot work`): deliver and fire timers until the pipe closes or SIGTERM."""
    if wake_fd is not None:
        _die_with_parent()
    return asyncio.run(_work(settings, wake_fd))


async def _work(settings: Settings, wake_fd: int | None) -> int:
    from bot.store.db import upgrade
    from bot.wiring import build_background, build_context, web_client

    ctx = build_context(settings, utcnow)
    await asyncio.to_thread(upgrade, ctx.engine)  # a no-op under `serve`, which migrated first
    background = build_background(settings, ctx, web_client(settings))
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    if wake_fd is not None:

        def woken() -> None:
            try:
                data = os.read(wake_fd, 4096)
            except BlockingIOError:
                return
            if data:
                background.worker.wake()
            else:  # the parent closed the pipe (stopping) or died
                loop.remove_reader(wake_fd)
                done.set()

        os.set_blocking(wake_fd, False)
        loop.add_reader(wake_fd, woken)
    task = asyncio.create_task(background.worker.run(), name="outbox-worker")
    background.scheduler.start()
    log.info("worker ready", extra={"database": ctx.engine.dialect.name})
    try:
        await done.wait()
    finally:
        background.scheduler.shutdown()
        await background.worker.stop(grace_seconds=5)
        task.cancel()
        background.pagerduty.close()
        ctx.engine.dispose()
    return 0
