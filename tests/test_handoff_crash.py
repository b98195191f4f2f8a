"""Handoff notices are durable timers: the bot as users run it (`incidentbot serve`), with a handoff
a few seconds ahead (a rotation whose `start` is just ahead: sarah hands over to alex then), sends
each notice exactly once across SIGKILLs, and with two replicas on one PostgreSQL database."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, create_engine, select

from bot.store.tables import Outbox, Timer
from tests.harness import BotProcess, bot_env, wait_until
from tests.test_flow_paging import dms_to

pytestmark = pytest.mark.e2e

ALEX, SARAH = "U01ALEX", "U02SARAH"
PEOPLE = """\
people:
  alex:  {slack: U01ALEX}
  sarah: {slack: U02SARAH}
"""
PLATFORM = """\
rotation:
  name: platform
  timezone: UTC
  start: {start}
  shift: 1h
  channel: {channel}
  handoff_reminder: {reminder}
  layers:
    primary: [alex, sarah]
escalation:
  steps:
    - {{after: 0m, notify: primary}}
"""


def setup(fake, tmp_path: Path, ahead: float, reminder: str) -> tuple[Path, str, datetime]:
    """Rotations whose first handoff (sarah -> alex) is `ahead` seconds from now."""
    channel = fake.create_channel("oncall-platform").id
    at = (datetime.now(UTC) + timedelta(seconds=ahead)).replace(microsecond=0)
    rotations = tmp_path / "rotations"
    rotations.mkdir()
    (rotations / "people.yaml").write_text(PEOPLE)
    start = at.replace(tzinfo=None).isoformat()
    (rotations / "platform.yaml").write_text(PLATFORM.format(start=start, channel=channel, reminder=reminder))
    return rotations, channel, at


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


def test_each_notice_once_across_sigkills(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    rotations, channel, at = setup(fake, tmp_path, ahead=15, reminder="0")
    env = bot_env(fake_slack.url, database_url, ROTATIONS_DIR=str(rotations), HANDOFF_NOTICES="true")
    engine = engine_for(database_url)
    bot = BotProcess(env, tmp_path / "bot.log").start()
    try:
        wait_until(lambda: planned(engine), 15, 0.1, "the handoff planned")
    finally:
        bot.kill()  # SIGKILL before the handoff: it is a row, nothing in memory
    wait_for(at, 1.0)
    assert not said(fake, ALEX, "You are on call")
    bot = BotProcess(env, tmp_path / "bot.log", port=bot.port).start()
    try:
        wait_until(lambda: said(fake, ALEX, "You are on call"), 20, 0.02, "alex told after the restart")
    finally:
        bot.kill()  # SIGKILL again, maybe in the middle of delivering the other notices
    bot = BotProcess(env, tmp_path / "bot.log", port=bot.port).start()
    try:
        wait_until(lambda: said(fake, SARAH, "shift ended"), 20, 0.1, "sarah's summary")
        wait_until(lambda: fake.messages(channel), 20, 0.1, "the channel's line")
        wait_until(lambda: drained(engine), 20, 0.2, "the outbox drained")
        time.sleep(1.5)  # a few more ticks: nothing fires again
    finally:
        bot.stop()
        engine.dispose()
    assert len(said(fake, ALEX, "You are on call")) == 1
    assert len(said(fake, SARAH, "shift ended")) == 1
    assert len(fake.messages(channel)) == 1
    assert "late" not in said(fake, ALEX, "You are on call")[0]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_replicas_send_each_notice_once(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    rotations, channel, at = setup(fake, tmp_path, ahead=25, reminder="10s")
    env = bot_env(fake_slack.url, database_url, ROTATIONS_DIR=str(rotations), HANDOFF_NOTICES="true")
    engine = engine_for(database_url)
    bots = [BotProcess(env, tmp_path / f"bot{i}.log") for i in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:  # start together: both plan the same handoff
            list(pool.map(lambda b: b.start(ready_timeout=60), bots))
        assert datetime.now(UTC) < at - timedelta(seconds=10), "the bots took too long to start"
        wait_for(at, 1.0)
        wait_until(lambda: said(fake, ALEX, "You are on call"), 20, 0.1, "alex told")
        wait_until(lambda: said(fake, SARAH, "shift ended"), 20, 0.1, "sarah's summary")
        wait_until(lambda: fake.messages(channel), 20, 0.1, "the channel's line")
        wait_until(lambda: drained(engine), 20, 0.2, "the outbox drained")
        time.sleep(1.5)
        keys = planned(engine)
    finally:
        for bot in bots:
            bot.stop()
        engine.dispose()
    assert len(said(fake, ALEX, "Reminder")) == 1
    assert len(said(fake, ALEX, "You are on call")) == 1
    assert len(said(fake, SARAH, "shift ended")) == 1
    assert len(fake.messages(channel)) == 1
    assert len(keys) == len(set(keys)) == 2  # this handoff and the next, each planned once
