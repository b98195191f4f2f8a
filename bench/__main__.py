"""`python -m bench [--quick] [--only webhooks,page,...] [--db sqlite,postgres] [--fake process|thread]`

Runs the bot as users start it (subprocess) against the fake Slack, prints a table and the
targets, and writes everything to bench/results/<timestamp>.json. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.config import FULL, QUICK
from bench.context import ISOLATED, Bench
from bench.procs import CLK_TCK
from bench.sections import escalation, memory, notify, page, peer, storm, webhooks

PER_DB: dict[str, Callable[[Bench, str], dict[str, Any]]] = {
    "webhooks": webhooks.run,
    "page": page.run,
    "escalation": escalation.run,
    "storm": storm.run,
    "memory": memory.run,
    "notify": notify.run,
}
SECTIONS = (*PER_DB, "peer")
DBS = ("sqlite", "postgres")


def _csv(value: str, allowed: tuple[str, ...]) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {','.join(allowed)}")
    return items


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per section (CI-like checks)")
    parser.add_argument("--only", type=lambda v: _csv(v, SECTIONS), default=list(SECTIONS))
    parser.add_argument("--db", type=lambda v: _csv(v, DBS), default=list(DBS))
    parser.add_argument(
        "--fake", choices=("process", "thread"), default="process", help="where the fake Slack runs"
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds every context manager: processes stop


def machine_load() -> tuple[float, float]:
    """(1-minute load average, busy jiffies of all cores) — to spot other work on the machine."""
    load = float(Path("/proc/loadavg").read_text().split()[0])
    cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return load, float(sum(cpu) - cpu[3] - cpu[4])


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIG_IGN)
    profile = QUICK if opts.quick else FULL
    log_dir = Path(tempfile.mkdtemp(prefix="incidentbot-bench-"))
    bench = Bench(profile, log_dir, opts.fake)
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "profile": profile.name,
        "settings": vars(profile),
        "fake_placement": opts.fake,
        "machine": report.machine(),
        "bot_settings": "defaults (LOG_LEVEL=INFO, JSON logs to a file, OUTBOX_POLL_SECONDS=2, "
        "SCHEDULER_TICK_SECONDS=1), ALERTMANAGER_TOKEN set, shipped rotations/ and runbooks/; "
        f"all sections but storm add {ISOLATED} (storm folding off, Slack pacing out of the way)",
        "logs": str(log_dir),
        "sections": {},
        "errors": {},
    }
    print(f"incidentbot bench ({profile.name}), logs in {log_dir}", flush=True)
    started = time.monotonic()
    for name in SECTIONS:
        if name not in opts.only:
            continue
        targets = ["postgres"] if name == "peer" else [db for db in DBS if db in opts.db]
        for db in targets:
            print(f"== {name} ({db})", flush=True)
            t0 = time.monotonic()
            load0, busy0 = machine_load()
            try:
                out = peer.run(bench) if name == "peer" else PER_DB[name](bench, db)
            except Exception as exc:
                lines = traceback.format_exception(exc, limit=-4)
                print("".join(line[:400] for line in lines)[-4000:], file=sys.stderr)
                results["errors"][f"{name}/{db}"] = f"{type(exc).__name__}: {exc}"
                continue
            out["section_seconds"] = round(time.monotonic() - t0, 1)
            load1, busy1 = machine_load()
            out["machine"] = {
                "loadavg_1m_before_after": [load0, load1],
                "busy_cores_avg": round((busy1 - busy0) / CLK_TCK / max(0.1, time.monotonic() - t0), 2),
            }
            if name == "peer":
                results["sections"]["peer"] = out
            else:
                results["sections"].setdefault(name, {})[db] = out
    results["total_seconds"] = round(time.monotonic() - started, 1)
    dbs = [db for db in DBS if db in opts.db]
    results["targets"] = report.targets(results, dbs)
    print()
    print(report.table(results, dbs))
    print()
    for t in results["targets"]:
        print(f"  {t['result']:4}  {t['target']}: {t['value']}")
    for where, error in results["errors"].items():
        print(f"  ERROR {where}: {error}")
    path = report.write(results)
    print(f"\nresults: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
