"""1. Webhook throughput and latency: open-loop steps until saturation, then closed-loop N clients.

Two saturation figures. *Accepted*: the best rate the webhook endpoint answered (at least 90% of
the offered rate, p99 within the limit), whatever the outbox behind it does. *Sustained*: the best
such rate at which the outbox also kept up (what the step queued for Slack was delivered within
KEEP_UP_SECONDS after it): accepting faster only grows a backlog, so this is the rate the bot can
carry, and the one time-to-page is measured against.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import procs
from bench.context import Bench, System, system
from bench.load import LoadResult, Target, closed_loop, open_loop, warm_up
from bench.payloads import Mix, Workload


def target(sut: System) -> Target:
    return Target(sut.bot.webhook_url, procs.AM_TOKEN)


def _cpu(pid: int | None) -> float | None:
    try:
        return procs.cpu_seconds(pid) if pid else None
    except OSError:
        return None


def measured(sut: System, run: LoadResult, cpu_before: dict[str, float | None]) -> dict[str, Any]:
    """The load summary plus CPU used by the bot and the fake (cores busy) and the outbox backlog."""
    out = run.summary()
    for name, pid in (("bot", sut.bot.pid), ("fake", sut.fake.pid)):
        before, after = cpu_before.get(name), _cpu(pid)
        if before is not None and after is not None and run.duration:
            out[f"{name}_cpu_cores"] = round((after - before) / run.duration, 2)
    out["outbox_pending_after"] = sut.bot.outbox_pending()
    return out


def cpu_now(sut: System) -> dict[str, float | None]:
    return {"bot": _cpu(sut.bot.pid), "fake": _cpu(sut.fake.pid)}


KEEP_UP_SECONDS = 5.0


def saturated(step: dict[str, Any], limit_ms: float) -> bool:
    p99 = step["latency"]["p99_ms"]
    return step["achieved_rps"] < 0.9 * step["offered_rps"] or p99 is None or p99 > limit_ms


def sustained(step: dict[str, Any], limit_ms: float) -> bool:
    return not saturated(step, limit_ms) and step["settled"] and step["settle_s"] <= KEEP_UP_SECONDS


def run(bench: Bench, db_kind: str) -> dict[str, Any]:
    prof = bench.profile
    mix = Mix()
    steps: list[dict[str, Any]] = []
    with system(bench, db_kind, "webhooks") as sut:
        tgt = target(sut)
        work = Workload("w", mix)
        asyncio.run(warm_up(tgt, work.seed_groups(prof.warmup_groups)))
        sut.bot.wait_outbox_empty(prof.settle_seconds)
        for rate in prof.steps_rps:
            requests = work.take(int(rate * prof.step_seconds))
            before = cpu_now(sut)
            result = asyncio.run(open_loop(tgt, requests, rate))
            step = measured(sut, result, before)
            steps.append(step)
            bench.log(
                f"{db_kind} open {rate}/s: {step['achieved_rps']}/s, p50 {step['latency']['p50_ms']} ms, "
                f"p99 {step['latency']['p99_ms']} ms, errors {step['errors']}, "
                f"outbox {step['outbox_pending_after']}"
            )
            drained, waited = sut.bot.wait_outbox_empty(prof.settle_seconds)
            step["settle_s"] = round(waited, 1)
            step["settled"] = drained
            if saturated(step, prof.saturation_p99_ms):
                break
        requests = work.take(int(prof.closed_seconds * 500))  # more than the bot can take
        before = cpu_now(sut)
        closed = asyncio.run(closed_loop(tgt, requests, prof.closed_concurrency, prof.closed_seconds))
        closed_out = measured(sut, closed, before)
        bench.log(
            f"{db_kind} closed-{prof.closed_concurrency}: {closed_out['achieved_rps']}/s, "
            f"p99 {closed_out['latency']['p99_ms']} ms, errors {closed_out['errors']}"
        )
    best = max(steps, key=lambda s: s["achieved_rps"])
    kept_up = [s for s in steps if sustained(s, prof.saturation_p99_ms)]
    carried = max((s["achieved_rps"] for s in kept_up), default=steps[0]["achieved_rps"])
    result_out = {
        "mix": mix.describe(),
        "alerts_per_notification": 3,
        "steps": steps,
        "saturation_rps": carried,
        "accepted_saturation_rps": best["achieved_rps"],
        "keep_up_seconds": KEEP_UP_SECONDS,
        "closed_loop": closed_out,
    }
    bench.shared.setdefault("saturation", {})[db_kind] = carried
    return result_out
