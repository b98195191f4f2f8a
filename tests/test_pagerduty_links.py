"""A PagerDuty incident's `html_url` becomes a link only when it is a web URL. Found by audit: the
":pager: Opened from ..." line linked it unchecked, so an html_url of `!channel` became
`<!channel|...>`, an @channel broadcast, and `@U123ABC` a user mention. `link()` now refuses
anything but http(s) and mailto."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import settle, wait_until

FIXTURES = Path(__file__).parent / "fixtures"
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@sqlite_only
@pytest.mark.parametrize("html_url", ["!channel", "@U123ABC"])
def test_pagerduty_html_url_cannot_become_a_mention(start_bot, fake_slack, html_url):
    fake = fake_slack.fake
    bot = start_bot()
    payload = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())
    payload["event"]["data"]["html_url"] = html_url
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign_webhook(body, PD_WEBHOOK_SECRETS[0]),
    }
    r = settle(
        bot.url, httpx.post(f"{bot.url}/webhooks/pagerduty", content=body, headers=headers, timeout=10)
    )
    assert r.status_code == 202, r.text

    def opened_line():
        for call in fake.calls_to("chat.postMessage"):
            text = str(call.args.get("text", ""))
            if "Opened from" in text:
                return text
        return None

    text = wait_until(opened_line, 15, what="the 'Opened from PagerDuty' message")
    assert f"<{html_url}|" not in text, f"mention injected via html_url: {text!r}"
