"""7. Time to notify: webhook send -> the first call of each notifier (Slack DM, email, ntfy,
webhook, SMS, voice, Pushover) at 10% of saturation.

Every person of the shipped rotations gets one rule, `{after: 0m, via: [slack, email, ntfy,
webhook, sms, voice, pushover]}`, and an address at each local fake (tests/fakenotify: a real SMTP
server, an ntfy server, a webhook receiver, Twilio, Pushover, in a process of their own), which
record when each call arrived. The bench tag in the incident title matches each notification to
its webhook. SEV1 pages go to Pushover at emergency priority, so their receipts are followed (a
look every 5 s each) while the load runs, as they would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.context import ISOLATED, Bench, page_calls, system
from bench.load import closed_loop, open_loop, warm_up
from bench.payloads import Kind, Mix, Workload, tag_of
from bench.procs import ROOT, stop_process
from bench.sections.webhooks import target
from bench.stats import summary_ms
from tests.fakenotify.__main__ import READY
from tests.fakenotify.pushover import APP_TOKEN
from tests.fakenotify.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

METHODS = ("slack", "email", "ntfy", "webhook", "sms", "voice", "pushover")
LEVEL = 0.1
DRAIN_SECONDS = 300.0
SECRET = "bench-secret-key"


def _rotations(directory: Path, people: list[str], hook: str) -> Path:
    out = directory / "rotations"
    shutil.copytree(ROOT / "rotations", out)
    via = ", ".join(METHODS)
    lines = ["defaults:", f"  notify: [{{after: 0m, via: [{via}]}}]", "people:"]
    original = (ROOT / "rotations" / "people.yaml").read_text().splitlines()
    for index, name in enumerate(people):
        entry = next(line for line in original if line.strip().startswith(f"{name}:"))
        fields = entry.split("{", 1)[1].rsplit("}", 1)[0]
        phone, pushover = f'"+1415555{index:04d}"', f"u{name.replace('-', '')}".ljust(30, "0")
        lines.append(
            f"  {name}: {{{fields}, ntfy: bench-{name}, webhook: {hook}/{name}, phone: {phone},"
            f" pushover: {pushover}}}"
        )
    (out / "people.yaml").write_text("\n".join(lines) + "\n")
    return out


@contextlib.contextmanager
def _fakes() -> Iterator[dict[str, str]]:
    """The provider fakes in their own process (python -m tests.fakenotify): their clocks must not
    wait behind the load generator in this one."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tests.fakenotify", "--secret", SECRET]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(READY):
            raise RuntimeError(f"provider fakes did not start: {line!r}")
        yield json.loads(line[len(READY) :])
    finally:
        stop_process(proc, grace=5)
        if proc.stdout:
            proc.stdout.close()


def run(bench: Bench, db_kind: str) -> dict[str, Any]:
    prof = bench.profile
    tmp = Path(tempfile.mkdtemp(prefix="incidentbot-bench-notify-"))
    people = ["alex", "sarah", "david", "mike", "lisa", "priya", "tom", "wei", "olga", "vp-eng"]
    with _fakes() as urls:
        env = {
            **ISOLATED,
            "ROTATIONS_DIR": str(_rotations(tmp, people, urls["webhook"])),
            "NTFY_URL": urls["ntfy"],
            "SMTP_URL": urls["smtp"],
            "SMTP_FROM": "incidentbot@example.com",
            "PUBLIC_URL": "https://bot.example.com",
            "SECRET_KEY": SECRET,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_URL": urls["twilio"],
            "PUSHOVER_APP_TOKEN": APP_TOKEN,
            "PUSHOVER_API_URL": f"{urls['pushover']}/1/",
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
            mark = sut.admin.next_call()
            result = asyncio.run(open_loop(tgt, work.take(max(1, int(rate * prof.page_seconds))), rate))
            sent = {s.tag: s.sent for s in result.samples if s.kind is Kind.NEW and 200 <= s.status < 300}
            arrivals: dict[str, dict[str, float]] = {}
            deadline = time.monotonic() + prof.page_wait_seconds
            while time.monotonic() < deadline:
                arrivals = _arrivals(sut, urls["admin"], mark)
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
    opened = len(sent)
    return {"offered_rps": rate, "saturation_rps": saturation, "incidents_opened": opened, "methods": methods}


def _arrivals(sut: Any, admin: str, since: int) -> dict[str, dict[str, float]]:
    """First arrival per bench tag, per method (Slack from the fake Slack, the rest from the fakes)."""
    out: dict[str, dict[str, float]] = {method: {} for method in METHODS}
    for tag, call in page_calls(sut.admin, since).items():
        out["slack"][tag] = call.wall
    with urllib.request.urlopen(f"{admin}/arrivals", timeout=30) as response:
        for item in json.loads(response.read()):
            if tag := tag_of(str(item["subject"])):
                out[item["method"]].setdefault(tag, float(item["at"]))
    return out
