"""`serve` delivers from a child process (`incidentbot work`): woken at once through its pipe, dead
with its parent even on SIGKILL, started again when it dies alone; WORKER_PROCESS=false keeps one."""

import copy
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.harness import BotProcess, bot_env, children, post_alertmanager, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)
# Far longer than any wait below: a page that arrives in time was woken, not polled for.
SLOW_POLL = "60"

pytestmark = pytest.mark.e2e


def group(i: int) -> dict:
    p = copy.deepcopy(FIXTURE)
    p["groupKey"] = f'{{}}:{{alertname="WeaviateDown", service="wp-{i}"}}'
    p["groupLabels"]["service"] = p["commonLabels"]["service"] = f"wp-{i}"
    p["alerts"][0]["fingerprint"] = f"wp{i:05d}"
    return p


def page_dms(fake) -> int:
    ims = {c.id for c in fake.channels.values() if c.is_im}
    return sum(1 for call in fake.calls_to("chat.postMessage") if call.ok and call.args.get("channel") in ims)


def alive(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])  # field 19


def workers_ready(bot: BotProcess) -> int:
    return bot.log_path.read_text(errors="replace").count('"worker ready"')


def only_child(bot: BotProcess) -> int:
    assert bot.proc is not None
    kids = children(bot.proc.pid)
    assert len(kids) == 1, kids
    comm = Path(f"/proc/{kids[0]}/comm")
    wait_until(lambda: comm.read_text().strip() == "incidentbot-wrk", 10, 0.05, "the worker's name")
    return kids[0]


def start_with_slow_poll(fake_slack, database_url, tmp_path) -> BotProcess:
    """`serve` with its worker process started, so that only a wake-up brings it work in time."""
    env = bot_env(fake_slack.url, database_url, OUTBOX_POLL_SECONDS=SLOW_POLL)
    bot = BotProcess(env, tmp_path / "bot.log").start()
    try:
        wait_until(lambda: workers_ready(bot) == 1, 10, 0.1, "the worker to start")
    except BaseException:
        bot.stop()
        raise
    return bot


def test_the_worker_process_is_woken_at_once_and_dies_with_its_parent(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    bot = start_with_slow_poll(fake_slack, database_url, tmp_path)
    try:
        child = only_child(bot)
        assert bot.proc is not None
        assert niceness(child) - niceness(bot.proc.pid) == 5  # WORKER_NICE: webhooks get the CPU first
        time.sleep(1)  # its first look is over: it waits for a wake-up or its (slow) poll
        post_alertmanager(bot.url, group(1))
        wait_until(lambda: page_dms(fake) == 1, 5, 0.05, "the page, delivered by the child")
        bot.kill()  # SIGKILL of the parent only
        wait_until(lambda: not alive(child), 5, 0.05, "the child to die with its parent")
    finally:
        bot.stop()


def test_a_worker_process_that_dies_alone_is_started_again(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    bot = start_with_slow_poll(fake_slack, database_url, tmp_path)
    try:
        first = only_child(bot)
        os.kill(first, signal.SIGKILL)
        assert bot.proc is not None
        wait_until(lambda: children(bot.proc.pid) not in ([], [first]), 10, 0.1, "a new worker process")
        second = only_child(bot)
        wait_until(lambda: workers_ready(bot) == 2, 10, 0.1, "it to start")
        assert niceness(second) - niceness(bot.proc.pid) == 5
        time.sleep(1)
        post_alertmanager(bot.url, group(2))
        wait_until(lambda: page_dms(fake) == 1, 5, 0.05, "the page, delivered by the new child")
        bot.stop()  # SIGTERM
        wait_until(lambda: not alive(second), 5, 0.05, "the child to stop with its parent")
    finally:
        bot.stop()


def test_worker_process_false_delivers_from_the_web_process(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    env = bot_env(fake_slack.url, database_url, OUTBOX_POLL_SECONDS=SLOW_POLL, WORKER_PROCESS="false")
    bot = BotProcess(env, tmp_path / "bot.log").start()
    try:
        assert bot.proc is not None and children(bot.proc.pid) == []
        time.sleep(1)
        post_alertmanager(bot.url, group(3))
        wait_until(lambda: page_dms(fake) == 1, 5, 0.05, "the page, delivered in process")
    finally:
        bot.stop()
