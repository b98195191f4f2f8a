"""The inbox drain alone: `python -m bench.drain [--db postgres] [--rows 2000] [--mix 25|100x15]
[--profile]`.

Stores `--rows` notifications of the bench mix straight into the inbox of a fresh database (as
the webhook endpoint would), then drains them in this process, the way the worker does, and
reports the processed rate: rows applied (incident state updated, Slack work queued) per second.
No HTTP, no Slack: this isolates what issue 20 calls processed throughput, and with --profile
prints cProfile's top functions and the number of SQL statements per row.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import event

from bench import procs
from bench.payloads import Mix, Workload, regroup
from bot.inbox_drain import InboxDrain
from bot.service import inbox as use_case
from bot.service.context import utcnow
from bot.settings import Settings
from bot.store import inbox
from bot.store.db import upgrade
from bot.webhooks import alertmanager
from bot.wiring import build_context

ROOT = Path(__file__).resolve().parents[1]


def requests(mix: str, rows: int) -> list[bytes]:
    if mix == "100x15":
        return [r.body for r in regroup(100, 15, seed=5)][:rows]
    work = Workload("d", Mix())
    return [r.body for r in work.take(rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drain")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--mix", choices=("25", "100x15"), default="25")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--callees", help="with --profile: what functions matching this call")
    parser.add_argument("--sort", default="cumulative", help="cProfile order: cumulative, tottime, ...")
    opts = parser.parse_args(argv)
    bodies = requests(opts.mix, opts.rows)
    with procs.database(opts.db, "drain") as db:
        settings = Settings(  # type: ignore[call-arg]
            database_url=db.url,
            rotations_dir=ROOT / "rotations",
            runbooks_dir=ROOT / "runbooks",
            storm_threshold=1_000_000,
        )
        ctx = build_context(settings, utcnow)
        upgrade(ctx.engine)
        for body in bodies:
            payload = alertmanager.WebhookIn.model_validate_json(body)
            inbox.accept(
                ctx.engine, alertmanager.SOURCE, payload.key, payload.model_dump(mode="json"), utcnow()
            )
        statements: Counter[str] = Counter()
        event.listen(
            ctx.engine, "before_cursor_execute", lambda *a: statements.update([a[2].split()[0].upper()])
        )
        profiler = cProfile.Profile() if opts.profile else None
        drain = InboxDrain(ctx)  # the worker's batch size and appliers
        done, started = 0, time.perf_counter()
        if profiler:
            profiler.enable()
        while claimed := use_case.apply_batch(ctx, drain.appliers, drain.batch).claimed:
            done += claimed
        elapsed = time.perf_counter() - started
        if profiler:
            profiler.disable()
        decisions = Counter(row.decision for row in inbox.listing(ctx.engine, "done", limit=opts.rows))
    result = {
        "db": opts.db,
        "mix": opts.mix,
        "rows": done,
        "seconds": round(elapsed, 2),
        "processed_per_s": round(done / elapsed, 1) if elapsed else None,
        "statements_per_row": round(sum(statements.values()) / max(1, done), 1),
        "statements": dict(statements.most_common()),
        "decisions": dict(decisions.most_common()),
    }
    print(json.dumps(result, indent=2))
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats(opts.sort)
        stats.print_stats(40)
        if opts.callees:
            stats.print_callees(opts.callees)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
