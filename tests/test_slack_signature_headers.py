"""A garbled X-Slack-Request-Timestamp or X-Slack-Signature is a 401, never a 500. Found by audit:
`str.isdigit()` accepts strings `int()` refuses (superscript digits, which arrive as the latin-1 byte
0xB2; more than 4300 digits), and a non-ASCII signature made slack_sdk's compare_digest raise."""

from __future__ import annotations

import httpx
import pytest

from tests.harness import slack_headers, slash_command_body

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

BODY = slash_command_body("/incident", "list")


def _post(bot, timestamp: bytes) -> int:
    headers: dict[str, str | bytes] = dict(slack_headers(BODY))
    headers["X-Slack-Request-Timestamp"] = timestamp
    return httpx.post(f"{bot.url}/slack/events", content=BODY, headers=headers, timeout=10).status_code


@sqlite_only
def test_superscript_digit_timestamp_is_401_not_500(start_bot):
    bot = start_bot()
    assert _post(bot, b"\xb2") == 401  # U+00B2 SUPERSCRIPT TWO: isdigit() True, int() ValueError


@sqlite_only
def test_overlong_digit_timestamp_is_401_not_500(start_bot):
    bot = start_bot()
    assert _post(bot, b"9" * 5000) == 401  # int() refuses > 4300 digits (ValueError)


@sqlite_only
def test_non_ascii_signature_is_401_not_500(start_bot):
    """With a current (forgeable) timestamp, slack_sdk compares the signature with
    hmac.compare_digest(str, str), which raises TypeError for non-ASCII text: a 500, unsigned."""
    bot = start_bot()
    headers: dict[str, str | bytes] = dict(slack_headers(BODY))
    headers["X-Slack-Signature"] = b"v0=\xe9"
    r = httpx.post(f"{bot.url}/slack/events", content=BODY, headers=headers, timeout=10)
    assert r.status_code == 401
