"""Request bodies are capped on every POST endpoint: 413, with or without Content-Length.

MAX_BODY_BYTES caps every endpoint but Alertmanager's, which has its own ALERTMANAGER_MAX_BODY_BYTES
(16 MiB: a group of ~1,600 alerts is more than 1 MiB, and Alertmanager drops a 413; see
test_large_groups.py). The tests below set both to the same small limit.

`bot.webhooks.common.BodyLimit` wraps the whole ASGI app: a declared Content-Length over the limit is
answered 413 before anything is read, and a chunked body (no Content-Length) is counted as it arrives
and cut off at the limit. Nothing is stored, and the bot keeps serving. A small limit keeps the tests
fast; one test checks the 1 MiB default. The cap sits in front of everything, the database included, so
these run on SQLite only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, func, select

from bot.store.tables import Incident, Outbox, TimelineEntry, WebhookReceipt
from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import AM_TOKEN, post_alertmanager, processed, settle, slack_headers, slash_command_body

FIXTURES = Path(__file__).parent / "fixtures"
AM_FIXTURE = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
PD_TRIGGERED = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())
LIMIT = 4096
ENDPOINTS = ("/webhooks/alertmanager", "/webhooks/pagerduty", "/slack/events")

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def padded_alert(size: int) -> bytes:
    """A valid Alertmanager notification of exactly `size` bytes (padding in an annotation)."""
    payload = json.loads(json.dumps(AM_FIXTURE))
    payload["commonAnnotations"]["padding"] = ""
    base = len(json.dumps(payload).encode())
    payload["commonAnnotations"]["padding"] = "x" * (size - base)
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body


def padded_pd(size: int) -> bytes:
    payload = json.loads(json.dumps(PD_TRIGGERED))
    payload["event"]["data"]["padding"] = ""
    base = len(json.dumps(payload).encode())
    payload["event"]["data"]["padding"] = "x" * (size - base)
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body


def padded_command(size: int) -> bytes:
    base = len(slash_command_body("/incident", "declare Too big sev3 "))
    body = slash_command_body("/incident", "declare Too big sev3 " + "x" * (size - base))
    assert len(body) == size
    return body


BUILD = {
    "/webhooks/alertmanager": padded_alert,
    "/webhooks/pagerduty": padded_pd,
    "/slack/events": padded_command,
}


def signed_headers(path: str, body: bytes) -> dict[str, str]:
    """Valid credentials for each endpoint: the cap must hold for authenticated senders too."""
    if path == "/webhooks/alertmanager":
        return {"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"}
    if path == "/webhooks/pagerduty":
        return {
            "X-PagerDuty-Signature": sign_webhook(body, PD_WEBHOOK_SECRETS[0]),
            "Content-Type": "application/json",
        }
    return slack_headers(body)


def chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post(bot, path: str, body: bytes, chunked: bool = False, signed: bool = True) -> httpx.Response:
    headers = signed_headers(path, body) if signed else {"Content-Type": "application/json"}
    content = chunks(body) if chunked else body
    return settle(bot.url, httpx.post(f"{bot.url}{path}", content=content, headers=headers, timeout=10))


def stored(bot) -> dict[str, int]:
    with Session(bot.ctx.engine) as session:
        return {
            t.__name__: session.exec(select(func.count()).select_from(t)).one()
            for t in (Incident, TimelineEntry, Outbox, WebhookReceipt)
        }


def still_serving(bot) -> None:
    assert httpx.get(f"{bot.url}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{bot.url}/readyz", timeout=5).status_code == 200
    help_body = slash_command_body("/incident", "help")
    r = httpx.post(f"{bot.url}/slack/events", content=help_body, headers=slack_headers(help_body), timeout=5)
    assert r.status_code == 200 and "/incident declare" in r.json()["text"]


@pytest.fixture
def bot(start_bot):
    return start_bot(max_body_bytes=LIMIT, alertmanager_max_body_bytes=LIMIT)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_over_the_limit_is_413_with_and_without_content_length(bot, path):
    empty = stored(bot)
    for size in (LIMIT + 1, LIMIT * 4, LIMIT * 64):
        body = BUILD[path](size)
        for chunked in (False, True):
            r = post(bot, path, body, chunked=chunked)
            assert r.status_code == 413, (size, chunked, r.status_code, r.text[:200])
            assert r.json() == {"detail": f"request body is larger than {LIMIT} bytes"}
        # Unauthenticated senders: a declared Content-Length is refused before anything else; a chunked
        # body is refused by whichever comes first, the token check (Alertmanager checks the header
        # before reading) or the cap.
        assert post(bot, path, body, signed=False).status_code == 413
        assert post(bot, path, body, chunked=True, signed=False).status_code in (401, 413)
    assert stored(bot) == empty
    still_serving(bot)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_exactly_the_limit_is_read_and_handled(bot, path):
    body = BUILD[path](LIMIT)
    for chunked in (False, True):
        r = post(bot, path, body, chunked=chunked)
        handled = 202 if path.startswith("/webhooks/") else 200  # a webhook is stored, then processed
        assert r.status_code == handled or r.json() == {"status": "duplicate"}, (
            chunked,
            r.status_code,
            r.text[:300],
        )


def test_a_body_that_declares_little_but_streams_more_is_cut_off(bot):
    # Chunked with an innocent first chunk: the limit counts bytes as they arrive, not the first chunk.
    def sneaky() -> Iterator[bytes]:
        yield b'{"version": "4", '
        for _ in range(200):
            yield b" " * 1000

    r = httpx.post(
        f"{bot.url}/webhooks/alertmanager",
        content=sneaky(),
        headers={"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 413
    assert stored(bot)["Incident"] == 0
    still_serving(bot)


def test_many_oversized_requests_in_a_row_leave_the_bot_healthy(bot):
    big = {path: BUILD[path](LIMIT * 8) for path in ENDPOINTS}
    with httpx.Client(timeout=10) as client:
        for n in range(30):
            path = ENDPOINTS[n % 3]
            headers = signed_headers(path, big[path])
            content = chunks(big[path]) if n % 2 else big[path]
            assert client.post(f"{bot.url}{path}", content=content, headers=headers).status_code == 413
    still_serving(bot)
    r = post_alertmanager(bot.url, AM_FIXTURE)
    assert r.status_code == 202 and processed(bot, r)["incident"] == 1


def test_default_limit_is_one_mebibyte_on_every_endpoint_but_alertmanager(start_bot):
    bot = start_bot()
    mib = 1024 * 1024
    for path in ("/webhooks/pagerduty", "/slack/events"):
        body = BUILD[path](mib + 1)
        for chunked in (False, True):
            assert post(bot, path, body, chunked=chunked).status_code == 413, (path, chunked)
    # Alertmanager's cap is 16 MiB (a big alert group is normal, and a 413 would page nobody).
    for size in (mib - 1024, mib + 1, 2 * mib):
        r = post(bot, "/webhooks/alertmanager", BUILD["/webhooks/alertmanager"](size), chunked=True)
        assert r.status_code == 202, (size, r.text[:300])
    still_serving(bot)
