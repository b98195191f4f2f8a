"""SECRET_KEY, the SMTP password, NTFY_TOKEN, TWILIO_AUTH_TOKEN and PUSHOVER_APP_TOKEN never appear
in logs, metrics or pages, also when the providers refuse them (a wrong SMTP password, a wrong ntfy
token, Twilio refusing the credentials, Pushover an app token) and the bot says why, and when
forged Twilio webhooks are refused."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import httpx
import pytest

from tests.fakenotify import FakeNtfy, FakePushover, FakeSMTP, FakeTwilio
from tests.fakenotify.pushover import USER_KEY
from tests.fakenotify.twilio import ACCOUNT_SID
from tests.harness import ROOT, BotProcess, bot_env, post_alertmanager, wait_until

pytestmark = pytest.mark.e2e

PEOPLE = """
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    ntfy: alex-pages
    phone: "+14155550100"
    pushover: PUSHOVER_USER
    notify: [{after: 0s, via: [ntfy, sms, pushover]}, {after: 30s, via: email}]
  sarah: {slack: U02SARAH}
  mike:  {slack: U03MIKE}
"""


def test_provider_secrets_stay_out_of_logs_metrics_and_pages(fake_slack, tmp_path: Path) -> None:
    secret_key = f"sk-{secrets.token_hex(16)}"
    smtp_password = f"pw-{secrets.token_hex(16)}"
    ntfy_token = f"tk_{secrets.token_hex(16)}"
    twilio_token = f"tw{secrets.token_hex(15)}"
    pushover_token = f"po{secrets.token_hex(14)}"
    rotations = tmp_path / "rotations"
    rotations.mkdir()
    (rotations / "fast.yaml").write_text((ROOT / "tests/fixtures/rotations-fast/fast.yaml").read_text())
    (rotations / "people.yaml").write_text(PEOPLE.replace("PUSHOVER_USER", USER_KEY))
    with (
        FakeNtfy() as ntfy,
        FakeSMTP(tmp_path, tls=True, login=("bot", "the-right-one")) as smtp,
        FakeTwilio() as twilio,  # knows another auth token: ours is refused (20003)
        FakePushover() as pushover,  # knows another app token: ours is refused
    ):
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
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=twilio_token,
            TWILIO_FROM_NUMBER="+15005550006",
            TWILIO_API_URL=twilio.url,
            PUSHOVER_APP_TOKEN=pushover_token,
            PUSHOVER_API_URL=f"{pushover.url}/1/",
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
                == 202
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
            wait_until(lambda: said("by SMS: HTTP 401: Authenticate"), 20, what="Twilio refusal said")
            wait_until(lambda: said("application token is invalid"), 20, what="Pushover refusal said")
            basic = base64.b64encode(f"{ACCOUNT_SID}:{twilio_token}".encode()).decode()
            assert twilio.refusals[0].code == 20003
            assert pushover.refused[0][0]["token"] == pushover_token  # sent, to Pushover only
            forged = twilio.reply_sms(bot.url, "https://bot.example.com/webhooks/twilio/sms", "+1415", "1")
            assert ntfy.publishes[0].authorization == f"Bearer {ntfy_token}"  # it was sent, to ntfy only
            pages = [
                httpx.get(f"{bot.url}/metrics", timeout=10).text,
                httpx.get(f"{bot.url}/ack/forged.token", timeout=10).text,
                httpx.post(f"{bot.url}/ack/{'x' * 500}", timeout=10).text,
                forged.text,  # signed with the fake's token, not ours: refused
            ]
            assert forged.status_code == 401
        finally:
            bot.stop()
    everything = (tmp_path / "bot.log").read_text() + "".join(pages)
    everything += json.dumps(
        [m for c in fake_slack.fake.channels.values() for m in fake_slack.fake.messages(c.id)]
    )
    for value in (secret_key, smtp_password, ntfy_token, twilio_token, pushover_token, basic):
        assert value not in everything
