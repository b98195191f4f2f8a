"""A SIGKILL between two notification rules loses and doubles nothing: the bot as users run it
(`incidentbot serve`, worker in its child process), killed after the first rule went out and
started again after the second (an email, or an SMS through Twilio) came due."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from sqlmodel import Session, col, create_engine, select

from bot.store.tables import Notification, Outbox
from tests.fakenotify import FakeNtfy, FakeSMTP, FakeTwilio
from tests.harness import ROOT, BotProcess, bot_env, post_alertmanager, wait_until

pytestmark = pytest.mark.e2e

FIXTURE = json.loads((ROOT / "tests/fixtures/alertmanager-0.25/firing-single-alert.json").read_text())
PEOPLE = """
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    ntfy: alex-pages
    phone: "+14155550100"
    notify:
      - {after: 0s, via: [slack, ntfy]}
      - {after: 6s, via: SECOND}
  sarah: {slack: U02SARAH}
  mike:  {slack: U03MIKE}
"""


@pytest.mark.parametrize("second", ["email", "sms"])
def test_sigkill_between_two_rules_loses_and_doubles_nothing(
    fake_slack, database_url, tmp_path: Path, second: str
):
    rotations = tmp_path / "rotations"
    shutil.copytree(ROOT / "tests/fixtures/rotations-fast", rotations)
    (rotations / "people.yaml").write_text(PEOPLE.replace("SECOND", second))
    # The escalation steps come later than the rules (the fast fixture escalates at 4s).
    policy = (
        (rotations / "fast.yaml")
        .read_text()
        .replace("after: 4s", "after: 60s")
        .replace("after: 8s", "after: 90s")
    )
    (rotations / "fast.yaml").write_text(policy)
    with FakeNtfy() as ntfy, FakeSMTP(tmp_path) as smtp, FakeTwilio() as twilio:
        env = bot_env(
            fake_slack.url,
            database_url,
            ROTATIONS_DIR=str(rotations),
            NTFY_URL=ntfy.url,
            SMTP_URL=smtp.url(),
            SMTP_FROM="incidentbot@example.com",
            PUBLIC_URL="https://bot.example.com",
            SECRET_KEY="k3y",
            **{key.upper(): value for key, value in twilio.settings().items()},
        )
        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))

        def statuses() -> list[tuple[int, str, str]]:
            with Session(engine) as session:
                return sorted((n.rule, n.method, n.status) for n in session.exec(select(Notification)))

        bot = BotProcess(env, tmp_path / "bot.log").start()
        try:
            assert post_alertmanager(bot.url, FIXTURE).status_code == 202
            first_rule = [(0, "ntfy", "sent"), (0, "slack", "sent")]
            wait_until(lambda: statuses() == first_rule, 15, 0.05, "the first rule delivered and recorded")
        finally:
            bot.kill()  # SIGKILL: the second rule is still a pending timer
        time.sleep(7)  # the second rule comes due while the bot is down
        assert not smtp.messages and not twilio.messages
        bot = BotProcess(env, tmp_path / "bot.log", port=bot.port).start()
        try:
            if second == "email":
                smtp.wait_for(1, timeout=20)
            else:
                twilio.wait_for_messages(1, timeout=20)

            def settled() -> bool:
                with Session(engine) as session:
                    pending = session.exec(select(Outbox).where(col(Outbox.status) == "pending")).all()
                    open_rows = session.exec(
                        select(Notification).where(col(Notification.status) == "pending")
                    ).all()
                    return not pending and not open_rows

            wait_until(settled, 20, 0.2, "every notification settled")
            rows = statuses()
        finally:
            bot.stop()
            engine.dispose()
    assert rows == [(0, "ntfy", "sent"), (0, "slack", "sent"), (1, second, "sent")]
    assert len(ntfy.accepted()) == 1 and len(smtp.messages) + len(twilio.messages) == 1
