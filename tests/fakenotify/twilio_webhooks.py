"""Twilio's side of the webhooks, for the fake Twilio: a signed inbound SMS reply and a signed
`<Gather>` callback, as Twilio sends them to the bot.

`X-Twilio-Signature` is computed here by hand from Twilio's documented rule (HMAC-SHA1 of the URL
Twilio was given followed by the POST fields sorted by name, each name then value, keyed by the
auth token, base64), not with twilio's library: the bot checks with the library, so the two must
agree independently. The URL is the public one (PUBLIC_URL); the request goes to the bot's real
address, as through a reverse proxy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from tests.fakenotify.twilio import Call

FROM_NUMBER = "+15005550006"


def signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature as Twilio documents it."""
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


class TwilioWebhooks:
    """Mixed into FakeTwilio: what Twilio posts to the bot."""

    account_sid: str
    auth_token: str

    def _post(
        self,
        bot_url: str,
        public: str,
        params: list[tuple[str, str]],
        sign: str | None,
        path: str | None = None,
    ) -> httpx.Response:
        """Signed over `public`; sent to the bot (at `path` instead, to test a request moved)."""
        parts = urlsplit(public if path is None else f"{public.split('/webhooks')[0]}{path}")
        target = bot_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            "X-Twilio-Signature": sign if sign is not None else signature(self.auth_token, public, params),
        }
        return httpx.post(target, data=dict(params), headers=headers, timeout=10)

    def reply_sms(
        self,
        bot_url: str,
        webhook: str,
        from_: str,
        body: str,
        *,
        sign: str | None = None,
        sid: str | None = None,
        path: str | None = None,
    ) -> httpx.Response:
        """Someone texts our number: Twilio posts to its messaging webhook (`webhook`, the public
        URL configured for the number) and sends back the `<Message>` of the TwiML answer. The
        same `sid` again is the same request again (a retry, or a replay)."""
        sid = sid or "SM" + secrets.token_hex(16)
        params = [
            ("ToCountry", "US"),
            ("ToState", "CA"),
            ("SmsMessageSid", sid),
            ("NumMedia", "0"),
            ("ToCity", ""),
            ("FromZip", ""),
            ("SmsSid", sid),
            ("FromState", ""),
            ("SmsStatus", "received"),
            ("FromCity", ""),
            ("Body", body),
            ("FromCountry", "US"),
            ("To", FROM_NUMBER),
            ("ToZip", ""),
            ("NumSegments", "1"),
            ("MessageSid", sid),
            ("AccountSid", self.account_sid),
            ("From", from_),
            ("ApiVersion", "2010-04-01"),
        ]
        return self._post(bot_url, webhook, params, sign, path)

    def press(self, bot_url: str, call: Call, digits: str, *, sign: str | None = None) -> httpx.Response:
        """The person pressed `digits` during `call`: Twilio posts to the `<Gather>`'s action."""
        assert call.gather_url, "this call gathers no key"
        params = [
            ("AccountSid", self.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", call.sid),
            ("CallStatus", "in-progress"),
            ("Called", call.to),
            ("Caller", call.from_),
            ("Digits", digits),
            ("Direction", "outbound-api"),
            ("FinishedOnKey", ""),
            ("From", call.from_),
            ("To", call.to),
            ("msg", "Gather End"),
        ]
        return self._post(bot_url, call.gather_url, params, sign)


def twiml_message(document: str) -> str | None:
    """The SMS a TwiML answer sends back (None: none)."""
    found = ET.fromstring(document).find("Message")
    return None if found is None else (found.text or "")


def twiml_said(document: str) -> list[str]:
    return [say.text or "" for say in ET.fromstring(document).iter("Say")]
