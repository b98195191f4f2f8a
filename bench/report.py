"""The figures table, the targets (PASS/FAIL, never asserted) and the JSON written to bench/results/."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.procs import PG_ADMIN, ROOT

Results = dict[str, Any]


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    try:
        with psycopg.connect(PG_ADMIN) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg = str(row[0]) if row else "?"
    except psycopg.Error as exc:
        pg = f"unavailable ({type(exc).__name__})"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "commit": commit,
    }


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


ROWS: list[tuple[str, str, tuple[str, ...]]] = [
    ("webhooks", "sustained: outbox keeps up (webhooks/s)", ("saturation_rps",)),
    ("webhooks", "accepted: endpoint only (webhooks/s)", ("accepted_saturation_rps",)),
    ("webhooks", "closed-16 throughput (webhooks/s)", ("closed_loop", "achieved_rps")),
    ("webhooks", "closed-16 p50 / ms", ("closed_loop", "latency", "p50_ms")),
    ("webhooks", "closed-16 p99 / ms", ("closed_loop", "latency", "p99_ms")),
    ("page", "10%: webhook p99 / ms", ("levels", "10%", "webhooks", "latency", "p99_ms")),
    ("page", "10%: time to page p50 / ms", ("levels", "10%", "time_to_page", "p50_ms")),
    ("page", "10%: time to page p99 / ms", ("levels", "10%", "time_to_page", "p99_ms")),
    ("page", "80%: offered webhooks/s", ("levels", "80%", "offered_rps")),
    ("page", "80%: webhook p50 / ms", ("levels", "80%", "webhooks", "latency", "p50_ms")),
    ("page", "80%: webhook p99 / ms", ("levels", "80%", "webhooks", "latency", "p99_ms")),
    ("page", "80%: time to page p50 / ms", ("levels", "80%", "time_to_page", "p50_ms")),
    ("page", "80%: time to page p99 / ms", ("levels", "80%", "time_to_page", "p99_ms")),
    ("page", "80%: not paged within wait", ("levels", "80%", "not_paged_within_wait")),
    ("escalation", "pending timers", ("pending_timers",)),
    ("escalation", "of them due in the window", ("timers_due_in_window",)),
    ("escalation", "idle CPU per tick / ms", ("idle_cpu_ms_per_tick",)),
    ("escalation", "page lateness p50 / ms", ("page_lateness", "p50_ms")),
    ("escalation", "page lateness p99 / ms", ("page_lateness", "p99_ms")),
    ("escalation", "timer fire lateness p99 / ms", ("timer_fire_lateness", "p99_ms")),
    ("escalation", "not paged within wait", ("not_paged_within_wait",)),
    ("storm", "incident rows (folded groups too)", ("incidents",)),
    ("storm", "channels created", ("channels_created",)),
    ("storm", "Slack calls", ("slack_calls",)),
    ("storm", "429s received", ("rate_limited_429",)),
    ("storm", "unhandled 429s", ("unhandled_429",)),
    ("storm", "pages", ("pages",)),
    ("storm", "last page after start / s", ("last_page_after_start_s",)),
    ("storm", "outbox pending at end", ("outbox_pending_at_end",)),
    ("memory", "open incidents", ("open_incidents",)),
    ("memory", "RSS at start / MiB", ("rss_mib_at_start",)),
    ("memory", "peak RSS / MiB", ("peak_rss_mib",)),
    ("memory", "PSS, highest sample / MiB", ("pss_mib_max",)),
]


def table(results: Results, dbs: list[str]) -> str:
    sections = results["sections"]
    width = max(len(label) for _, label, _ in ROWS) + 14
    lines = [f"{'':{width}}" + "".join(f"{db:>14}" for db in dbs)]
    last = ""
    for section, label, path in ROWS:
        if section not in sections:
            continue
        if section != last:
            lines.append(f"[{section}]")
            last = section
        cells = "".join(f"{_fmt(_get(sections[section], db, *path)):>14}" for db in dbs)
        lines.append(f"  {label:{width - 2}}" + cells)
    peer = sections.get("peer")
    if peer and "skipped" not in peer:
        for mix, side in peer["mixes"].items():
            lines.append(f"[peer] (PostgreSQL, closed loop, {mix})")
            for who in ("incidentbot_postgres", "alerta"):
                lat = side[who]["latency"]
                lines.append(
                    f"  {who:{width - 2}}{side[who]['achieved_rps']:>10} /s   p50 {lat['p50_ms']} ms"
                    f"   p99 {lat['p99_ms']} ms   errors {side[who]['errors']}"
                )
            lines.append(
                f"  incidentbot processed (inbox applied){'':{width - 40}}"
                f"{side['incidentbot_postgres']['processed']['processed_rps']:>10} /s"
            )
            lines.append(
                f"  ratio ours/alerta: accepted x{side['throughput_ratio']}, processed "
                f"x{side['processed_ratio']}, p99 x{side['p99_ratio']}"
            )
    elif peer:
        lines.append(f"[peer] skipped: {peer['skipped']}")
    return "\n".join(lines)


Check = Callable[[Any], bool | None]


def _target(name: str, value: Any, check: Check, shown: str) -> dict[str, Any]:
    verdict = None if value is None else check(value)
    return {
        "target": name,
        "value": shown,
        "result": "n/a" if verdict is None else ("PASS" if verdict else "FAIL"),
    }


def targets(results: Results, dbs: list[str]) -> list[dict[str, Any]]:
    s = results["sections"]
    out: list[dict[str, Any]] = []
    peer = s.get("peer") or {}
    for mix, side in (peer.get("mixes") or {}).items():
        tp, pr = side["throughput_ratio"], side["processed_ratio"]
        ours, theirs = side["incidentbot_postgres"]["latency"]["p99_ms"], side["alerta"]["latency"]["p99_ms"]
        out.append(
            _target(
                f">= 5x alerta accepted throughput at <= its p99 ({mix})",
                (tp, ours, theirs) if None not in (tp, ours, theirs) else None,
                lambda v: v[0] >= 5 and v[1] <= v[2],
                f"x{tp}, p99 {ours} vs {theirs} ms",
            )
        )
        if mix.startswith("25%"):
            out.append(_target(f">= 3x alerta processed throughput ({mix})", pr, lambda v: v >= 3, f"x{pr}"))
    for db in dbs:
        p99 = _get(s, "page", db, "levels", "80%", "webhooks", "latency", "p99_ms")
        out.append(_target(f"{db}: webhook p99 < 50 ms at 80% load", p99, lambda v: v < 50, f"{p99} ms"))
        ttp = _get(s, "page", db, "levels", "80%", "time_to_page", "p99_ms")
        missing = _get(s, "page", db, "levels", "80%", "not_paged_within_wait")
        out.append(
            _target(
                f"{db}: time-to-page p99 < 250 ms at 80% load",
                (ttp, missing) if ttp is not None else None,
                lambda v: v[0] < 250 and not v[1],
                f"{ttp} ms ({missing} not paged)",
            )
        )
        for method, figures in (_get(s, "notify", db, "methods") or {}).items():
            p99, missing = figures.get("p99_ms"), figures.get("missing")
            out.append(
                _target(
                    f"{db}: time to first {method} notification p99 < 250 ms at 10% load",
                    (p99, missing) if p99 is not None else None,
                    lambda v: v[0] < 250 and not v[1],
                    f"{p99} ms ({missing} missing)",
                )
            )
        storm = _get(s, "storm", db)
        if storm:
            ch, unh, last = (
                storm["channels_created"],
                storm["unhandled_429"],
                storm["last_page_after_start_s"],
            )
            out.append(_target(f"{db}: storm <= 15 incident channels", ch, lambda v: v <= 15, str(ch)))
            out.append(_target(f"{db}: storm zero unhandled 429s", unh, lambda v: v == 0, str(unh)))
            out.append(
                _target(
                    f"{db}: storm last page within 10 s of start",
                    last,
                    lambda v: v <= 10,
                    f"{last} s ({storm['pages']} pages for {ch} channels, {storm['incidents']} groups)",
                )
            )
        # The bot is two processes (web + worker) sharing their imported modules copy-on-write:
        # their PSS sum counts each page once; the RSS sum counts shared pages twice.
        pss = _get(s, "memory", db, "pss_mib_max")
        rss = _get(s, "memory", db, "peak_rss_mib")
        n = _get(s, "memory", db, "open_incidents")
        out.append(
            _target(
                f"{db}: memory < 200 MB at {n} open incidents (PSS of both processes)",
                pss,
                lambda v: v * 1.048576 < 200,
                f"{pss} MiB (RSS summed: peak {rss} MiB)",
            )
        )
        late = _get(s, "escalation", db, "page_lateness", "p99_ms")
        missing = _get(s, "escalation", db, "not_paged_within_wait")
        out.append(
            _target(
                f"{db}: escalation p99 lateness < 1 s",
                (late, missing) if late is not None else None,
                lambda v: v[0] < 1000 and not v[1],
                f"{late} ms ({missing} not paged)",
            )
        )
        idle = _get(s, "escalation", db, "idle_cpu_ms_per_tick")
        out.append(_target(f"{db}: idle tick < 5 ms CPU", idle, lambda v: v < 5, f"{idle} ms"))
    return out


def write(results: Results) -> Path:
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path
