"""2. Time to page: webhook send -> the page DM reaching Slack, at 10% and 80% of saturation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.context import Bench, page_calls, system
from bench.load import closed_loop, open_loop, warm_up
from bench.payloads import Kind, Mix, Workload
from bench.sections.webhooks import cpu_now, measured, target
from bench.stats import summary_ms

LEVELS = (0.1, 0.8)


def run(bench: Bench, db_kind: str) -> dict[str, Any]:
    prof = bench.profile
    levels: dict[str, Any] = {}
    with system(bench, db_kind, "page") as sut:
        tgt = target(sut)
        warm = Workload("pw", Mix())
        asyncio.run(warm_up(tgt, warm.seed_groups(prof.warmup_groups)))
        saturation = bench.shared.get("saturation", {}).get(db_kind)
        source = "section webhooks"
        if saturation is None:
            probe = asyncio.run(closed_loop(tgt, warm.take(1500), prof.closed_concurrency, 3))
            saturation, source = probe.achieved_rps, "3 s closed-loop probe (webhooks section not run)"
        sut.bot.wait_outbox_empty(prof.settle_seconds)
        for frac in LEVELS:
            rate = max(1.0, round(saturation * frac, 1))
            work = Workload(f"p{int(frac * 100)}x", Mix(), seed=11)
            work.groups = list(warm.groups)  # repeats and updates also hit the warm-up groups
            requests = work.take(max(1, int(rate * prof.page_seconds)))
            before, mark = cpu_now(sut), sut.admin.next_call()
            result = asyncio.run(open_loop(tgt, requests, rate))
            hooks = measured(sut, result, before)
            sent = {s.tag: s.sent for s in result.samples if s.kind is Kind.NEW and 200 <= s.status < 300}
            pages = {}
            deadline = time.monotonic() + prof.page_wait_seconds
            while time.monotonic() < deadline:
                pages = page_calls(sut.admin, mark)
                if all(tag in pages for tag in sent):
                    break
                time.sleep(2)
            delays = [pages[t].wall - at for t, at in sent.items() if t in pages]
            level = {
                "offered_rps": rate,
                "webhooks": hooks,
                "incidents_opened": len(sent),
                "paged": len(delays),
                "not_paged_within_wait": len(sent) - len(delays),
                "wait_cap_s": prof.page_wait_seconds,
                "time_to_page": summary_ms(delays),
            }
            levels[f"{int(frac * 100)}%"] = level
            bench.log(
                f"{db_kind} page @{int(frac * 100)}% ({rate}/s): webhook p99 "
                f"{hooks['latency']['p99_ms']} ms; time to page p50 {level['time_to_page']['p50_ms']} ms "
                f"p99 {level['time_to_page']['p99_ms']} ms; {len(delays)}/{len(sent)} paged"
            )
            sut.bot.wait_outbox_empty(prof.settle_seconds)
    return {"saturation_rps": saturation, "saturation_from": source, "levels": levels}
