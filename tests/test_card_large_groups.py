"""Large alert groups read well on the card (issue 17, item 8).

Observed: a 60-alert group made a 32 kB card with 10 identical copies of the summary and the
description ("…and 50 more alerts" after them). Now each distinct alert (name and summary) is one
section with its count, its summary and description once, and the labels that differ listed
compactly; 1,600 alerts keep the card a few kilobytes, well inside Slack's limits (the fake Slack
refuses a card that breaks any of them).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from bot.core.alert_digest import digest
from bot.slack import views
from bot.slack.card_alerts import MAX_DIGESTS
from tests.fakeslack.blocks import validate_blocks
from tests.harness import Clock, post_alertmanager
from tests.test_card_content import T0, card, card_shows
from tests.test_flow_commands import incident_channel
from tests.test_flow_paging import fixture

START = datetime(2026, 11, 23, 11, 50, tzinfo=UTC)
SUMMARY = "Pod is crash looping"
DESCRIPTION = "Pod restarted more than 5 times in the last 10 minutes; check its logs and last deploy."


def group(count: int, kinds: int = 1) -> dict:
    """One Alertmanager notification with `count` alerts of `kinds` different summaries."""
    payload = copy.deepcopy(fixture("firing-single-alert.json"))
    template = payload["alerts"][0]
    alerts = []
    for n in range(count):
        alert = copy.deepcopy(template)
        kind = n % kinds
        alert["labels"] = {
            "alertname": "KubePodCrashLooping",
            "namespace": "checkout",
            "severity": "critical",
            "pod": f"checkout-api-{n:04d}",
            "instance": f"10.0.{n // 250}.{n % 250}:8080",
        }
        alert["annotations"] = {
            "summary": SUMMARY if kinds == 1 else f"{SUMMARY} (kind {kind})",
            "description": DESCRIPTION,
        }
        alert["fingerprint"] = f"{n:016x}"
        alert["generatorURL"] = "http://prometheus:9090/graph?g0.expr=kube_pod_restarts"
        alerts.append(alert)
    payload.update(
        alerts=alerts,
        groupLabels={"alertname": "KubePodCrashLooping", "namespace": "checkout"},
        commonLabels={"alertname": "KubePodCrashLooping", "namespace": "checkout", "severity": "critical"},
        commonAnnotations={"description": DESCRIPTION} if kinds > 1 else {"summary": SUMMARY},
        groupKey='{}:{alertname="KubePodCrashLooping", namespace="checkout"}',
    )
    return payload


def test_sixty_alerts_of_one_kind_are_one_section_with_their_count(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0))
    assert post_alertmanager(bot.url, group(60)).status_code == 202
    chan = incident_channel(fake)
    text = card_shows(fake, chan, "*KubePodCrashLooping* ×60", what="the 60 alerts as one section")
    assert text.count(SUMMARY) == 2  # the header (the incident's title) and the section, once
    assert text.count(DESCRIPTION) == 1
    assert (
        "*instance:* 10.0.0.0:8080, 10.0.0.1:8080, 10.0.0.2:8080, 10.0.0.3:8080, 10.0.0.4:8080 +55 more"
        in text
    )
    assert "*pod:* checkout-api-0000" in text
    assert "`namespace=checkout` `severity=critical`" in text
    size = len(json.dumps(card(fake, chan)["blocks"]))
    assert size < 4000, f"a 60-alert card is {size} bytes"


def test_a_1600_alert_group_keeps_the_card_small_and_valid(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0))
    r = post_alertmanager(bot.url, group(1600, kinds=40))
    assert r.status_code == 202, r.text
    chan = incident_channel(fake)
    text = card_shows(fake, chan, "… and 1200 more alerts (30 more kinds)", what="the folded card")
    blocks = card(fake, chan)["blocks"]
    assert not validate_blocks(blocks)
    assert len(blocks) < 25 and len(json.dumps(blocks)) < 20_000, (len(blocks), len(json.dumps(blocks)))
    assert text.count("×40") == MAX_DIGESTS
    failed = [(c.method, (c.response or {}).get("error")) for c in fake.calls if not c.ok]
    assert not failed, failed


# -- the pure parts ------------------------------------------------------------------------------------


def alert(n: int, status: str = "firing", summary: str = SUMMARY, **labels: str) -> views.AlertView:
    return views.AlertView(
        name="HighLatency",
        status=status,
        labels={"alertname": "HighLatency", "job": "api", "instance": f"api-{n}"} | labels,
        annotations={"summary": summary, "description": f"p99 above 2s on api-{n}"},
        starts_at=START + timedelta(minutes=n),
        ends_at=START + timedelta(minutes=30 + n) if status == "resolved" else None,
    )


def test_digest_folds_by_name_and_summary_and_says_what_differs():
    alerts = [alert(1), alert(2, "resolved"), alert(3), alert(4, summary="Other"), alert(5, "resolved")]
    first, other = digest(alerts)
    assert (first.count, first.firing, first.resolved) == (4, 2, 2)
    assert first.started == START + timedelta(minutes=1)  # the earliest firing start
    assert first.last_resolved == START + timedelta(minutes=35)
    assert first.common == (("job", "api"),)
    assert first.differing == (("instance", ("api-1", "api-2", "api-3", "api-5")),)
    assert len(first.descriptions) == 4
    assert other.count == 1 and other.summary == "Other"


def test_firing_kinds_come_first_and_a_label_some_alerts_lack_differs():
    resolved = alert(1, "resolved", summary="Gone")
    digests = digest([resolved, alert(2), alert(3, zone="eu")])
    assert [d.summary for d in digests] == [SUMMARY, "Gone"]
    assert ("zone", ("", "eu")) in digests[0].differing


def test_the_card_mentions_alerts_alertmanager_truncated():
    view = views.IncidentView(
        id=1,
        title="t",
        severity="SEV1",
        status="triggered",
        source="alertmanager",
        created_at=START,
        alerts=[alert(1)],
        truncated_alerts=7,
    )
    text = json.dumps([b.to_dict() for b in views.card(view)], ensure_ascii=False)
    assert "… and 7 more (truncated by Alertmanager)" in text


def test_a_digest_section_stays_short_whatever_the_labels():
    huge = [alert(n, **{f"label_{k}": f"{'v' * 500}{n}" for k in range(30)}) for n in range(50)]
    blocks = [
        b.to_dict() for b in views.card(views.IncidentView(1, "t", "SEV1", "firing", "x", START, alerts=huge))
    ]
    assert not validate_blocks(blocks)
    assert max(len(b.get("text", {}).get("text", "")) for b in blocks) <= 1500
