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
from bench.context import Bench, System, system
from bench.load import LoadResult, Target, closed_loop, warm_up
from bench.payloads import Mix, Request, Workload, regroup
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


# The two mixes the issue names: the standard one (25% new groups), and traffic closer to a real
# Alertmanager's (100 groups, each re-sent 15 times).
MIXES = ("25% new groups", "100 groups x 15 sends")
PROCESS_WAIT_SECONDS = 300.0


def _bodies(mix: str, prof_seconds: float) -> tuple[list[Request], list[Request]]:
    """(warm-up, measured) bodies: the same sequence for both servers."""
    if mix == MIXES[0]:
        work = Workload("peer", Mix(), seed=21)
        return work.seed_groups(100), work.take(int(prof_seconds * 500))
    return [], regroup(100, 15, seed=21)


def _processed(sut: System, result: LoadResult, wait: float) -> dict[str, Any]:
    """Rows applied per second: the accepted notifications over the time from the first send until
    the inbox held none of them (incident state updated and Slack work queued; the Slack calls
    themselves are the outbox's, measured by the webhooks section)."""
    started = min((s.scheduled for s in result.samples), default=time.time())
    drained, _ = sut.bot.wait_inbox_empty(wait, poll=0.2)
    took = time.time() - started
    ok = len(result.ok)
    return {
        "drained": drained,
        "seconds": round(took, 2),
        "processed_rps": round(ok / took, 1) if took else None,
    }


def run(bench: Bench) -> dict[str, Any]:
    prof = bench.profile
    gunicorn, how = ensure_venv()
    if gunicorn is None:
        bench.log(f"peer skipped: {how}")
        return {"skipped": how}
    conc = prof.closed_concurrency

    def load(tgt: Target, mix: str) -> LoadResult:
        warm, measured = _bodies(mix, prof.peer_seconds)
        if warm:
            asyncio.run(warm_up(tgt, warm))
        return asyncio.run(closed_loop(tgt, measured, conc, prof.peer_seconds))

    mixes: dict[str, Any] = {}
    for mix in MIXES:
        with system(bench, "postgres", "peer") as sut:
            ours = load(target(sut), mix)
            processed = _processed(sut, ours, PROCESS_WAIT_SECONDS)
        theirs = _alerta_run(bench, gunicorn, lambda tgt, m=mix: load(tgt, m))
        if theirs is None:
            return {"skipped": "alerta-server did not stay up with several workers (see alerta.log)"}
        a, b = ours.summary(), theirs.summary()
        p99a, p99b = a["latency"]["p99_ms"], b["latency"]["p99_ms"]
        out = {
            "incidentbot_postgres": {**a, "processed": processed},
            "alerta": b,
            "throughput_ratio": round(a["achieved_rps"] / b["achieved_rps"], 2)
            if b["achieved_rps"]
            else None,
            "processed_ratio": round(processed["processed_rps"] / b["achieved_rps"], 2)
            if b["achieved_rps"] and processed["processed_rps"]
            else None,
            "p99_ratio": round(p99a / p99b, 2) if p99a and p99b else None,
        }
        mixes[mix] = out
        bench.log(
            f"peer [{mix}]: ours accepted {a['achieved_rps']}/s p99 {p99a} ms, processed "
            f"{processed['processed_rps']}/s vs alerta {b['achieved_rps']}/s p99 {p99b} ms "
            f"(accepted x{out['throughput_ratio']}, processed x{out['processed_ratio']}, "
            f"p99 x{out['p99_ratio']})"
        )
    return {
        "peer": f"alerta-server {version()} ({how})",
        "peer_server": f"gunicorn {WORKERS} sync workers {' '.join(GUNICORN_ARGS)}; env {ENV}; "
        "default plugins; PostgreSQL 127.0.0.1:5432, own database",
        "generator": f"closed loop, {conc} clients, at most {prof.peer_seconds}s per mix; alerta processes "
        "in the request, so its processed rate is its accepted rate",
        "mixes": mixes,
    }


def _alerta_run(bench: Bench, gunicorn: Path, load: Any) -> LoadResult | None:
    log = bench.log_dir / "alerta.log"
    with procs.database("postgres", "alerta") as db:
        with alerta(gunicorn, db, 1, log):  # first start creates the schema, with one worker
            pass
        for _ in range(3):
            with alerta(gunicorn, db, WORKERS, log) as (base, proc):
                # Its workers run alerta's schema DDL as they boot and can deadlock each other on
                # PostgreSQL (one exits, and gunicorn stops them all): start again if that happened.
                time.sleep(3)
                if proc.poll() is None:
                    return load(Target(f"{base}/webhooks/prometheus"))
            bench.log("alerta's gunicorn stopped while its workers booted (alerta.log); starting it again")
    return None
