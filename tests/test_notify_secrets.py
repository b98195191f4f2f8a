"""SECRET_KEY, the SMTP password and NTFY_TOKEN never appear in logs, metrics or pages, also when
the providers refuse them (a wrong SMTP password, a wrong ntfy token) and the bot says why."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from tests.fakenotify import FakeNtfy, FakeSMTP
from tests.harness import ROOT, BotProcess, bot_env, post_alertmanager, wait_until

pytestmark = pytest.mark.e2e

PEOPLE = """
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    ntfy: alex-pages
    notify: [{after: 0s, via: ntfy}, {after: 30s, via: email}]
  sarah: {slack: U02SARAH}
  mike:  {slack: U03MIKE}
"""


def test_provider_secrets_stay_out_of_logs_metrics_and_pages(fake_slack, tmp_path: Path) -> None:
    secret_key = f"sk-{secrets.token_hex(16)}"
    smtp_password = f"pw-{secrets.token_hex(16)}"
    ntfy_token = f"tk_{secrets.token_hex(16)}"
    rotations = tmp_path / "rotations"
    rotations.mkdir()
    (rotations / "fast.yaml").write_text((ROOT / "tests/fixtures/rotations-fast/fast.yaml").read_text())
    (rotations / "people.yaml").write_text(PEOPLE)
    with FakeNtfy() as ntfy, FakeSMTP(tmp_path, tls=True, login=("bot", "the-right-one")) as smtp:
        ntfy.protect("alex-pages", "tk_another")  # our token is refused: 401, said and logged
        env = bot_env(
            fake_slack.url,
            f"sqlite:///{tmp_path / 'bot.db'}",
            ROTATIONS_DIR=str(rotations),
            LOG_LEVEL="DEBUG",
            NTFY_URL=ntfy.url,
            NTFY_TOKEN=ntfy_token,
            SMTP_URL=smtp.url(userinfo=f"bot:{smtp_password}"),
            SMTP_FROM="incidentbot@example.com",
            SMTP_CA_FILE=str(smtp.ca_file),
            PUBLIC_URL="https://bot.example.com",
            SECRET_KEY=secret_key,
        )
        bot = BotProcess(env, tmp_path / "bot.log").start()
        try:
            assert (
                post_alertmanager(
                    bot.url,
                    json.loads(
                        (ROOT / "tests/fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
                    ),
                ).status_code
                == 200
            )
            chan = wait_until(
                lambda: next(
                    (c for c in fake_slack.fake.channels.values() if c.name.startswith("inc-")), None
                ),
                15,
            )

            def said(fragment: str) -> bool:
                return any(fragment in m.get("text", "") for m in fake_slack.fake.messages(chan.id))

            wait_until(lambda: said("by ntfy: HTTP 401"), 20, what="ntfy refusal said")
            wait_until(lambda: said("email: SMTP 535"), 20, what="SMTP login refusal said")
            assert ntfy.publishes[0].authorization == f"Bearer {ntfy_token}"  # it was sent, to ntfy only
            pages = [
                httpx.get(f"{bot.url}/metrics", timeout=10).text,
                httpx.get(f"{bot.url}/ack/forged.token", timeout=10).text,
                httpx.post(f"{bot.url}/ack/{'x' * 500}", timeout=10).text,
            ]
        finally:
            bot.stop()
    everything = (tmp_path / "bot.log").read_text() + "".join(pages)
    everything += json.dumps(
        [m for c in fake_slack.fake.channels.values() for m in fake_slack.fake.messages(c.id)]
    )
    for value in (secret_key, smtp_password, ntfy_token):
        assert value not in everything
