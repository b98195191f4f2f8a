"""5. Memory: RSS of the bot with 10,000 open incidents (seeded), before and after traffic on them."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import procs, seed
from bench.context import Bench, system
from bench.load import closed_loop
from bench.payloads import Mix, Workload, new_group
from bench.sections.webhooks import target


def run(bench: Bench, db_kind: str) -> dict[str, Any]:
    prof = bench.profile
    rng = random.Random(9)
    groups = [new_group(rng, f"m{i + 1}") for i in range(prof.memory_incidents)]

    def populate(db: procs.Database) -> None:
        engine = seed.engine_for(db.url)
        try:
            seed.seed(engine, groups, step1_due=datetime.now(UTC) + timedelta(days=1))
        finally:
            engine.dispose()

    mix = Mix(new=0.1, repeat=0.45, update=0.45)
    with system(bench, db_kind, "memory", before_start=populate) as sut:
        pid = sut.bot.pid
        time.sleep(3)
        at_start = procs.memory_kib(pid)
        work = Workload("mn", mix, seed=13)
        work.groups = list(groups)
        result = asyncio.run(
            closed_loop(
                target(sut),
                work.take(int(prof.memory_traffic_seconds * 500)),
                prof.closed_concurrency,
                prof.memory_traffic_seconds,
            )
        )
        after_traffic = procs.memory_kib(pid)
        drained, _ = sut.bot.wait_outbox_empty(prof.settle_seconds * 2)
        at_end = procs.memory_kib(pid)
    out = {
        "open_incidents": prof.memory_incidents,
        "traffic": {"mix": mix.describe(), **result.summary()},
        "rss_mib_at_start": round(at_start["VmRSS"] / 1024, 1),
        "rss_mib_after_traffic": round(after_traffic["VmRSS"] / 1024, 1),
        "rss_mib_at_end": round(at_end["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(at_end["VmHWM"] / 1024, 1),
        "pss_mib_at_start": round(at_start["Pss"] / 1024, 1),
        "pss_mib_after_traffic": round(after_traffic["Pss"] / 1024, 1),
        "pss_mib_at_end": round(at_end["Pss"] / 1024, 1),
        "pss_mib_max": round(max(m["Pss"] for m in (at_start, after_traffic, at_end)) / 1024, 1),
        "processes": at_end["processes"],
        "outbox_drained": drained,
    }
    bench.log(
        f"{db_kind} memory: RSS {out['rss_mib_at_start']} MiB at start, {out['rss_mib_after_traffic']} "
        f"after traffic, peak {out['peak_rss_mib']} MiB with {prof.memory_incidents} open incidents; "
        f"PSS {out['pss_mib_after_traffic']} MiB after traffic ({out['processes']} processes)"
    )
    return out
