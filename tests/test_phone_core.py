"""Replies by phone and the page as an SMS: pure rules (bot/core/phone_replies.py, sms_text.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.phone_replies import (
    Intent,
    OpenPage,
    Reply,
    ReplyOutcome,
    call_script,
    decide_reply,
    parse_digit,
    parse_reply,
)
from bot.core.sms_text import GSM_SEGMENT, UCS2_TWO_SEGMENTS, is_gsm, page_sms, units
from tests.fakenotify.twilio import segments

P41 = OpenPage(7, 41, "SEV1", "Weaviate is down")
P42 = OpenPage(9, 42, "SEV2", "Checkout latency")


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        ("1", Reply(Intent.ACKNOWLEDGE, None)),
        (" 2 ", Reply(Intent.ESCALATE, None)),
        ("1 41", Reply(Intent.ACKNOWLEDGE, 41)),
        ("1 #41", Reply(Intent.ACKNOWLEDGE, 41)),
        ("2,41", Reply(Intent.ESCALATE, 41)),
        ("ACK 41", Reply(Intent.ACKNOWLEDGE, 41)),
        ("Escalate", Reply(Intent.ESCALATE, None)),
        ("1.", Reply(Intent.ACKNOWLEDGE, None)),
    ],
)
def test_replies_people_send_are_understood(body, reply) -> None:
    assert parse_reply(body) == reply


@pytest.mark.parametrize(
    "body", ["", "12", "141", "3", "yes", "1 forty-one", "STOP", "1" * 500, "1 1234567890"]
)
def test_anything_else_is_not_a_reply(body) -> None:
    assert parse_reply(body) is None
    decision = decide_reply(body, [P41], {})
    assert decision.outcome is ReplyOutcome.NOT_UNDERSTOOD and decision.page is None
    assert "Nothing was changed" in decision.text


def test_a_bare_reply_acts_on_the_only_open_page_and_asks_which_among_several() -> None:
    only = decide_reply("1", [P41], {})
    assert (only.outcome, only.page, only.intent) == (ReplyOutcome.ACT, P41, Intent.ACKNOWLEDGE)
    several = decide_reply("1", [P41, P42], {})
    assert several.outcome is ReplyOutcome.ASK_WHICH and several.page is None
    assert "#41" in several.text and "#42" in several.text and "Reply 1 41" in several.text
    named = decide_reply("2 42", [P41, P42], {})
    assert (named.outcome, named.page, named.intent) == (ReplyOutcome.ACT, P42, Intent.ESCALATE)


def test_an_unknown_code_or_no_open_page_changes_nothing_and_says_why() -> None:
    unknown = decide_reply("1 99", [P41], {})
    assert unknown.outcome is ReplyOutcome.UNKNOWN_CODE and "no open page for incident #99" in unknown.text
    done = decide_reply("1 40", [P41], {40: "resolved"})
    assert done.outcome is ReplyOutcome.UNKNOWN_CODE and "#40 is already resolved" in done.text
    nothing = decide_reply("1", [], {40: "acknowledged"})
    assert nothing.outcome is ReplyOutcome.NOTHING_OPEN and nothing.page is None
    assert nothing.text == "You have no open page (#40 is acknowledged). Nothing was changed."


def test_keys_pressed_during_a_call() -> None:
    assert parse_digit("1") is Intent.ACKNOWLEDGE and parse_digit("2") is Intent.ESCALATE
    assert parse_digit("9") is None and parse_digit("") is None and parse_digit("12") is None


def test_the_page_sms_fits_one_segment_and_names_its_incident_when_asked() -> None:
    text = page_sms(41, "SEV1", "Weaviate is down", code=None, replies=True)
    assert text == "SEV1 incident #41: Weaviate is down\nReply 1 to acknowledge, 2 to escalate"
    coded = page_sms(41, "SEV1", "Weaviate is down", code=41, replies=True)
    assert coded.endswith("Reply 1 41 to acknowledge, 2 41 to escalate")
    assert page_sms(41, "SEV1", "x", code=None, replies=False).endswith("Acknowledge in Slack.")
    long = page_sms(41, "SEV1", "Disk [full] on " + "db-primary " * 40, code=41, replies=True)
    assert units(long) <= GSM_SEGMENT and segments(long) == 1 and "..." in long


@given(st.text(max_size=400), st.sampled_from(["SEV1", "SEV2", "SEV3"]), st.booleans())
def test_any_title_gives_an_sms_of_one_segment_or_two_for_ucs2(title, severity, coded) -> None:
    text = page_sms(12345, severity, title, code=12345 if coded else None, replies=True)
    assert text.startswith(f"{severity} incident #12345: ")
    assert text.endswith("to escalate")
    assert segments(text) == 1 if is_gsm(text) else segments(text) <= 2
    assert units(text) <= (GSM_SEGMENT if is_gsm(text) else UCS2_TWO_SEGMENTS)


def test_a_call_reads_the_incident_and_gathers_a_key() -> None:
    script = call_script(
        41, "SEV1", "Weaviate\nis down", "https://bot.example.com/webhooks/twilio/voice?page=t"
    )
    assert "Incident 41, severity 1: Weaviate is down." in script.intro
    assert script.prompt == "Press 1 to acknowledge, or 2 to escalate."
    assert script.gather_url and script.gather_url.endswith("?page=t")
    without = call_script(41, "SEV1", "Weaviate is down", None)
    assert without.gather_url is None and "Slack" in without.goodbye
