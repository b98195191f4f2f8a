"""Timers that cannot be lost: a restart fires a due page once; two replicas fire each page once."""

import copy
import json
import random
import re
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.harness import ROOT, BotProcess, bot_env, post_alertmanager, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)
FAST = str(ROOT / "tests" / "fixtures" / "rotations-fast")
USERS = ("U01ALEX", "U02SARAH", "U03MIKE")

pytestmark = pytest.mark.e2e


def group(i: int) -> dict:
    p = copy.deepcopy(FIXTURE)
    p["groupKey"] = f'{{}}:{{alertname="WeaviateDown", service="svc-{i}"}}'
    p["groupLabels"]["service"] = p["commonLabels"]["service"] = f"svc-{i}"
    p["commonAnnotations"]["summary"] = f"Weaviate {i} is down"
    p["alerts"][0]["fingerprint"] = f"fp{i:05d}"
    return p


def pages(fake) -> Counter:
    """(user, incident channel) -> number of page DMs that reached Slack. A page names its channel
    by link, or by name when it went out before the channel existed."""
    channels = fake.channels
    dm_user = {c.id: c.user for c in channels.values() if c.is_im}
    by_name = {f"#{c.name}": c.id for c in channels.values() if not c.is_im}
    out: Counter = Counter()
    for call in fake.calls_to("chat.postMessage"):
        if call.ok and call.args.get("channel") in dm_user:
            blocks = json.dumps(call.args.get("blocks"))
            linked = re.search(r"<#(C\w+)>", blocks)
            named = re.search(r"(#inc-[a-z0-9-]+)", blocks)
            channel = linked.group(1) if linked else by_name.get(named.group(1), "?") if named else "?"
            out[(dm_user[call.args["channel"]], channel)] += 1
    return out


def test_a_page_due_while_the_bot_is_down_fires_once_after_restart(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    env = bot_env(fake_slack.url, database_url, ROTATIONS_DIR=FAST)
    bot = BotProcess(env, tmp_path / "bot.log").start()
    post_alertmanager(bot.url, group(1))
    wait_until(lambda: any(u == "U01ALEX" for u, _ in pages(fake)), 15, 0.1, "first page")
    bot.kill()  # SIGKILL: no chance to clean up
    time.sleep(12)  # the secondary (4s) and the manager (8s) come due while the bot is down
    assert not any(u == "U02SARAH" for u, _ in pages(fake))
    bot = BotProcess(env, tmp_path / "bot.log", port=bot.port).start()
    try:
        wait_until(lambda: {u for u, _ in pages(fake)} == set(USERS), 20, 0.1, "late pages after restart")
        time.sleep(2)  # nothing more may arrive
        counts = pages(fake)
        assert set(counts.values()) == {1}, counts
        chan = next(c for c in fake.channels.values() if c.name.startswith("inc-"))
        assert any("late: the bot was not running" in m.get("text", "") for m in fake.messages(chan.id))
    finally:
        bot.stop()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_replicas_on_postgres_deliver_every_page_exactly_once(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    env = bot_env(fake_slack.url, database_url, ROTATIONS_DIR=FAST, LOG_LEVEL="WARNING")
    bots = [BotProcess(env, tmp_path / f"bot{i}.log").start() for i in range(2)]
    n = 200
    try:
        rng = random.Random(7)
        with httpx.Client(timeout=10) as client:
            for i in range(n):
                target = rng.choice(bots)
                r = client.post(
                    f"{target.url}/webhooks/alertmanager",
                    json=group(i),
                    headers={"Authorization": "Bearer s3cret-token"},
                )
                assert r.status_code == 202, r.text

        def all_paged() -> bool:
            return len(pages(fake)) == n * len(USERS)

        wait_until(all_paged, 180, 0.5, f"{n * len(USERS)} pages")
        time.sleep(3)
        counts = pages(fake)
        assert len(counts) == n * len(USERS)
        assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1][:5]
        creates = [c for c in fake.calls_to("conversations.create") if c.ok]
        assert len(creates) == n
    finally:
        for bot in bots:
            bot.stop()


def test_a_step_due_between_ticks_fires_on_time_not_at_the_next_tick(fake_slack, database_url, tmp_path):
    """Ticks 3 s apart; the secondary's step is due 4 s after the first page. The tick before it
    sees it coming and runs once more exactly then, instead of firing it up to a tick late."""
    from sqlmodel import Session, col, select

    from bot.store.db import make_engine
    from bot.store.tables import Timer

    env = bot_env(fake_slack.url, database_url, ROTATIONS_DIR=FAST, SCHEDULER_TICK_SECONDS="3")
    bot = BotProcess(env, tmp_path / "bot.log").start()
    engine = make_engine(database_url)
    try:
        post_alertmanager(bot.url, group(1))

        def fired() -> list[Timer]:
            with Session(engine) as session:
                query = select(Timer).where(col(Timer.key) == "c0r0s1", col(Timer.status) == "fired")
                return list(session.exec(query))

        timer = wait_until(fired, 15, 0.1, "the secondary's step")[0]
        late = (timer.fired_at - timer.due_at).total_seconds()
        assert 0 <= late < 0.5, f"fired {late:.3f}s after it was due (ticks are 3 s apart)"
    finally:
        engine.dispose()
        bot.stop()
