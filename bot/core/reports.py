"""Reports over many incidents: counts by severity, MTTA/MTTR, paging load per person, noisy alerts.

Pure: the service maps rows to `ReportIncident`s and passes `now`. Times to acknowledge and resolve
are measured from declaration (`created_at`), over the incidents that were acknowledged / resolved.
Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the value at
rank ceil(p/100 * n), so every statistic is a time that actually happened (the median of an even
count is the lower middle value), and the result never depends on interpolation choices.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.durations import format_duration
from bot.core.postmortem import step_position

__all__ = [
    "AckChannel",
    "AlertNoise",
    "PersonLoad",
    "Report",
    "ReportIncident",
    "ReportPage",
    "TimeStats",
    "format_table",
    "percentile",
    "report",
    "to_json",
]

DASH = "—"
UNNAMED = "(unnamed)"


@dataclass(frozen=True)
class ReportPage:
    person: str  # one identity per person: the people.yaml key when known (see bot.core.people)
    step_key: str = ""  # "c0r0s1"; a page at any step after the first is an escalation
    name: str = ""  # how the report shows them (display name); the key when empty


@dataclass(frozen=True)
class ReportIncident:
    id: int
    severity: str
    created_at: datetime
    acknowledged_at: datetime | None = None  # the first acknowledgement (MTTA), even if undone since
    resolved_at: datetime | None = None
    alert_names: tuple[str, ...] = ()  # one per alert row, so repeats count alerts
    pages: tuple[ReportPage, ...] = ()
    acknowledged_via: str | None = None  # where the first acknowledgement came from (slack, ack_link, ...)


@dataclass(frozen=True)
class TimeStats:
    count: int  # incidents measured (acknowledged, or resolved)
    median: timedelta | None
    p90: timedelta | None


@dataclass(frozen=True)
class PersonLoad:
    person: str
    pages: int
    escalations: int  # pages that came from escalation: someone before them did not acknowledge
    name: str = ""  # display name; the key when empty

    @property
    def shown(self) -> str:
        return self.name or self.person


@dataclass(frozen=True)
class AlertNoise:
    name: str
    incidents: int
    alerts: int


@dataclass(frozen=True)
class AckChannel:
    """Acknowledgements that came from one channel, and how long they took from declaration."""

    via: str
    time_to_ack: TimeStats


@dataclass(frozen=True)
class Report:
    since: datetime
    now: datetime
    incidents: int
    by_severity: tuple[tuple[str, int], ...]  # most frequent first
    mtta: TimeStats
    mttr: TimeStats
    people: tuple[PersonLoad, ...]  # most paged first
    noisiest_alerts: tuple[AlertNoise, ...]  # most incidents first, then most alerts
    acknowledged_via: tuple[AckChannel, ...] = ()  # most acknowledgements first


def percentile(values: Sequence[timedelta], p: int) -> timedelta | None:
    """Nearest-rank p-th percentile (0 < p <= 100) of `values`; None when there are none."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ceil in integers: no float rounding at exact ranks
    return ordered[max(rank, 1) - 1]


def _stats(values: list[timedelta]) -> TimeStats:
    return TimeStats(len(values), percentile(values, 50), percentile(values, 90))


def _is_escalation(step_key: str) -> bool:
    pos = step_position(step_key)
    return pos is not None and (pos[1] > 0 or pos[2] > 0)


def report(incidents: Sequence[ReportIncident], since: datetime, now: datetime, *, top: int = 10) -> Report:
    """Everything declared in [since, now]; `top` bounds the noisiest-alerts list."""
    since, now = _utc(since), _utc(now)
    chosen = [i for i in incidents if since <= _utc(i.created_at) <= now]
    tta = [_utc(i.acknowledged_at) - _utc(i.created_at) for i in chosen if i.acknowledged_at is not None]
    ttr = [_utc(i.resolved_at) - _utc(i.created_at) for i in chosen if i.resolved_at is not None]

    pages: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    shown_as: dict[str, str] = {}
    alert_incidents: Counter[str] = Counter()
    alert_rows: Counter[str] = Counter()
    for i in chosen:
        for page in i.pages:
            pages[page.person] += 1
            escalations[page.person] += _is_escalation(page.step_key)
            shown_as.setdefault(page.person, page.name)
        names = [n or UNNAMED for n in i.alert_names]
        alert_rows.update(names)
        alert_incidents.update(set(names))

    by_via: dict[str, list[timedelta]] = {}
    for i in chosen:
        if i.acknowledged_at is not None:
            by_via.setdefault(i.acknowledged_via or "slack", []).append(
                _utc(i.acknowledged_at) - _utc(i.created_at)
            )
    vias = sorted(
        (AckChannel(v, _stats(t)) for v, t in by_via.items()), key=lambda a: (-a.time_to_ack.count, a.via)
    )

    severities = Counter(i.severity for i in chosen)
    people = sorted(
        (PersonLoad(p, n, escalations[p], shown_as.get(p, "")) for p, n in pages.items()),
        key=lambda x: (-x.pages, -x.escalations, x.shown),
    )
    noisy = sorted(
        (AlertNoise(n, alert_incidents[n], alert_rows[n]) for n in alert_incidents),
        key=lambda x: (-x.incidents, -x.alerts, x.name),
    )
    return Report(
        since=since,
        now=now,
        incidents=len(chosen),
        by_severity=tuple(sorted(severities.items(), key=lambda kv: (-kv[1], kv[0]))),
        mtta=_stats(tta),
        mttr=_stats(ttr),
        people=tuple(people),
        noisiest_alerts=tuple(noisy[:top]),
        acknowledged_via=tuple(vias),
    )


def _utc(at: datetime | None) -> datetime:
    assert at is not None
    # The store hands back aware UTC; a naive value can only mean UTC here.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _dur(td: timedelta | None) -> str:
    return DASH if td is None else format_duration(td)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Aligned plain-text columns: numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(isinstance(row[i], int) for row in rows) for i in range(len(header))]
    out = []
    for r in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)]
        out.append("  ".join(parts).rstrip())
    return out


def format_table(r: Report) -> str:
    """The report as aligned plain text, for a terminal or a Slack code block."""
    if r.incidents == 0:
        return f"No incidents since {_when(r.since)} (until {_when(r.now)}).\n"
    lines = [f"{r.incidents} incident(s) from {_when(r.since)} to {_when(r.now)}", ""]
    lines += _table(["Severity", "Incidents"], r.by_severity)
    lines.append("")
    lines += _table(
        ["Since declared", "Incidents", "Median", "p90"],
        [
            ["Time to acknowledge", r.mtta.count, _dur(r.mtta.median), _dur(r.mtta.p90)],
            ["Time to resolve", r.mttr.count, _dur(r.mttr.median), _dur(r.mttr.p90)],
        ],
    )
    if r.acknowledged_via:
        lines.append("")
        lines += _table(
            ["Acknowledged via", "Incidents", "Median", "p90"],
            [
                [a.via, a.time_to_ack.count, _dur(a.time_to_ack.median), _dur(a.time_to_ack.p90)]
                for a in r.acknowledged_via
            ],
        )
    if r.people:
        lines.append("")
        lines += _table(
            ["Person", "Pages", "Escalations"], [[p.shown, p.pages, p.escalations] for p in r.people]
        )
    if r.noisiest_alerts:
        lines.append("")
        lines += _table(
            ["Alert", "Incidents", "Alerts"], [[a.name, a.incidents, a.alerts] for a in r.noisiest_alerts]
        )
    return "\n".join(lines) + "\n"


def _stats_json(s: TimeStats) -> dict[str, Any]:
    def seconds(td: timedelta | None) -> float | None:
        return None if td is None else td.total_seconds()

    return {"count": s.count, "median_seconds": seconds(s.median), "p90_seconds": seconds(s.p90)}


def to_json(r: Report) -> dict[str, Any]:
    """JSON-ready: durations as seconds (null when nothing was measured), times as ISO 8601 UTC."""
    return {
        "since": r.since.isoformat(),
        "until": r.now.isoformat(),
        "incidents": r.incidents,
        "by_severity": dict(r.by_severity),
        "mtta": _stats_json(r.mtta),
        "mttr": _stats_json(r.mttr),
        "people": [
            {"person": p.person, "name": p.shown, "pages": p.pages, "escalations": p.escalations}
            for p in r.people
        ],
        "noisiest_alerts": [
            {"name": a.name, "incidents": a.incidents, "alerts": a.alerts} for a in r.noisiest_alerts
        ],
        "acknowledged_via": [{"via": a.via, **_stats_json(a.time_to_ack)} for a in r.acknowledged_via],
    }
