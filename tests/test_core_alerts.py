import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.core.alerts import KnownAlert, Reason, decide, unquote_receiver
from bot.core.incident import Severity
from bot.webhooks.alertmanager import WebhookIn

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager-0.25"


def note(name: str):
    return WebhookIn.model_validate(json.loads((FIXTURES / name).read_text())).to_core()


def known(n, **status):
    return {
        a.fingerprint: KnownAlert(status.get(a.fingerprint, a.status), a.starts_at, a.annotations)
        for a in n.alerts
    }


def test_fixture_normalises_alertmanager_quirks():
    n = note("firing-two-alerts.json")
    assert n.key == 'bot|{}:{alertname="HighApiErrorRate", service="gremlinsai-backend"}'
    assert n.alertname == "HighApiErrorRate" and n.severity is Severity.SEV1
    assert n.title == "API error rate above 5%"
    assert all(a.ends_at is None for a in n.alerts)  # 0001-01-01 means "not ended"
    assert n.alerts[0].starts_at == datetime(2026, 11, 22, 23, 45, 35, tzinfo=UTC)


def test_first_notification_opens():
    d = decide(note("firing-two-alerts.json"), None)
    assert d.reason is Reason.OPEN and len(d.added) == 2 and d.opens


def test_repeat_changes_nothing():
    n = note("firing-two-alerts.json")
    d = decide(n, known(n))
    assert d.reason is Reason.REPEAT and not d.writes


def test_a_new_truncated_count_alone_is_an_update():
    # Alertmanager (max_alerts) sends the same first alerts and a different count of left-out ones:
    # the card shows the count, so it must be written; the same count again is a repeat.
    n = note("firing-two-alerts.json")
    more = replace(n, truncated_alerts=40)
    assert decide(more, known(n), truncated=0).reason is Reason.UPDATE
    assert decide(more, known(n), truncated=40).reason is Reason.REPEAT
    assert decide(n, known(n), truncated=40).reason is Reason.UPDATE


def test_partial_resolution_updates_but_stays_open():
    first = note("firing-two-alerts.json")
    d = decide(note("partially-resolved.json"), known(first))
    assert d.reason is Reason.UPDATE and [a.fingerprint for a in d.resolved] == ["ca49c1b5e4a48422"]
    assert not d.resolves


def test_new_alert_joins():
    two = note("firing-two-alerts.json")
    only_one = {k: v for k, v in known(two).items() if k == "ca49c1b5e4a48422"}
    d = decide(two, only_one)
    assert d.reason is Reason.JOIN and [a.fingerprint for a in d.added] == ["93b42ed5a89e4bb1"]


def test_resolved_group_resolves_and_resolved_without_incident_is_ignored():
    import dataclasses

    n = note("firing-two-alerts.json")
    resolved = dataclasses.replace(
        n, status="resolved", alerts=tuple(dataclasses.replace(a, status="resolved") for a in n.alerts)
    )
    assert decide(resolved, known(n)).reason is Reason.RESOLVE
    assert decide(resolved, None).reason is Reason.IGNORE_RESOLVED


def test_late_retry_of_old_fire_is_stale_but_a_new_fire_reopens():
    import dataclasses
    from datetime import timedelta

    n = note("firing-single-alert.json")
    previous = {a.fingerprint: KnownAlert("resolved", a.starts_at, a.annotations) for a in n.alerts}
    assert decide(n, None, previous).reason is Reason.STALE
    later = dataclasses.replace(
        n, alerts=tuple(dataclasses.replace(a, starts_at=a.starts_at + timedelta(hours=1)) for a in n.alerts)
    )
    assert decide(later, None, previous).reason is Reason.REFIRE


def test_receiver_is_unquoted():
    assert unquote_receiver(r"team\.ops") == "team.ops"
