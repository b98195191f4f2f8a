"""Twilio: pages by SMS and by voice call, and the webhooks that bring the answers back.

Outbound (REST API 2010-04-01, form-encoded, HTTP Basic auth with the account SID and auth token):
  * SMS: `POST {TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Messages.json` with `To`, `From`, `Body`
    (the text of `bot/core/sms_text.py`: one segment when the title allows);
  * voice: `POST .../Calls.json` with `To`, `From` and inline `Twiml` (the call reads the incident
    and gathers one key, sent to `PUBLIC_URL/webhooks/twilio/voice?page=<ack token>`). Inline TwiML
    means the call works even when Twilio cannot reach the bot; only the key needs the webhook.
Twilio's errors are JSON (`{"code": 21211, "message": ..., "more_info": ..., "status": 400}`): a 4xx
(an invalid number 21211, an unsubscribed recipient 21610, refused credentials 20003) is final and
said in the channel, with the number shortened to its last digits; 429, 5xx and timeouts are
retried inside the rule's window. Twilio's REST API has no idempotency key: a request whose answer
was lost is sent again (a page seen twice beats a page lost).

Inbound: `X-Twilio-Signature` is checked with twilio's own `RequestValidator` (HMAC-SHA1 of the URL
Twilio was given, `PUBLIC_URL` + path + query, and the sorted form fields, keyed by the auth token).
Answers are TwiML built with twilio's `MessagingResponse` and `VoiceResponse`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import quote

import httpx
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from bot.core.notify_rules import E164
from bot.core.phone_replies import VoiceScript, call_script, call_script_for_test_page
from bot.core.sms_text import page_sms, sms_for_test_page
from bot.integrations.http_client import async_client
from bot.notify.phone import InboundKey, InboundSms
from bot.notify.port import NotifyError, Outgoing, Sent, http_error, network_error, retry_after

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
VOICE_PATH = "/webhooks/twilio/voice"
SMS_PATH = "/webhooks/twilio/sms"
GATHER_SECONDS = 8


class TwilioConfig:
    """The account and where its API is; `repr` never shows the auth token."""

    def __init__(self, account_sid: str, auth_token: str, from_number: str, api_url: str) -> None:
        if not _ACCOUNT_SID.fullmatch(account_sid):
            raise ValueError("TWILIO_ACCOUNT_SID must be the account SID: AC followed by 32 hex digits")
        if not E164.fullmatch(from_number):
            raise ValueError('TWILIO_FROM_NUMBER must be an E.164 number, like "+14155550100"')
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.api_url = api_url.rstrip("/")

    def __repr__(self) -> str:
        return f"TwilioConfig({self.account_sid}, from {self.from_number}, {self.api_url})"

    def resource(self, name: str) -> str:
        return f"{self.api_url}/2010-04-01/Accounts/{self.account_sid}/{name}.json"


def last_digits(number: str) -> str:
    """A phone number as said in a channel: its last four digits."""
    return f"…{number[-4:]}" if len(number) > 4 else number


class _TwilioNotifier:
    method = ""
    resource = ""

    def __init__(self, config: TwilioConfig, public_url: str | None, timeout: float) -> None:
        self.config = config
        self.public_url = (public_url or "").rstrip("/")
        self.client = async_client(timeout, follow_redirects=False)

    def form(self, message: Outgoing) -> dict[str, str]:
        raise NotImplementedError

    async def send(self, message: Outgoing) -> Sent:
        config = self.config
        try:
            response = await self.client.post(
                config.resource(self.resource),
                data={"To": message.address, "From": config.from_number, **self.form(message)},
                auth=(config.account_sid, config.auth_token),
                headers={"User-Agent": "incidentbot"},
            )
        except httpx.TransportError as exc:
            raise network_error(self.method, exc) from exc
        if response.status_code >= 300:
            detail = _error(response).replace(message.address, last_digits(message.address))
            raise http_error(
                self.method, response.status_code, detail, retry_after(response.headers.get("retry-after"))
            )
        try:
            sid = str(response.json().get("sid", ""))
        except (ValueError, AttributeError):
            sid = ""
        what = "the SMS" if self.method == "sms" else "the call"
        return Sent(sid, f"Twilio accepted {what} ({sid})" if sid else f"Twilio accepted {what}")

    async def aclose(self) -> None:
        await self.client.aclose()


class TwilioSmsNotifier(_TwilioNotifier):
    method = "sms"
    resource = "Messages"

    def form(self, message: Outgoing) -> dict[str, str]:
        if message.incident_id is None:
            return {"Body": sms_for_test_page(message.person, self.method, message.ack_url)}
        code = message.incident_id if message.other_open_pages else None
        text = page_sms(
            message.incident_id, message.severity, message.title, code=code, replies=bool(self.public_url)
        )
        return {"Body": text}


class TwilioVoiceNotifier(_TwilioNotifier):
    method = "voice"
    resource = "Calls"

    def form(self, message: Outgoing) -> dict[str, str]:
        gather = None
        if self.public_url and message.ack_token:
            gather = f"{self.public_url}{VOICE_PATH}?page={quote(message.ack_token, safe='')}"
        if message.incident_id is None:
            script = call_script_for_test_page(message.person, gather)
        else:
            script = call_script(message.incident_id, message.severity, message.title, gather)
        return {"Twiml": voice_twiml(script)}


def voice_twiml(script: VoiceScript) -> str:
    response = VoiceResponse()
    if script.gather_url:
        for said in (f"{script.intro} {script.prompt}", script.prompt):
            gather = Gather(
                num_digits=1,
                action=script.gather_url,
                method="POST",
                timeout=GATHER_SECONDS,
                action_on_empty_result=False,
            )
            gather.say(said)
            response.append(gather)
    else:
        response.say(script.intro)
    if script.goodbye:
        response.say(script.goodbye)
    response.hangup()
    return str(response)


def _error(response: httpx.Response) -> str:
    """Twilio answers errors as {"code": 21211, "message": "...", "more_info": ..., "status": 400}."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict) and data.get("message"):
        code = data.get("code")
        return str(data["message"]).rstrip(". ") + (f" (Twilio error {code})" if code else "")
    return ""


class _Params(dict[str, list[str]]):
    """Form fields as twilio's validator reads a multi-valued form (its `getlist`)."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


class TwilioInbound:
    """Twilio's webhooks: SMS replies (`/webhooks/twilio/sms`) and pressed keys (`.../voice`)."""

    name = "twilio"
    media_type = "application/xml"

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None

    def configured(self) -> bool:
        return self._validator is not None

    def authentic(self, url: str, form: Sequence[tuple[str, str]], headers: Mapping[str, str]) -> bool:
        signature = headers.get("x-twilio-signature", "")
        if self._validator is None or not signature or not signature.isascii():
            return False
        params = _Params()
        for name, value in form:
            params.setdefault(name, []).append(value)
        try:
            return bool(self._validator.validate(url, params, signature))
        except (ValueError, TypeError, UnicodeError):
            return False

    def sms(self, form: Sequence[tuple[str, str]]) -> InboundSms | None:
        fields = dict(form)
        sender, sid = fields.get("From", ""), fields.get("MessageSid") or fields.get("SmsSid", "")
        return InboundSms(sender, fields.get("Body", ""), sid) if sender and sid else None

    def pressed(self, form: Sequence[tuple[str, str]]) -> InboundKey | None:
        fields = dict(form)
        call = fields.get("CallSid", "")
        return InboundKey(fields.get("Digits", ""), call) if call else None

    def message(self, text: str | None) -> str:
        response = MessagingResponse()
        if text:
            response.message(text)
        return str(response)

    def voice(self, script: VoiceScript) -> str:
        return voice_twiml(script)


__all__ = [
    "NotifyError",
    "TwilioConfig",
    "TwilioInbound",
    "TwilioSmsNotifier",
    "TwilioVoiceNotifier",
    "voice_twiml",
]
