"""Handoff notices are durable timers: the bot as users run it (`incidentbot serve`) sends each
notice exactly once across SIGKILLs, and with two replicas on one PostgreSQL database.

sarah is on call all week (the rotation's next handoff, to mike, is next Monday: planned at start by
every replica, once). Once the bots are up, alex takes over from Slack `now for 20s` (60 s where the bot is
restarted meanwhile): two handoffs (sarah -> alex now, alex -> sarah when it ends), and a reminder
to sarah 10 s before the second.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, create_engine, select

from bot.store.tables import Outbox, Timer
from tests.harness import BotProcess, bot_env, wait_until
from tests.test_flow_oncall import say
from tests.test_flow_paging import dms_to

pytestmark = pytest.mark.e2e

ALEX, SARAH = "U01ALEX", "U02SARAH"
PEOPLE = """\
people:
  alex:  {slack: U01ALEX}
  sarah: {slack: U02SARAH}
  mike:  {slack: U01MIKE}
"""
PLATFORM = """\
rotation:
  name: platform
  timezone: UTC
  start: {start}
  shift: 1w
  channel: {channel}
  handoff_reminder: 10s
  layers:
    primary: [sarah, mike]
escalation:
  steps:
    - {{after: 0m, notify: primary}}
"""
COVER = timedelta(seconds=20)
SLOW_COVER = timedelta(seconds=60)  # outlasts two restarts of the bot on a loaded machine


def setup(fake, tmp_path: Path) -> tuple[Path, str]:
    """Rotations where sarah's week began this Monday."""
    channel = fake.create_channel("oncall-platform").id
    today = datetime.now(UTC).date()
    monday = (today - timedelta(days=today.weekday())).isoformat() + "T00:00"
    rotations = tmp_path / "rotations"
    rotations.mkdir()
    (rotations / "people.yaml").write_text(PEOPLE)
    (rotations / "platform.yaml").write_text(PLATFORM.format(start=monday, channel=channel))
    return rotations, channel


def cover(bot, span: timedelta = COVER) -> datetime:
    """alex covers sarah from now for `span`, asked from Slack; when that ends."""
    answer = say(bot, f"override <@U01ALEX> platform now for {int(span.total_seconds())}s", user=ALEX)
    assert "covers platform primary" in answer, answer
    return datetime.now(UTC) + span


def said(fake, user: str, words: str) -> list[str]:
    return [c.args.get("text", "") for c in dms_to(fake, user) if words in c.args.get("text", "")]


def engine_for(database_url: str):
    return create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))


def drained(engine) -> bool:
    with Session(engine) as session:
        return not session.exec(select(Outbox).where(col(Outbox.status) == "pending")).all()


def planned(engine) -> list[str]:
    with Session(engine) as session:
        return [t.key for t in session.exec(select(Timer).where(col(Timer.kind) == "handoff"))]


def wait_for(at: datetime, extra: float = 0.0) -> None:
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds() + extra))


def both_handoffs_told(fake, channel: str, timeout: float) -> None:
    wait_until(lambda: said(fake, ALEX, "You are on call"), timeout, 0.1, "alex told he is on call")
    wait_until(lambda: said(fake, SARAH, "You are on call"), timeout, 0.1, "sarah told she is back")
    wait_until(lambda: said(fake, ALEX, "shift ended"), timeout, 0.1, "alex's summary")
    wait_until(lambda: said(fake, SARAH, "shift ended"), timeout, 0.1, "sarah's summary")
    wait_until(lambda: len(fake.messages(channel)) >= 2, timeout, 0.1, "two lines in the channel")


def assert_each_once(fake, channel: str) -> None:
    for user in (ALEX, SARAH):
        assert len(said(fake, user, "You are on call")) == 1, said(fake, user, "You are on call")
        assert len(said(fake, user, "shift ended")) == 1, said(fake, user, "shift ended")
    assert len(fake.messages(channel)) == 2, fake.messages(channel)
    assert not said(fake, ALEX, "Reminder")  # his cover started at once: nothing to remind


def test_each_notice_once_across_sigkills(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    rotations, channel = setup(fake, tmp_path)
    env = bot_env(fake_slack.url, database_url, ROTATIONS_DIR=str(rotations), HANDOFF_NOTICES="true")
    engine = engine_for(database_url)
    bot = BotProcess(env, tmp_path / "bot.log").start(ready_timeout=60)
    try:
        ends = cover(bot, SLOW_COVER)
    finally:
        bot.kill()  # SIGKILL at once: the first handoff is a row, maybe not fired yet
    bot = BotProcess(env, tmp_path / "bot.log", port=bot.port).start(ready_timeout=60)
    try:
        assert datetime.now(UTC) < ends, "the restart outlasted the cover: the machine is too slow"
        wait_until(lambda: said(fake, ALEX, "You are on call"), 30, 0.02, "alex told after the restart")
    finally:
        bot.kill()  # SIGKILL again, maybe in the middle of delivering the other notices
    bot = BotProcess(env, tmp_path / "bot.log", port=bot.port).start(ready_timeout=60)
    try:
        wait_for(ends)
        both_handoffs_told(fake, channel, 60)
        wait_until(lambda: drained(engine), 30, 0.2, "the outbox drained")
        time.sleep(1.5)  # a few more ticks: nothing fires again
    finally:
        bot.stop()
        engine.dispose()
    assert_each_once(fake, channel)
    assert len(said(fake, SARAH, "Reminder")) <= 1  # none if the restarts outlasted its time


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_replicas_send_each_notice_once(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    rotations, channel = setup(fake, tmp_path)
    env = bot_env(fake_slack.url, database_url, ROTATIONS_DIR=str(rotations), HANDOFF_NOTICES="true")
    engine = engine_for(database_url)
    bots = [BotProcess(env, tmp_path / f"bot{i}.log") for i in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:  # start together: both plan next Monday's handoff
            list(pool.map(lambda b: b.start(ready_timeout=60), bots))
        ends = cover(bots[1])
        wait_for(ends)
        both_handoffs_told(fake, channel, 30)
        wait_until(lambda: said(fake, SARAH, "Reminder"), 30, 0.1, "sarah reminded")
        wait_until(lambda: drained(engine), 30, 0.2, "the outbox drained")
        time.sleep(1.5)
        keys = planned(engine)
    finally:
        for bot in bots:
            bot.stop()
        engine.dispose()
    assert_each_once(fake, channel)
    assert len(said(fake, SARAH, "Reminder")) == 1
    # The override's start and end, and next Monday's (planned by both replicas at start): once each.
    assert len(keys) == len(set(keys)) == 3, keys
