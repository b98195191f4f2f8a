"""SMS and voice vendors: what the bot needs of one, so that another vendor is one new adapter.

Outbound, a vendor gives two notifiers (methods `sms` and `voice`, each a `Provider` in the
registry). Inbound, it gives a `PhoneInbound`: how its webhooks prove they come from it, where a
reply's sender, text and pressed key are, and how to answer in its own markup. What a reply means
is no vendor's business: `bot/core/phone_replies.py` decides, `bot/service/phone_replies.py` acts,
and `bot/webhooks/phone.py` serves `/webhooks/<vendor>/sms` and `/webhooks/<vendor>/voice` for any
vendor. Twilio is `bot/notify/twilio.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.phone_replies import VoiceScript


@dataclass(frozen=True)
class InboundSms:
    sender: str  # the phone number it came from, E.164
    body: str
    key: str  # the vendor's id of the message: a replayed request is handled once


@dataclass(frozen=True)
class InboundKey:
    digits: str  # the key(s) pressed
    key: str  # the vendor's id of the call


class PhoneInbound(Protocol):
    """One vendor's webhooks. `form` is the request's form fields as (name, value) pairs."""

    name: str  # the URL segment: /webhooks/<name>/sms
    media_type: str  # of the answers

    def configured(self) -> bool:
        """Whether requests can be checked at all (the vendor's secret is set)."""
        ...

    def authentic(self, url: str, form: Sequence[tuple[str, str]], headers: Mapping[str, str]) -> bool:
        """Whether the vendor signed this request; `url`: the public URL it was sent to."""
        ...

    def sms(self, form: Sequence[tuple[str, str]]) -> InboundSms | None: ...

    def pressed(self, form: Sequence[tuple[str, str]]) -> InboundKey | None: ...

    def message(self, text: str | None) -> str:
        """The answer to an inbound SMS: `text` sent back as an SMS (None: no reply)."""
        ...

    def voice(self, script: VoiceScript) -> str:
        """The answer to a call's callback: what the call says and gathers next."""
        ...
