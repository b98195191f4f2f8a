"""The biggest outages must page (issue 16, item 1.8).

An Alertmanager group of about 1,600 realistic alerts is more than 1 MiB of JSON. It got 413, and
Alertmanager drops 4xx: the largest outages paged nobody. `/webhooks/alertmanager` now has its own cap
(ALERTMANAGER_MAX_BODY_BYTES, 16 MiB) while the other endpoints keep MAX_BODY_BYTES; a group
Alertmanager truncated (the receiver's `max_alerts`) says so on the card: "… and N more (truncated by
Alertmanager)".
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, func, select

from bot.store.tables import Alert, Incident, Page
from tests.alertmanager_proc import Alertmanager, now_iso
from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import (
    AM_TOKEN,
    BotProcess,
    Clock,
    bot_env,
    post_alertmanager,
    processed,
    settle,
    slack_headers,
    slash_command_body,
    wait_until,
)

FIXTURES = Path(__file__).parent / "fixtures"
PD_TRIGGERED = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())
MIB = 1024 * 1024
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TRUNCATED_LINE = "(truncated by Alertmanager)"


def realistic_group(count: int, truncated: int = 0, group: str = "KubePodCrashLooping") -> dict:
    """A group shaped like Alertmanager 0.25's webhook (see fixtures/alertmanager-0.25), with the labels
    and annotations a kube-prometheus alert carries: about 700 bytes per alert."""
    starts = "2026-11-23T11:58:05.123Z"
    alerts = []
    for n in range(count):
        pod = f"checkout-api-7f9c{n:05d}-x{n % 97:02d}kq"
        alerts.append(
            {
                "status": "firing",
                "labels": {
                    "alertname": group,
                    "cluster": "prod-eu-west-1",
                    "container": "checkout-api",
                    "endpoint": "http-metrics",
                    "instance": f"10.42.{n // 250}.{n % 250}:8080",
                    "job": "kube-state-metrics",
                    "namespace": "checkout",
                    "pod": pod,
                    "service": "checkout-api",
                    "severity": "critical",
                    "team": "platform",
                },
                "annotations": {
                    "description": f"Pod checkout/{pod} (checkout-api) is in waiting state "
                    "(reason: CrashLoopBackOff) for longer than 5 minutes.",
                    "runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
                    "summary": "Pod is crash looping.",
                },
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr=max_over_time%28kube_pod_container_"
                "status_waiting_reason%7Breason%3D%22CrashLoopBackOff%22%2Cjob%3D%22kube-state-metrics%22"
                "%7D%5B5m%5D%29+%3E%3D+1&g0.tab=1",
                "fingerprint": f"{n:016x}",
            }
        )
    return {
        "receiver": "incidentbot",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {"alertname": group, "service": "checkout-api"},
        "commonLabels": {
            "alertname": group,
            "cluster": "prod-eu-west-1",
            "container": "checkout-api",
            "job": "kube-state-metrics",
            "namespace": "checkout",
            "service": "checkout-api",
            "severity": "critical",
            "team": "platform",
        },
        "commonAnnotations": {"summary": "Pod is crash looping."},
        "externalURL": "http://alertmanager-main-0:9093",
        "version": "4",
        "groupKey": f'{{}}/{{severity="critical"}}:{{alertname="{group}", service="checkout-api"}}',
        "truncatedAlerts": truncated,
    }


# A megabyte or more is parsed and stored in a second or two, but a busy machine (the suite in
# parallel) may take much longer: these requests get more than the harness's 10 seconds.
LARGE_TIMEOUT = 60


def post_group(base_url: str, payload: dict | bytes) -> httpx.Response:
    """`post_alertmanager` with LARGE_TIMEOUT (returns once the bot processed the group)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Alertmanager/0.25.0",
        "Authorization": f"Bearer {AM_TOKEN}",
    }
    r = httpx.post(f"{base_url}/webhooks/alertmanager", content=body, headers=headers, timeout=LARGE_TIMEOUT)
    return settle(base_url, r, LARGE_TIMEOUT)


def compact(payload: dict) -> bytes:
    """As Alertmanager (Go's encoding/json) sends it: no spaces."""
    return json.dumps(payload, separators=(",", ":")).encode()


def card_blocks(fake) -> list[dict]:
    chan = next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None)
    if chan is None:
        return []
    card = next((m for m in chan.messages if m["ts"] == chan.pins[0]), None)
    return card["blocks"] if card else []


def card_text(fake) -> str:
    return json.dumps(card_blocks(fake), ensure_ascii=False)


def assert_counts_all_1600(text: str) -> None:
    """The card folds alerts by kind: the 1,600 crash-looping pods are one section that counts them all,
    lists the first five pods and says how many it does not list."""
    assert "*KubePodCrashLooping* ×1600" in text, text[:3000]
    assert "checkout-api-7f9c00004-x04kq +1595 more" in text, text[:3000]


def count(bot, table) -> int:
    with Session(bot.ctx.engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


@pytest.fixture
def paging_bot(start_bot, fake_slack):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    return start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")


def test_a_1600_alert_group_over_one_mebibyte_opens_one_incident_that_pages(paging_bot, fake_slack):
    bot, fake = paging_bot, fake_slack.fake
    body = compact(realistic_group(1600))
    assert MIB < len(body) < 16 * MIB, len(body)

    started = time.perf_counter()
    r = post_group(bot.url, body)
    took = time.perf_counter() - started
    assert r.status_code == 202, (r.status_code, r.text[:300])
    assert processed(bot, r)["decision"] == "first notification"
    print(f"\n1600-alert group ({len(body) / MIB:.2f} MiB) stored in {took:.2f}s")

    assert count(bot, Incident) == 1 and count(bot, Alert) == 1600
    page_rows = wait_until(lambda: count(bot, Page), 15, what="a page row")
    assert page_rows >= 1
    wait_until(lambda: [c for c in fake.channels.values() if c.is_im], 30, what="the page DM")
    print(f"paged {time.perf_counter() - started:.2f}s after the webhook was sent")
    wait_until(lambda: fake.calls_to("chat.postMessage") and card_blocks(fake), 30, what="the pinned card")
    print(f"card pinned {time.perf_counter() - started:.2f}s after the webhook was sent")
    # The card went through the fake's Block Kit checks (at most 50 blocks, 3000 characters a section):
    blocks = card_blocks(fake)
    assert len(blocks) <= 50
    assert_counts_all_1600(card_text(fake))
    assert TRUNCATED_LINE not in card_text(fake)
    dm = [c for c in fake.channels.values() if c.is_im]
    assert dm, "nobody was paged"
    assert all(call.ok for call in fake.calls_to("chat.postMessage")), [
        call.result for call in fake.calls_to("chat.postMessage") if not call.ok
    ]

    # A repeat of the same group (Alertmanager's repeat_interval) changes nothing, and is quick too.
    started = time.perf_counter()
    r = post_group(bot.url, body)
    print(f"the same group repeated: {time.perf_counter() - started:.2f}s")
    assert r.status_code == 202 and processed(bot, r)["decision"] == "repeat or retry, nothing changed"


def test_the_alertmanager_cap_is_its_own(start_bot):
    bot = start_bot(alertmanager_max_body_bytes=2 * MIB)
    fits = compact(realistic_group(2000))
    assert MIB < len(fits) < 2 * MIB
    assert post_group(bot.url, fits).status_code == 202
    too_big = compact(realistic_group(2500, group="TooBig"))
    assert len(too_big) > 2 * MIB
    r = post_group(bot.url, too_big)
    assert r.status_code == 413 and r.json() == {"detail": f"request body is larger than {2 * MIB} bytes"}

    # The other endpoints keep MAX_BODY_BYTES (1 MiB).
    pd = json.loads(json.dumps(PD_TRIGGERED))
    pd["event"]["data"]["padding"] = "x" * (MIB + 10)
    raw = json.dumps(pd).encode()
    signature = sign_webhook(raw, PD_WEBHOOK_SECRETS[0])
    headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": signature}
    assert (
        httpx.post(
            f"{bot.url}/webhooks/pagerduty", content=raw, headers=headers, timeout=LARGE_TIMEOUT
        ).status_code
        == 413
    )
    command = slash_command_body("/incident", "note " + "x" * (MIB + 10))
    r = httpx.post(
        f"{bot.url}/slack/events", content=command, headers=slack_headers(command), timeout=LARGE_TIMEOUT
    )
    assert r.status_code == 413


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_default_alertmanager_cap_is_16_mebibytes(start_bot):
    bot = start_bot()
    payload = realistic_group(1)
    payload["commonAnnotations"]["padding"] = ""
    base = len(json.dumps(payload))
    payload["commonAnnotations"]["padding"] = "x" * (16 * MIB + 1 - base)
    body = json.dumps(payload).encode()
    assert len(body) == 16 * MIB + 1
    assert post_group(bot.url, body).status_code == 413


def test_a_truncated_group_says_so_on_the_card(paging_bot, fake_slack):
    bot, fake = paging_bot, fake_slack.fake
    r = post_alertmanager(bot.url, realistic_group(5, truncated=250))
    assert r.status_code == 202, r.text
    wait_until(lambda: "250 more" in card_text(fake), 15, what="the truncation on the card")
    text = card_text(fake)
    assert f"… and 250 more {TRUNCATED_LINE}" in text
    # After the alert list: the line follows the last alert shown.
    assert text.index("checkout-api-7f9c00004") < text.index(TRUNCATED_LINE)
    with Session(bot.ctx.engine) as session:
        assert session.exec(select(Incident)).one().truncated_alerts == 250

    # Alertmanager sends the group again with more alerts left out: the same alerts, a new count.
    r = post_alertmanager(bot.url, realistic_group(5, truncated=400))
    assert processed(bot, r)["decision"] == "alerts changed"
    wait_until(lambda: "400 more" in card_text(fake), 15, what="the new count on the card")
    # ... and none left out any more.
    r = post_alertmanager(bot.url, realistic_group(5, truncated=0))
    assert processed(bot, r)["decision"] == "alerts changed"
    wait_until(lambda: TRUNCATED_LINE not in card_text(fake), 15, what="the line gone from the card")
    with Session(bot.ctx.engine) as session:
        assert session.exec(select(Incident)).one().truncated_alerts == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_truncated_1600_alert_group_card_stays_within_block_kit_limits(paging_bot, fake_slack):
    bot, fake = paging_bot, fake_slack.fake
    r = post_group(bot.url, realistic_group(1600, truncated=98_400))
    assert r.status_code == 202, r.text
    wait_until(lambda: "98400 more" in card_text(fake), 30, what="the card")
    assert_counts_all_1600(card_text(fake))
    assert all(call.ok for call in fake.calls_to("chat.postMessage"))


def test_realistic_group_is_realistic():
    """The generator matches a captured Alertmanager 0.25 body field for field (and sizes as claimed)."""
    captured = json.loads((FIXTURES / "alertmanager-0.25/firing-two-alerts.json").read_text())
    made = realistic_group(2)
    assert set(made) == set(captured)
    assert set(made["alerts"][0]) == set(captured["alerts"][0])
    per_alert = len(compact(realistic_group(100))) / 100
    assert 700 < per_alert < 1000, per_alert  # 1,600 of them: more than 1 MiB


@pytest.mark.e2e
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_real_alertmanager_with_max_alerts_says_how_many_it_left_out(fake_slack, database_url, tmp_path):
    """The README's advice (`max_alerts` on the webhook receiver) with the real binary: Alertmanager
    sends the first alerts and `truncatedAlerts`; the card says how many more there are."""
    fake = fake_slack.fake
    bot = BotProcess(bot_env(fake_slack.url, database_url), tmp_path / "bot.log").start()
    alerts = [
        {
            "labels": {"alertname": "KubePodCrashLooping", "service": "checkout-api", "severity": "critical",
                       "pod": f"checkout-api-{n}"},
            "annotations": {"summary": "Pod is crash looping."},
            "startsAt": now_iso(),
        }
        for n in range(8)
    ]  # fmt: skip
    try:
        with Alertmanager(tmp_path / "am", f"{bot.url}/webhooks/alertmanager", AM_TOKEN, max_alerts=3) as am:
            am.post_alerts(alerts)
            wait_until(lambda: f"… and 5 more {TRUNCATED_LINE}" in card_text(fake), 30, 0.2, "the card")
    finally:
        bot.stop()
