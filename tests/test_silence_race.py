"""A silence made from the card never outlives the incident. Found by audit: when the incident
resolved while the silence request was on its way to Alertmanager (slow API, a retry), the silence
was created afterwards and nobody expired it, so the group's next firing was muted for hours."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.harness import (
    block_action_body,
    free_port,
    paged_user,
    post_alertmanager,
    slack_headers,
    slash_command_body,
    wait_until,
)
from tests.test_flow_paging import fixture


class FakeAM:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.created: list[dict] = []
        self.expired: list[str] = []
        self.port = free_port()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if owner.refuse:
                    self._send(400, {"error": "bad matcher"})
                    return
                time.sleep(2.0)  # a slow Alertmanager (or one retry away)
                owner.created.append(body)
                self._send(200, {"silenceID": f"sil-{len(owner.created)}-0000"})

            def do_GET(self):
                self._send(200, [])

            def do_DELETE(self):
                owner.expired.append(self.path.rsplit("/", 1)[-1])
                self._send(200, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def post(bot, body: bytes) -> None:
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_silence_created_after_resolution_is_expired(start_bot, fake_slack):
    am = FakeAM()
    fake = fake_slack.fake
    bot = start_bot(alertmanager_url=am.url)
    r = post_alertmanager(bot.url, fixture("firing-single-alert.json"))
    assert r.status_code == 202, r.text
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
        15,
        what="incident channel",
    )
    on_call = paged_user(bot, 1)  # silencing is for the people paged (and the lead, rotation, admins)
    post(bot, block_action_body("incident_silence_4h", "1:14400", user=on_call, channel=chan.id))
    time.sleep(0.7)  # the silence request is at Alertmanager now
    post(bot, slash_command_body("/incident", "resolve fixed", user=on_call, channel=chan.id))
    wait_until(lambda: am.created, 10, what="silence created")
    time.sleep(4)
    assert am.expired == ["sil-1-0000"], (
        f"a 4h silence was created for a resolved incident and never expired: created "
        f"{len(am.created)}, expired {am.expired}"
    )
    am.server.shutdown()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refused_silence_is_said_in_the_channel(start_bot, fake_slack):
    am = FakeAM(refuse=True)
    fake = fake_slack.fake
    bot = start_bot(alertmanager_url=am.url)
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
        15,
        what="incident channel",
    )
    post(bot, block_action_body("incident_silence_1h", "1:3600", user=paged_user(bot, 1), channel=chan.id))
    told = wait_until(
        lambda: [m["text"] for m in fake.messages(chan.id) if "No silence was made" in m.get("text", "")],
        10,
        what="the channel told that no silence was made",
    )
    assert "bad matcher" in told[0] or "400" in told[0], told
    am.server.shutdown()
