"""7. Time to notify: webhook send -> the first call of each notifier (Slack DM, email, ntfy,
webhook) at 10% of saturation.

Every person of the shipped rotations gets one rule, `{after: 0m, via: [slack, email, ntfy,
webhook]}`, and an address at each local fake (tests/fakenotify: a real SMTP server, an ntfy server,
a webhook receiver), which record when each call arrived. The bench tag in the incident title
matches each notification to its webhook.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.context import ISOLATED, Bench, page_calls, system
from bench.load import closed_loop, open_loop, warm_up
from bench.payloads import Kind, Mix, Workload, tag_of
from bench.procs import ROOT
from bench.sections.webhooks import target
from bench.stats import summary_ms
from tests.fakenotify import FakeNtfy, FakeSMTP, FakeWebhookReceiver

LEVEL = 0.1
DRAIN_SECONDS = 300.0
SECRET = "bench-secret-key"


def _rotations(directory: Path, people: list[str], hook: str) -> Path:
    out = directory / "rotations"
    shutil.copytree(ROOT / "rotations", out)
    lines = ["defaults:", "  notify: [{after: 0m, via: [slack, email, ntfy, webhook]}]", "people:"]
    original = (ROOT / "rotations" / "people.yaml").read_text().splitlines()
    for name in people:
        entry = next(line for line in original if line.strip().startswith(f"{name}:"))
        fields = entry.split("{", 1)[1].rsplit("}", 1)[0]
        lines.append(f"  {name}: {{{fields}, ntfy: bench-{name}, webhook: {hook}/{name}}}")
    (out / "people.yaml").write_text("\n".join(lines) + "\n")
    return out


def run(bench: Bench, db_kind: str) -> dict[str, Any]:
    prof = bench.profile
    tmp = Path(tempfile.mkdtemp(prefix="incidentbot-bench-notify-"))
    people = ["alex", "sarah", "david", "mike", "lisa", "priya", "tom", "wei", "olga", "vp-eng"]
    with FakeNtfy() as ntfy, FakeSMTP(tmp) as smtp, FakeWebhookReceiver(SECRET) as hook:
        env = {
            **ISOLATED,
            "ROTATIONS_DIR": str(_rotations(tmp, people, hook.url("").rstrip("/"))),
            "NTFY_URL": ntfy.url,
            "SMTP_URL": smtp.url(),
            "SMTP_FROM": "incidentbot@example.com",
            "PUBLIC_URL": "https://bot.example.com",
            "SECRET_KEY": SECRET,
        }
        with system(bench, db_kind, "notify", env=env) as sut:
            tgt = target(sut)
            warm = Workload("nw", Mix())
            asyncio.run(warm_up(tgt, warm.seed_groups(prof.warmup_groups)))
            saturation = bench.shared.get("saturation", {}).get(db_kind)
            if saturation is None:
                probe = asyncio.run(closed_loop(tgt, warm.take(1500), prof.closed_concurrency, 3))
                saturation = probe.achieved_rps
            # The probe (and the warm-up) left hundreds of pages, each with four notifications: let
            # them all go out first, or the measured ones queue behind them.
            drained, waited = sut.bot.wait_outbox_empty(DRAIN_SECONDS)
            bench.log(f"{db_kind}: outbox {'drained' if drained else 'NOT drained'} after {waited:.0f}s")
            rate = max(1.0, round(saturation * LEVEL, 1))
            work = Workload("n10x", Mix(), seed=13)
            result = asyncio.run(open_loop(tgt, work.take(max(1, int(rate * prof.page_seconds))), rate))
            sent = {s.tag: s.sent for s in result.samples if s.kind is Kind.NEW and s.status == 200}
            arrivals: dict[str, dict[str, float]] = {}
            deadline = time.monotonic() + prof.page_wait_seconds
            while time.monotonic() < deadline:
                arrivals = _arrivals(sut, ntfy, smtp, hook)
                if all(all(tag in got for tag in sent) for got in arrivals.values()):
                    break
                time.sleep(2)
    shutil.rmtree(tmp, ignore_errors=True)
    methods = {}
    for method, got in arrivals.items():
        delays = [got[t] - at for t, at in sent.items() if t in got]
        methods[method] = {"notified": len(delays), "missing": len(sent) - len(delays), **summary_ms(delays)}
    bench.log(
        f"{db_kind} notify @10% ({rate}/s): "
        + "; ".join(f"{m} p50 {v['p50_ms']} ms p99 {v['p99_ms']} ms" for m, v in methods.items())
    )
    return {
        "offered_rps": rate,
        "saturation_rps": saturation,
        "incidents_opened": len(sent),
        "methods": methods,
    }


def _arrivals(
    sut: Any, ntfy: FakeNtfy, smtp: FakeSMTP, hook: FakeWebhookReceiver
) -> dict[str, dict[str, float]]:
    """First arrival per bench tag, per method."""
    out: dict[str, dict[str, float]] = {"slack": {}, "email": {}, "ntfy": {}, "webhook": {}}
    for tag, call in page_calls(sut.admin).items():
        out["slack"][tag] = call.wall
    with ntfy.lock:
        for p in ntfy.publishes:
            if p.status == 200 and (tag := tag_of(str(p.body.get("title", "")))):
                out["ntfy"].setdefault(tag, p.at)
    with smtp.lock:
        for m in smtp.messages:
            if tag := tag_of(str(m.message["Subject"])):
                out["email"].setdefault(tag, m.at)
    with hook.lock:
        for d in hook.deliveries:
            if d.status == 200 and (tag := tag_of(str((d.body.get("incident") or {}).get("title", "")))):
                out["webhook"].setdefault(tag, d.at)
    return out
