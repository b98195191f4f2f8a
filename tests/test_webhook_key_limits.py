"""An Alertmanager notification whose receiver|groupKey cannot fit the incident's unique key gets a
422 naming the problem. Found by audit: on PostgreSQL (btree entries hold at most 2704 bytes) a
3000-character groupKey failed at INSERT, and the bot answered 503, so Alertmanager retried a
notification that could never be stored."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import httpx
import pytest

from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import post_alertmanager

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_long_group_key_is_a_4xx_not_a_503(start_bot):
    bot = start_bot()
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    rng = random.Random(7)
    payload["groupKey"] = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(3000))
    r = post_alertmanager(bot.url, payload)
    assert r.status_code in (400, 413, 422), (r.status_code, r.text[:300])


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_long_pagerduty_incident_id_is_a_4xx(start_bot):
    bot = start_bot()
    payload = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())
    payload["event"]["data"]["id"] = "P" * 3000
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign_webhook(body, PD_WEBHOOK_SECRETS[0]),
    }
    r = httpx.post(f"{bot.url}/webhooks/pagerduty", content=body, headers=headers, timeout=10)
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert "id" in r.text
