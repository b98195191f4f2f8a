"""3. Escalation precision: 10,000 pending timers, 1,000 of them due over ~60 s; lateness, idle cost.

The database is seeded with the bot's own schema code (bench/seed.py): open incidents whose next
escalation step is pending. While nothing is due we sample the bot's CPU time; then 1,000 of the
timers are moved to fall due one after another over the window (about 17 steps a second, each a
page, an invite and a channel message: a large outage), the other 9,000 staying pending, and each
step's page DM is matched to its due time.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import procs, seed
from bench.context import Bench, page_calls, system
from bench.payloads import Group, new_group
from bench.stats import summary_ms

TICK_SECONDS = 1.0  # SCHEDULER_TICK_SECONDS default


def run(bench: Bench, db_kind: str) -> dict[str, Any]:
    prof = bench.profile
    rng = random.Random(3)
    groups: list[Group] = [new_group(rng, f"e{i + 1}") for i in range(prof.timers)]

    def populate(db: procs.Database) -> None:
        started = time.monotonic()
        engine = seed.engine_for(db.url)
        try:
            seed.seed(engine, groups, step1_due=datetime.now(UTC) + timedelta(days=1))
        finally:
            engine.dispose()
        bench.log(f"{db_kind}: seeded {len(groups)} incidents in {time.monotonic() - started:.1f}s")

    with system(bench, db_kind, "escalation", before_start=populate) as sut:
        pid = sut.bot.pid
        # Start-up work (first claims and ticks over the 10,000 incidents, provider clients) is
        # not idleness: measure once it is done.
        settled = procs.wait_quiet(pid)
        cpu0, t0 = procs.cpu_seconds(pid), time.monotonic()
        time.sleep(prof.idle_seconds)
        cpu1, t1 = procs.cpu_seconds(pid), time.monotonic()
        ticks = (t1 - t0) / TICK_SECONDS
        idle_ms = (cpu1 - cpu0) / ticks * 1000
        bench.log(
            f"{db_kind}: idle {idle_ms:.2f} ms CPU per tick over {t1 - t0:.0f}s, {len(groups)} pending "
            f"(start-up work done after {settled:.0f}s)"
        )

        start = datetime.now(UTC) + timedelta(seconds=3)
        window = prof.timer_window_seconds
        ids = list(range(1, len(groups) + 1))
        rng.shuffle(ids)
        ids = ids[: prof.timers_due]
        dues = {iid: start + timedelta(seconds=window * n / len(ids)) for n, iid in enumerate(ids)}
        engine = seed.engine_for(sut.db.url)
        try:
            seed.reschedule(engine, dues)
            window_end = time.monotonic() + (start - datetime.now(UTC)).total_seconds() + window
            deadline = window_end + prof.timer_wait_seconds
            while time.monotonic() < deadline and seed.delivered_pages(engine) < len(ids):
                time.sleep(2)
            waited = max(0.0, time.monotonic() - window_end)
            drained = seed.delivered_pages(engine) >= len(ids)
            rss = procs.memory_kib(pid)
            fired = seed.fired_timers(engine)
        finally:
            engine.dispose()
        pages = page_calls(sut.admin)
    lateness = [pages[f"e{i}"].wall - due.timestamp() for i, due in dues.items() if f"e{i}" in pages]
    fire_late = [(f - d).total_seconds() for _, d, f in fired]
    out = {
        "pending_timers": len(groups),
        "timers_due_in_window": len(ids),
        "window_s": window,
        "idle_cpu_ms_per_tick": round(idle_ms, 3),
        "idle_sample_s": round(t1 - t0, 1),
        "idle_note": "whole bot process CPU while nothing is due, divided by ~1 tick/s "
        "(includes the outbox poll every 2 s and the HTTP server)",
        "paged": len(lateness),
        "not_paged_within_wait": len(ids) - len(lateness),
        "all_paged": drained,
        "waited_after_window_s": round(waited, 1),
        "wait_cap_s": prof.timer_wait_seconds,
        "page_lateness": summary_ms(lateness),
        "timer_fire_lateness": summary_ms(fire_late),
        "rss_kib_after": rss,
    }
    bench.log(
        f"{db_kind}: page lateness p50 {out['page_lateness']['p50_ms']} ms p99 "
        f"{out['page_lateness']['p99_ms']} ms ({len(lateness)}/{len(ids)} paged); timer fire p99 "
        f"{out['timer_fire_lateness']['p99_ms']} ms"
    )
    return out
