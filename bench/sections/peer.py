"""6. Side by side with a peer: alerta-server 9.x (its /webhooks/prometheus Alertmanager endpoint)
under gunicorn with 3 sync workers, on the same PostgreSQL, same closed-loop generator and payloads.

alerta lives in its own venv (bench/.venv-alerta, created on first use) so the project's
dependencies are untouched. If it cannot be installed the section says why and is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import procs
from bench.context import Bench, system
from bench.load import LoadResult, Target, closed_loop, warm_up
from bench.payloads import Mix, Workload
from bench.sections.webhooks import target

VENV = Path(__file__).resolve().parents[1] / ".venv-alerta"
REQUIREMENTS = ("alerta-server>=9,<10", "gunicorn>=21", "psycopg2-binary>=2.9")
WORKERS = 3
GUNICORN_ARGS = ("--worker-class", "sync", "--timeout", "30", "--backlog", "2048")
ENV = {
    "DEBUG": "False",  # alerta defaults to DEBUG=True unless told otherwise
    "AUTH_REQUIRED": "False",
    "SECRET_KEY": "bench-secret",
    "LOG_LEVEL": "WARNING",  # alerta's default
}


def ensure_venv() -> tuple[Path | None, str]:
    """The venv's gunicorn, installing alerta-server + gunicorn on first use; (None, why) on failure."""
    gunicorn = VENV / "bin" / "gunicorn"
    if gunicorn.exists():
        return gunicorn, "existing venv"
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120
        )
        pip = subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", *REQUIREMENTS],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not create {VENV}: {exc}"
    if pip.returncode != 0 or not gunicorn.exists():
        return None, f"pip install {' '.join(REQUIREMENTS)} failed: {pip.stderr.strip()[-500:]}"
    return gunicorn, "installed"


def version() -> str:
    out = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('alerta-server'))",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip()


@contextlib.contextmanager
def alerta(
    gunicorn: Path, db: procs.Database, workers: int, log: Path
) -> Iterator[tuple[str, subprocess.Popen]]:
    port = procs.free_port()
    env = {**os.environ, **ENV, "DATABASE_URL": db.libpq_url}
    cmd = [str(gunicorn), "--workers", str(workers), *GUNICORN_ARGS, "--bind", f"127.0.0.1:{port}"]
    with log.open("ab") as out:
        proc = subprocess.Popen([*cmd, "alerta:create_app()"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        procs.wait_http(f"{base}/management/healthcheck", 60, proc, log)
        yield base, proc
    finally:
        procs.stop_process(proc)


def _side(result: LoadResult) -> dict[str, Any]:
    return result.summary()


def run(bench: Bench) -> dict[str, Any]:
    prof = bench.profile
    gunicorn, how = ensure_venv()
    if gunicorn is None:
        bench.log(f"peer skipped: {how}")
        return {"skipped": how}
    mix = Mix()
    conc = prof.closed_concurrency

    def load(tgt: Target) -> LoadResult:
        work = Workload("peer", mix, seed=21)  # the same sequence of bodies for both
        asyncio.run(warm_up(tgt, work.seed_groups(prof.warmup_groups)))
        return asyncio.run(closed_loop(tgt, work.take(int(prof.peer_seconds * 500)), conc, prof.peer_seconds))

    with system(bench, "postgres", "peer") as sut:
        ours = load(target(sut))
    log = bench.log_dir / "alerta.log"
    with procs.database("postgres", "alerta") as db:
        with alerta(gunicorn, db, 1, log):  # first start creates the schema, with one worker
            pass
        theirs = None
        for _ in range(3):
            with alerta(gunicorn, db, WORKERS, log) as (base, proc):
                # Its workers run alerta's schema DDL as they boot and can deadlock each other on
                # PostgreSQL (one exits, and gunicorn stops them all): start again if that happened.
                time.sleep(3)
                if proc.poll() is None:
                    theirs = load(Target(f"{base}/webhooks/prometheus"))
                    break
            bench.log("alerta's gunicorn stopped while its workers booted (alerta.log); starting it again")
        if theirs is None:
            return {"skipped": "alerta-server did not stay up with several workers (see alerta.log)"}
    a, b = _side(ours), _side(theirs)
    ratio_tp = a["achieved_rps"] / b["achieved_rps"] if b["achieved_rps"] else None
    p99a, p99b = a["latency"]["p99_ms"], b["latency"]["p99_ms"]
    out = {
        "peer": f"alerta-server {version()} ({how})",
        "peer_server": f"gunicorn {WORKERS} sync workers {' '.join(GUNICORN_ARGS)}; env {ENV}; "
        "default plugins; PostgreSQL 127.0.0.1:5432, own database",
        "generator": f"closed loop, {conc} clients, {prof.peer_seconds}s, {mix.describe()}",
        "incidentbot_postgres": a,
        "alerta": b,
        "throughput_ratio": round(ratio_tp, 2) if ratio_tp else None,
        "p99_ratio": round(p99a / p99b, 2) if p99a and p99b else None,
    }
    bench.log(
        f"peer: ours {a['achieved_rps']}/s p99 {p99a} ms vs alerta {b['achieved_rps']}/s p99 {p99b} ms "
        f"(throughput x{out['throughput_ratio']}, p99 x{out['p99_ratio']})"
    )
    return out
