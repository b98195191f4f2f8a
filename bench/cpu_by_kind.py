"""CPU per webhook by process and kind: `python -m bench.cpu_by_kind [--db postgres] [--kinds new,mix]`.

For each kind (new groups only, identical repeats only, updates only, or the standard mix), a
fresh bot and database; a closed loop of 16 clients for `--seconds` (10), then until the inbox and
the outbox are empty (every webhook applied, every Slack call made).
CPU (utime + stime from /proc) of the web process, the worker process, every PostgreSQL process,
the fake Slack and this load generator over that span, divided by the webhooks answered
(the table "Where the CPU goes" in docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from bench import procs
from bench.config import QUICK
from bench.context import Bench, system
from bench.load import closed_loop, warm_up
from bench.payloads import Mix, Workload
from bench.sections.webhooks import target

MIXES = {"new": Mix(1, 0, 0), "repeat": Mix(0, 1, 0), "update": Mix(0, 0, 1), "mix": Mix()}


def postgres_cpu() -> float:
    total = 0.0
    for pid in subprocess.run(["pgrep", "postgres"], capture_output=True, text=True).stdout.split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sample(web: int, workers: list[int], fake: int | None, db: str) -> tuple[float, ...]:
    """CPU seconds so far: web process, worker process(es), PostgreSQL, fake Slack, this process."""
    worker = sum(procs.cpu_seconds(p) for p in workers)
    return (
        procs.cpu_seconds(web) - worker,  # cpu_seconds counts a process and its children
        worker,
        postgres_cpu() if db == "postgres" else 0.0,
        procs.cpu_seconds(fake) if fake else 0.0,
        own_cpu(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="postgres", choices=("sqlite", "postgres"))
    parser.add_argument("--kinds", default="new,repeat,update,mix")
    parser.add_argument("--seconds", type=float, default=10.0)
    opts = parser.parse_args()
    bench = Bench(profile=QUICK, log_dir=Path(tempfile.mkdtemp(prefix="incidentbot-cpu-")))
    print("kind      webhooks/s   ms CPU per webhook: web  worker  postgres  fake  generator")
    for kind in opts.kinds.split(","):
        with system(bench, opts.db, f"cpu-{kind}") as sut:
            work = Workload("cpu", MIXES[kind], seed=21)
            asyncio.run(warm_up(target(sut), work.seed_groups(100)))
            time.sleep(4)
            web, *workers = procs.tree(sut.bot.pid)
            before = sample(web, workers, sut.fake.pid, opts.db)
            result = asyncio.run(closed_loop(target(sut), work.take(20000), 16, opts.seconds))
            sut.bot.wait_outbox_empty(900)
            after = sample(web, workers, sut.fake.pid, opts.db)
            n = max(1, len(result.ok))
            ms = [(b - a) * 1000 / n for a, b in zip(before, after, strict=True)]
            print(f"{kind:8} {result.achieved_rps:10.1f}   " + "  ".join(f"{v:7.2f}" for v in ms), flush=True)


if __name__ == "__main__":
    main()
