"""One /metrics for both processes of `incidentbot serve`: prometheus_client's multiprocess mode.

The worker process (bot/worker_process.py) drains the inbox and delivers Slack calls and
notifications, so it is the one that counts incidents opened, Slack calls, notifications by outcome
and outbox rows settled; /metrics is answered by the web process. Each process keeps its own
counters in memory, so those counters stayed at zero in /metrics. With PROMETHEUS_MULTIPROC_DIR set
before prometheus_client is imported, every process (the forked worker and any `incidentbot work`
started to replace it) writes its counters to a file of its own in that directory, and /metrics
adds them up (bot/observability.exposition).

This module must not import prometheus_client: the mode is chosen when that is first imported.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)


def share_between_processes() -> Path | None:
    """Point prometheus_client at a directory for the counters of every process of this `serve`:
    PROMETHEUS_MULTIPROC_DIR when set (emptied now: files of an earlier run would be added in),
    else a temporary directory removed when `serve` exits. None when it cannot be (already
    imported, nowhere to write): /metrics then shows the web process's counters only, and says so
    in the log."""
    given = os.environ.get(ENV)
    if "prometheus_client" in sys.modules:  # the mode is chosen already; its files are open
        if not given:
            log.warning("metrics: prometheus_client was imported first; /metrics counts the web process only")
        return Path(given) if given else None
    try:
        path = Path(given) if given else Path(tempfile.mkdtemp(prefix="incidentbot-metrics-"))
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    except OSError as exc:
        log.warning(
            "metrics: no directory for the worker's counters (%s); /metrics counts the web process only", exc
        )
        os.environ.pop(ENV, None)
        return None
    os.environ[ENV] = str(path)
    if not given:
        owner = os.getpid()

        def remove() -> None:
            if os.getpid() == owner:  # not in a forked child that exits through atexit
                shutil.rmtree(path, ignore_errors=True)

        atexit.register(remove)
    return path


def join() -> None:
    """In `incidentbot work`: add this process's counters to the directory `serve` set up (or that
    PROMETHEUS_MULTIPROC_DIR names), never emptying it; created if missing, as counting into a
    missing directory fails every call that counts."""
    given = os.environ.get(ENV)
    if given and "prometheus_client" not in sys.modules:
        try:
            Path(given).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("metrics: cannot use %s (%s); counting in memory only", given, exc)
            os.environ.pop(ENV, None)
