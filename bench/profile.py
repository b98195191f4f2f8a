"""Profile the bot under webhook load with py-spy: `python -m bench.profile [--db sqlite] [--rate 40]`.

Starts the fake Slack, a fresh database and the bot (as the benchmarks do), sends an open-loop
load with the standard mix, and samples the bot with `py-spy record` meanwhile. Writes a flame
graph (SVG) and collapsed stacks to bench/profiles/, and prints the functions with the most
samples (inclusive and self). Needs py-spy in the venv (`pip install py-spy`) and ptrace rights.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.config import FULL
from bench.context import Bench, system
from bench.load import open_loop, warm_up
from bench.payloads import Mix, Workload
from bench.sections.webhooks import target

OUT = Path(__file__).resolve().parent / "profiles"


def summarise(collapsed: Path, top: int = 25) -> str:
    """Top functions by inclusive and by self samples from py-spy's raw (collapsed) output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")[1:]
        ]  # first element is the thread name
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    lines = [f"{total} samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"-- top {top} by {title} samples")
        lines.extend(f"{n / total:6.1%}  {frame}" for frame, n in counter.most_common(top))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rate", type=float, default=40.0, help="webhooks per second (open loop)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--after", type=float, default=0.0, help="keep sampling this long after the load (the drain)"
    )
    parser.add_argument(
        "--gil", action="store_true", help="only sample the thread holding the GIL (CPU hot spots)"
    )
    opts = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy not found: pip install py-spy", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    name = f"{stamp}-{opts.db}{'-gil' if opts.gil else ''}"
    svg, raw = OUT / f"{name}.svg", OUT / f"{name}.txt"
    bench = Bench(FULL, Path(tempfile.mkdtemp(prefix="incidentbot-profile-")))
    with system(bench, opts.db, "profile") as sut:
        work = Workload("prof", Mix())
        asyncio.run(warm_up(target(sut), work.seed_groups(50)))
        duration = str(int(opts.seconds + opts.after))
        common = [
            "record",
            "--pid",
            str(sut.bot.pid),
            "--duration",
            duration,
            "--rate",
            "200",
            "--nonblocking",
            "--subprocesses",  # the worker process (inbox drain, outbox) too
        ]
        recorders = [
            subprocess.Popen([py_spy, *common, "--format", "flamegraph", "-o", str(svg)]),
            subprocess.Popen([py_spy, *common, "--format", "raw", "-o", str(raw)]),
        ]
        try:
            time.sleep(1)
            requests = work.take(int(opts.rate * opts.seconds))
            result = asyncio.run(open_loop(target(sut), requests, opts.rate))
            print(result.summary())
        finally:
            for rec in recorders:
                try:
                    rec.wait(opts.seconds + opts.after + 30)
                except subprocess.TimeoutExpired:
                    rec.kill()
    print(f"flame graph: {svg}\ncollapsed stacks: {raw}")
    if raw.exists():
        print(summarise(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
