"""/metrics of `incidentbot serve` as it runs by default, with its worker process: the counters the
worker keeps (incidents opened, Slack calls, outbox rows delivered) reach /metrics, survive the
worker being replaced, and an earlier run's counts are not added in."""

import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import BotProcess, bot_env, children, post_alertmanager, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)

pytestmark = pytest.mark.e2e


def fire(bot: BotProcess, service: str) -> None:
    payload = json.loads(json.dumps(FIXTURE))
    payload["groupKey"] = f'{{}}:{{alertname="WeaviateDown", service="{service}"}}'
    payload["groupLabels"]["service"] = payload["commonLabels"]["service"] = service
    payload["alerts"][0]["fingerprint"] = f"fp-{service}"
    assert post_alertmanager(bot.url, payload).status_code == 202


def samples(bot: BotProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[float]]:
    """(name, labels) -> every value /metrics gave for that series (more than one: a duplicate)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
    text = httpx.get(f"{bot.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault((sample.name, tuple(sorted(sample.labels.items()))), []).append(sample.value)
    return found


def value(bot: BotProcess, name: str, **labels: str) -> float:
    got = samples(bot).get((name, tuple(sorted(labels.items()))), [0.0])
    assert len(got) == 1, f"{name}{labels} appears {len(got)} times"
    return got[0]


def opened(bot: BotProcess) -> float:
    return value(bot, "incidentbot_incidents_opened_total", source="alertmanager")


def pages_sent(bot: BotProcess) -> float:
    return value(bot, "incidentbot_outbox_delivered_total", op="page", outcome="sent")


def worker_pid(bot: BotProcess) -> int:
    assert bot.proc is not None
    pids = children(bot.proc.pid)
    assert len(pids) == 1, f"expected one worker process, found {pids}"
    return pids[0]


def test_the_worker_processes_counters_reach_metrics_and_outlive_its_replacement(
    fake_slack, database_url, tmp_path
):
    bot = BotProcess(bot_env(fake_slack.url, database_url), tmp_path / "bot.log").start()
    try:
        fire(bot, "svc-1")
        wait_until(lambda: pages_sent(bot) == 1, 20, 0.2, "the first page counted in /metrics")
        assert opened(bot) == 1
        assert value(bot, "incidentbot_slack_calls_total", method="chat.postMessage", outcome="ok") >= 2
        assert value(bot, "incidentbot_webhooks_total", source="alertmanager", outcome="accepted") == 1
        # The database's gauges once each, whichever process asks.
        assert value(bot, "incidentbot_inbox_pending") == 0
        assert value(bot, "incidentbot_slack_credentials_ok") == 1

        first = worker_pid(bot)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: children(bot.proc.pid) not in ([], [first]), 20, 0.2, "a new worker process")
        fire(bot, "svc-2")
        wait_until(lambda: pages_sent(bot) == 2, 30, 0.2, "the second page counted in /metrics")
        assert opened(bot) == 2  # the dead worker's count is kept, the new one's added
    finally:
        bot.stop()


def test_a_given_metrics_directory_starts_each_run_from_zero(fake_slack, database_url, tmp_path):
    shared = tmp_path / "metrics"
    env = bot_env(fake_slack.url, database_url, PROMETHEUS_MULTIPROC_DIR=str(shared))
    bot = BotProcess(env, tmp_path / "bot.log").start()
    try:
        fire(bot, "svc-1")
        wait_until(lambda: opened(bot) == 1, 20, 0.2, "the incident counted")
        assert list(shared.glob("counter_*.db"))
    finally:
        bot.stop()
    bot = BotProcess(env, tmp_path / "bot.log", port=bot.port).start()
    try:
        assert opened(bot) == 0  # the files of the run before were emptied, not added in
        fire(bot, "svc-2")
        wait_until(lambda: opened(bot) == 1, 20, 0.2, "the second run's incident counted")
    finally:
        bot.stop()
