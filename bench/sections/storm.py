"""4. A storm: many alerts in many groups within a minute, against a rate-limited fake Slack.

Shaped like Alertmanager with group_wait and group_interval compressed into the storm: each group
appears at a random time in the first half, notifies with half of its alerts, and again half the
storm later with all of them. The fake Slack answers 429 + Retry-After like Slack's tiers
(bench/ratelimit.py).

The storm is one outage of one team's systems: every group routes to the platform rotation.
Folding is per route (as specified: past STORM_THRESHOLD openings from the same route), so a storm
spread over N routes opens up to N x (STORM_THRESHOLD + 1) channels.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from typing import Any

from sqlalchemy import text

from bench import seed
from bench.context import Bench, all_page_calls, system
from bench.load import scheduled
from bench.payloads import Kind, Request, new_group
from bench.sections.webhooks import target

STORM_TEAM = "platform"  # rotations/routes.yaml: {match: {team: platform}, rotation: platform}


def workload(alerts: int, groups: int, seconds: float, seed: int = 5) -> list[tuple[float, Request]]:
    rng = random.Random(seed)
    size = max(1, alerts // groups)
    items: list[tuple[float, Request]] = []
    for g in range(groups):
        group = new_group(rng, f"s{g}")
        group.team = STORM_TEAM
        group.size = size
        first = rng.uniform(0, seconds / 2)
        half = json.dumps(group.notification(alerts=max(1, size // 2))).encode()
        full = json.dumps(group.notification()).encode()
        items.append((first, Request(Kind.NEW, group.tag, half)))
        items.append((first + seconds / 2, Request(Kind.UPDATE, group.tag, full)))
    return items


def run(bench: Bench, db_kind: str) -> dict[str, Any]:
    prof = bench.profile
    items = workload(prof.storm_alerts, prof.storm_groups, prof.storm_seconds)
    with system(bench, db_kind, "storm", rate_limits=True, env={}) as sut:  # the bot's defaults
        start = time.time()
        result = asyncio.run(scheduled(target(sut), items, None))
        sent_done = time.time()
        drained, _ = sut.bot.wait_outbox_empty(prof.storm_wait_seconds, poll=2)
        calls = sut.admin.calls()
        limits = sut.fake.admin.ratelimits() or {}
        pages = all_page_calls(sut.admin)
        pending = sut.bot.outbox_pending()
        # Webhooks answer 202 with an inbox id, not the incident: count the incident rows of
        # alert groups (folded ones included) in the database.
        opened = _alert_incidents(sut.db.url)
    by_method = Counter(c["method"] for c in calls)
    channels = sum(
        1 for c in calls if c["method"] == "conversations.create" and (c["response"] or {}).get("ok")
    )
    last_page = max((p.wall for p in pages), default=None)
    out = {
        "alerts": prof.storm_alerts,
        "groups": prof.storm_groups,
        "storm_s": prof.storm_seconds,
        "webhooks": result.summary(),
        "incidents": opened,
        "channels_created": channels,
        "slack_calls": sum(by_method.values()),
        "slack_calls_by_method": dict(by_method.most_common()),
        "rate_limited_429": limits.get("limited"),
        "rate_limited_by_method": limits.get("limited_by_method"),
        "unhandled_429": limits.get("ignored_retry_after"),
        "unhandled_429_definition": "429s for a method/channel whose earlier Retry-After had not yet "
        "run out (the bot kept calling instead of waiting)",
        "pages": len(pages),
        "last_page_after_start_s": round(last_page - start, 1) if last_page else None,
        "sending_took_s": round(sent_done - start, 1),
        "outbox_drained": drained,
        "outbox_pending_at_end": pending,
        "wait_cap_s": prof.storm_wait_seconds,
        "bot_settings": "defaults (storm folding and Slack pacing on)",
        "rate_limits": "bench/ratelimit.py in front of the fake: tier 2 20/min, tier 3 50/min, "
        "tier 4 100/min (burst 1/6 min), chat.postMessage 1/s per channel (burst 3)",
    }
    bench.log(
        f"{db_kind} storm: {out['incidents']} incidents, {channels} channels, {out['slack_calls']} Slack "
        f"calls, {out['rate_limited_429']} 429s ({out['unhandled_429']} unhandled), {len(pages)} pages, "
        f"last page at {out['last_page_after_start_s']} s, outbox pending {pending}"
    )
    return out


def _alert_incidents(url: str) -> int:
    engine = seed.engine_for(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT count(*) FROM incident WHERE source = 'alertmanager'")).scalar_one()
            )
    finally:
        engine.dispose()
