"""Twilio (SMS, voice) and Pushover notifiers against their local fakes, speaking the real
protocols: what each sends, how each failure is classified, how Pushover receipts are followed,
and that the bot's Twilio signature check agrees with Twilio's documented rule."""

from __future__ import annotations

import asyncio

import pytest

from bot.notify.port import NotifyError
from bot.notify.pushover import PushoverNotifier
from bot.notify.twilio import TwilioConfig, TwilioInbound, TwilioSmsNotifier, TwilioVoiceNotifier
from tests.fakenotify import FakePushover, FakeTwilio
from tests.fakenotify.pushover import APP_TOKEN, USER_KEY
from tests.fakenotify.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, signature
from tests.test_notifiers import message

PUBLIC = "https://bot.example.com"
ALEX = "+14155550100"


@pytest.fixture
def twilio():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def pushover():
    with FakePushover() as fake:
        yield fake


def config(twilio: FakeTwilio, token: str = AUTH_TOKEN) -> TwilioConfig:
    return TwilioConfig(ACCOUNT_SID, token, FROM_NUMBER, twilio.url)


def run(notifier, coroutine_of):
    async def go():
        try:
            return await coroutine_of(notifier)
        finally:
            await notifier.aclose()

    return asyncio.run(go())


def send(notifier, msg):
    return run(notifier, lambda n: n.send(msg))


def test_sms_is_one_short_segment_with_the_reply_hint(twilio) -> None:
    sent = send(TwilioSmsNotifier(config(twilio), PUBLIC, 5), message("sms", ALEX))
    sms = twilio.messages[0]
    assert (sms.to, sms.from_) == (ALEX, FROM_NUMBER)
    assert sms.body == "SEV1 incident #42: Checkout <down> & out\nReply 1 to acknowledge, 2 to escalate"
    assert sms.segments == 1
    assert sent.receipt == sms.sid and sms.sid in sent.answer
    # With other pages open, the SMS names its incident for the reply.
    send(TwilioSmsNotifier(config(twilio), PUBLIC, 5), message("sms", ALEX, other_open_pages=1))
    assert twilio.messages[1].body.endswith("Reply 1 42 to acknowledge, 2 42 to escalate")


def test_a_call_reads_the_incident_and_gathers_one_key_sent_back_with_the_page_token(twilio) -> None:
    sent = send(TwilioVoiceNotifier(config(twilio), PUBLIC, 5), message("voice", ALEX, ack_token="t0k3n"))
    call = twilio.calls[0]
    assert call.to == ALEX and sent.receipt == call.sid
    assert call.gather_url == f"{PUBLIC}/webhooks/twilio/voice?page=t0k3n"
    assert "Incident 42, severity 1: Checkout <down> & out." in call.said[0]
    assert "Press 1 to acknowledge, or 2 to escalate." in call.said[0]
    assert '<Gather action="https://bot.example.com/webhooks/twilio/voice?page=t0k3n"' in call.twiml
    assert 'numDigits="1"' in call.twiml and "&lt;down&gt; &amp; out" in call.twiml  # escaped XML


@pytest.mark.parametrize(
    ("setup", "code", "fragment"),
    [
        (lambda t: t.invalid(ALEX), 21211, "is not a valid phone number (Twilio error 21211)"),
        (lambda t: t.unsubscribe(ALEX), 21610, "unsubscribed recipient (Twilio error 21610)"),
    ],
)
def test_twilio_refusals_are_final_and_name_only_the_last_digits(twilio, setup, code, fragment) -> None:
    setup(twilio)
    with pytest.raises(NotifyError) as raised:
        send(TwilioSmsNotifier(config(twilio), PUBLIC, 5), message("sms", ALEX))
    assert not raised.value.recoverable
    assert raised.value.error.startswith("HTTP 400: ") and fragment in raised.value.error
    assert ALEX not in raised.value.error
    assert "…0100" in raised.value.error or code == 21610  # Twilio's 21610 names no number


def test_wrong_credentials_are_final_and_server_errors_are_retried(twilio) -> None:
    with pytest.raises(NotifyError) as refused:
        send(TwilioSmsNotifier(config(twilio, "not-the-token"), PUBLIC, 5), message("sms", ALEX))
    assert not refused.value.recoverable and "Authenticate (Twilio error 20003)" in refused.value.error
    for status in (429, 500, 503):
        twilio.fail(status)
        with pytest.raises(NotifyError) as failed:
            send(TwilioVoiceNotifier(config(twilio), PUBLIC, 5), message("voice", ALEX))
        assert failed.value.recoverable, status
    assert not twilio.calls


def test_twilio_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="TWILIO_ACCOUNT_SID"):
        TwilioConfig("AC123", AUTH_TOKEN, FROM_NUMBER, "https://api.twilio.com")
    with pytest.raises(ValueError, match="TWILIO_FROM_NUMBER"):
        TwilioConfig(ACCOUNT_SID, AUTH_TOKEN, "555-0100", "https://api.twilio.com")
    assert AUTH_TOKEN not in repr(TwilioConfig(ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, "https://x"))


def test_the_signature_check_agrees_with_twilios_documented_rule() -> None:
    inbound = TwilioInbound(AUTH_TOKEN)
    url = f"{PUBLIC}/webhooks/twilio/voice?page=abc"
    form = [("Digits", "1"), ("CallSid", "CA1"), ("From", FROM_NUMBER), ("Body", "é ü 🙂")]
    good = signature(AUTH_TOKEN, url, form)
    assert inbound.authentic(url, form, {"x-twilio-signature": good})
    assert not inbound.authentic(url, [*form[:-1], ("Body", "2")], {"x-twilio-signature": good})
    assert not inbound.authentic(url.replace("abc", "abd"), form, {"x-twilio-signature": good})
    assert not inbound.authentic(url, form, {"x-twilio-signature": signature("other", url, form)})
    assert not inbound.authentic(url, form, {})
    assert not inbound.authentic(url, form, {"x-twilio-signature": "ü"})
    assert not TwilioInbound("").authentic(url, form, {"x-twilio-signature": good})
    # Twilio's documented example (its security page): the same rule gives its signature.
    example = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    assert signature("12345", example, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert TwilioInbound("12345").authentic(
        example, params, {"x-twilio-signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="}
    )


@pytest.mark.parametrize(("severity", "priority"), [("SEV1", "2"), ("SEV2", "1"), ("SEV3", "0")])
def test_pushover_priority_by_severity_and_emergency_for_sev1(pushover, severity, priority) -> None:
    notifier = PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5)
    sent = send(notifier, message("pushover", USER_KEY, severity))
    push = pushover.pushes[0]
    assert push.form["priority"] == priority and push.form["user"] == USER_KEY
    assert push.form["url"] == "https://bot.example.com/ack/t0k3n" and push.form["url_title"] == "Acknowledge"
    if severity == "SEV1":
        assert (push.form["retry"], push.form["expire"]) == ("60", "3600")
        assert sent.receipt == push.receipt and sent.follow is not None
        assert sent.follow.every.total_seconds() >= 5  # Pushover: no more than one look per 5 s
        assert sent.follow.every <= sent.follow.at_most
    else:
        assert "retry" not in push.form and sent.follow is None


def test_pushover_receipts_acknowledged_expired_unknown_and_cancelled(pushover) -> None:
    notifier = PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5)
    receipt = send(
        PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5), message("pushover", USER_KEY)
    ).receipt
    waiting = run(PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5), lambda n: n.check(receipt))
    assert not waiting.acknowledged and not waiting.over
    pushover.acknowledge(receipt, device="alex-iphone")
    acked = run(notifier, lambda n: n.check(receipt))
    assert acked.acknowledged and acked.over and "alex-iphone" in acked.detail
    unknown = run(PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5), lambda n: n.check("x" * 30))
    assert unknown.over and not unknown.acknowledged and "receipt not found" in unknown.detail
    second = send(PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5), message("pushover", USER_KEY)).receipt
    run(PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5), lambda n: n.cancel(second))
    assert pushover.receipts[second].cancelled
    run(PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5), lambda n: n.cancel("y" * 30))  # gone: fine


def test_pushover_refusals_are_final_and_its_outages_retried(pushover) -> None:
    def fresh() -> PushoverNotifier:
        return PushoverNotifier(APP_TOKEN, f"{pushover.url}/1/", 5)

    with pytest.raises(NotifyError) as bad_user:
        send(fresh(), message("pushover", "u" * 30))
    assert not bad_user.value.recoverable
    assert "HTTP 400: user identifier is not a valid user" in bad_user.value.error
    with pytest.raises(NotifyError) as bad_token:
        send(PushoverNotifier("a" * 30, f"{pushover.url}/1/", 5), message("pushover", USER_KEY))
    assert not bad_token.value.recoverable and "application token is invalid" in bad_token.value.error
    assert "a" * 30 not in bad_token.value.error
    pushover.fail(500)
    with pytest.raises(NotifyError) as down:
        send(fresh(), message("pushover", USER_KEY))
    assert down.value.recoverable
    receipt = send(fresh(), message("pushover", USER_KEY)).receipt
    pushover.fail(503)
    with pytest.raises(NotifyError) as checking:
        run(fresh(), lambda n: n.check(receipt))
    assert checking.value.recoverable
