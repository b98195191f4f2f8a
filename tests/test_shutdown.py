"""SIGTERM: stop taking work, finish in-flight deliveries, exit within 10 s."""

import json
import time
from pathlib import Path

from sqlmodel import Session, col, select

from bot.store.db import make_engine
from bot.store.tables import Outbox
from tests.harness import BotProcess, bot_env, post_alertmanager, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)


def test_sigterm_finishes_in_flight_deliveries_and_exits_quickly(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    bot = BotProcess(bot_env(fake_slack.url, database_url), tmp_path / "bot.log").start()
    fake.add_fault({"method": "conversations.create", "mode": "slow", "delay": 2})
    assert post_alertmanager(bot.url, FIXTURE).status_code == 202
    wait_until(lambda: fake.calls_to("conversations.create"), 10, what="a delivery in flight")
    started = time.monotonic()
    code = bot.stop()
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f}s to exit"
    log = (tmp_path / "bot.log").read_text()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why it ended.
    assert code in (0, -15), log[-2000:]
    assert "Application shutdown complete" in log
    # The slow call finished and was recorded as sent: nothing is left "in flight".
    assert [c for c in fake.calls_to("conversations.create") if c.ok]
    with Session(make_engine(database_url)) as session:
        row = session.exec(select(Outbox).where(col(Outbox.op) == "create_channel")).one()
        assert row.status == "sent" and not row.in_flight
