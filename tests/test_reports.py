import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.reports import ReportIncident, ReportPage, format_table, percentile, report, to_json

SINCE = datetime(2024, 5, 1, tzinfo=UTC)
NOW = datetime(2024, 5, 8, tzinfo=UTC)
M = timedelta(minutes=1)


def incident(
    n: int,
    severity: str = "critical",
    tta: int | None = None,
    ttr: int | None = None,
    alerts: tuple[str, ...] = (),
    pages: tuple[ReportPage, ...] = (),
    day: int = 2,
) -> ReportIncident:
    created = datetime(2024, 5, day, 10, 0, tzinfo=UTC)
    return ReportIncident(
        id=n,
        severity=severity,
        created_at=created,
        acknowledged_at=None if tta is None else created + tta * M,
        resolved_at=None if ttr is None else created + ttr * M,
        alert_names=alerts,
        pages=pages,
    )


DATA = [
    incident(1, tta=2, ttr=10, alerts=("HighApiErrorRate", "HighApiErrorRate"),
             pages=(ReportPage("alice", "c0r0s0"),)),
    incident(2, tta=17, ttr=39, alerts=("HighApiErrorRate",),
             pages=(ReportPage("alice", "c0r0s0"), ReportPage("bob", "c0r0s1"))),
    incident(3, "warning", tta=5, ttr=60, alerts=("DiskFull",), pages=(ReportPage("bob", "c0r0s0"),)),
    incident(4, "warning", tta=30, ttr=None, alerts=("DiskFull", "WeaviateDown")),
    incident(5, "critical", tta=None, ttr=120, pages=(ReportPage("carol", "c0r1s0"),)),
    incident(6, "critical", tta=1, ttr=1, alerts=("Old",), day=1),  # the first day of the window
    incident(7, "critical", tta=1, ttr=1, alerts=("Older",)),
]  # fmt: skip
# One incident before the window: it must not count.
BEFORE = ReportIncident(99, "critical", SINCE - timedelta(hours=1), alert_names=("Ancient",))


def test_percentile_nearest_rank() -> None:
    values = [timedelta(seconds=s) for s in (15, 20, 35, 40, 50)]
    assert percentile(values, 50) == timedelta(seconds=35)
    assert percentile(values, 90) == timedelta(seconds=50)
    assert percentile(values, 30) == timedelta(seconds=20)  # rank ceil(1.5) = 2
    assert percentile(values, 40) == timedelta(seconds=20)  # rank exactly 2, no float drift
    assert percentile([timedelta(1), timedelta(2), timedelta(3), timedelta(4)], 50) == timedelta(2)
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 0)


@given(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1), st.integers(min_value=1, max_value=100)
)
def test_percentile_is_an_observed_value_with_enough_below(secs: list[int], p: int) -> None:
    values = [timedelta(seconds=s) for s in secs]
    result = percentile(values, p)
    assert result in values
    assert sum(v <= result for v in values) * 100 >= p * len(values)
    assert sum(v < result for v in values) * 100 < p * len(values)


def test_report_on_known_data() -> None:
    r = report([*DATA, BEFORE], SINCE, NOW)
    assert r.incidents == 7
    assert r.by_severity == (("critical", 5), ("warning", 2))
    # TTA minutes: 1, 1, 2, 5, 17, 30 -> median rank 3 = 2m, p90 rank ceil(5.4) = 6 = 30m
    assert (r.mtta.count, r.mtta.median, r.mtta.p90) == (6, 2 * M, 30 * M)
    # TTR minutes: 1, 1, 10, 39, 60, 120 -> median rank 3 = 10m, p90 rank 6 = 120m
    assert (r.mttr.count, r.mttr.median, r.mttr.p90) == (6, 10 * M, 120 * M)
    assert [(p.person, p.pages, p.escalations) for p in r.people] == [
        ("bob", 2, 1),  # ties on pages: more escalations first
        ("alice", 2, 0),
        ("carol", 1, 1),  # round 2 of step 1: nobody acknowledged the first round
    ]
    assert [(a.name, a.incidents, a.alerts) for a in r.noisiest_alerts][:3] == [
        ("HighApiErrorRate", 2, 3),
        ("DiskFull", 2, 2),
        ("Old", 1, 1),
    ]
    assert "Ancient" not in {a.name for a in r.noisiest_alerts}


def test_top_limits_alerts() -> None:
    assert len(report(DATA, SINCE, NOW, top=2).noisiest_alerts) == 2


def test_format_table_aligned() -> None:
    text = format_table(report(DATA, SINCE, NOW))
    lines = text.splitlines()
    assert lines[0] == "7 incident(s) from 2024-05-01 00:00 UTC to 2024-05-08 00:00 UTC"
    assert "Severity  Incidents" in lines
    assert "critical          5" in lines
    assert "Time to acknowledge          6  2m      30m" in lines
    assert "Time to resolve              6  10m     2h" in lines
    people = lines[lines.index("Person  Pages  Escalations") :][:4]
    assert people == [
        "Person  Pages  Escalations",
        "bob         2            1",
        "alice       2            0",
        "carol       1            1",
    ]
    assert "HighApiErrorRate          2       3" in lines


def test_empty() -> None:
    r = report([BEFORE], SINCE, NOW)
    assert r.incidents == 0 and r.mtta.median is None and r.people == ()
    assert format_table(r) == "No incidents since 2024-05-01 00:00 UTC (until 2024-05-08 00:00 UTC).\n"
    assert to_json(r)["mtta"] == {"count": 0, "median_seconds": None, "p90_seconds": None}


def test_nothing_acknowledged_shows_dash() -> None:
    text = format_table(report([incident(1)], SINCE, NOW))
    assert "Time to acknowledge          0  —       —" in text.splitlines()


def test_json_round_trip() -> None:
    data = to_json(report(DATA, SINCE, NOW))
    assert json.loads(json.dumps(data)) == data
    assert data["since"] == "2024-05-01T00:00:00+00:00"
    assert data["until"] == "2024-05-08T00:00:00+00:00"
    assert data["by_severity"] == {"critical": 5, "warning": 2}
    assert data["mtta"] == {"count": 6, "median_seconds": 120.0, "p90_seconds": 1800.0}
    # "name" (the display name; here the key, as no name is given) added on purpose: issue 17, item 10.
    assert data["people"][0] == {"person": "bob", "name": "bob", "pages": 2, "escalations": 1}
    assert data["noisiest_alerts"][0] == {"name": "HighApiErrorRate", "incidents": 2, "alerts": 3}
