"""A fake Twilio: the Messages and Calls resources of the 2010-04-01 REST API, and Twilio's side of
the webhooks (a signed inbound SMS reply, a signed `<Gather>` callback), as Twilio does them.

REST: form-encoded POSTs with HTTP Basic auth (account SID : auth token); 201 with the resource
(`sid` SM... / CA..., `status: queued`, `num_segments`); errors as Twilio shapes them,
`{"code", "message", "more_info", "status"}`: 401/20003 for bad credentials, 400/21211 for a
`To` that is not a valid phone number (or one marked `invalid`), 400/21610 for a recipient who
replied STOP (`unsubscribe`), 400/21602 without a body, 400/21205 without `Url`/`Twiml`,
400/21603 without `From`; `fail(status, times)` answers the next requests with that status.

Webhooks (`twilio_webhooks.py`): `reply_sms` posts what Twilio posts to a number's messaging
webhook, `press` what a `<Gather>` posts to its action URL, each signed as Twilio signs them.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakenotify.twilio_webhooks import FROM_NUMBER, TwilioWebhooks, signature, twiml_message, twiml_said
from tests.harness import ThreadServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-0123456789abcd"
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_TWO = set("^{}\\[~]|€\f")
_ERRORS = {
    20003: (401, "Authenticate"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21205: (400, "Url parameter is required."),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
}
_BY_STATUS = {429: 20429, 500: 20500, 503: 20503, 401: 20003}


def segments(body: str) -> int:
    if all(c in _GSM or c in _GSM_TWO for c in body):
        septets = sum(2 if c in _GSM_TWO else 1 for c in body)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


@dataclass
class Message:
    sid: str
    to: str
    from_: str
    body: str
    segments: int
    at: float


@dataclass
class Call:
    sid: str
    to: str
    from_: str
    twiml: str
    at: float
    said: list[str] = field(default_factory=list)  # every <Say>, in order
    gather_url: str | None = None  # the first <Gather>'s action


@dataclass
class Refusal:
    resource: str
    form: dict[str, str]
    status: int
    code: int


class FakeTwilio(TwilioWebhooks):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.messages: list[Message] = []
        self.calls: list[Call] = []
        self.refusals: list[Refusal] = []
        self.failures: list[int] = []
        self.bad: dict[str, int] = {}  # number -> error code (21211 invalid, 21610 unsubscribed)
        base = "/2010-04-01/Accounts/{sid}"
        self.server = ThreadServer(
            Starlette(
                routes=[
                    Route(f"{base}/Messages.json", self._messages, methods=["POST"]),
                    Route(f"{base}/Calls.json", self._calls, methods=["POST"]),
                ]
            )
        )

    @property
    def url(self) -> str:
        return self.server.url

    def settings(self) -> dict[str, str]:
        """The bot's settings for this fake (lower-case: Settings keyword arguments)."""
        return {
            "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token,
            "twilio_from_number": FROM_NUMBER,
            "twilio_api_url": self.url,
        }

    def invalid(self, number: str) -> None:
        self.bad[number] = 21211

    def unsubscribe(self, number: str) -> None:
        self.bad[number] = 21610

    def fail(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.failures += [status] * times

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[Message]:
        with self.lock:
            if not self.changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} SMS, Twilio got {len(self.messages)}")
            return list(self.messages)

    def wait_for_calls(self, count: int = 1, timeout: float = 10.0) -> list[Call]:
        with self.lock:
            if not self.changed.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"expected {count} call(s), Twilio got {len(self.calls)}")
            return list(self.calls)

    def wait_for_refusals(self, count: int = 1, timeout: float = 10.0) -> list[Refusal]:
        with self.lock:
            if not self.changed.wait_for(lambda: len(self.refusals) >= count, timeout):
                raise AssertionError(f"expected {count} refusal(s), Twilio made {len(self.refusals)}")
            return list(self.refusals)

    # -- the REST API --------------------------------------------------------------------------

    def _error(
        self, resource: str, form: dict[str, str], code: int, status: int | None = None
    ) -> JSONResponse:
        default_status, text = _ERRORS.get(code, (status or 400, "Error"))
        status = status or default_status
        with self.lock:
            self.refusals.append(Refusal(resource, form, status, code))
            self.changed.notify_all()
        body = {
            "code": code,
            "message": text.format(to=form.get("To", "")),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return JSONResponse(body, status_code=status)

    async def _checked(self, request: Request, resource: str) -> dict[str, str] | JSONResponse:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return self._error(resource, form, 20003)
        if request.path_params["sid"] != self.account_sid:
            return self._error(resource, form, 20003)
        with self.lock:
            forced = self.failures.pop(0) if self.failures else None
        if forced is not None:
            return self._error(resource, form, _BY_STATUS.get(forced, 20500), forced)
        if not form.get("From"):
            return self._error(resource, form, 21603)
        to = form.get("To", "")
        if not _E164.fullmatch(to) or self.bad.get(to) == 21211:
            return self._error(resource, form, 21211)
        return form

    def _resource(self, prefix: str, form: dict[str, str], **extra: Any) -> dict[str, Any]:
        sid = prefix + secrets.token_hex(16)
        kind = "Messages" if prefix == "SM" else "Calls"
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form["From"],
            "status": "queued",
            "date_created": formatdate(usegmt=True),
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/{kind}/{sid}.json",
            **extra,
        }

    async def _messages(self, request: Request) -> JSONResponse:
        form = await self._checked(request, "Messages")
        if isinstance(form, JSONResponse):
            return form
        if self.bad.get(form["To"]) == 21610:
            return self._error("Messages", form, 21610)
        body = form.get("Body", "")
        if not body:
            return self._error("Messages", form, 21602)
        count = segments(body)
        resource = self._resource("SM", form, body=body, num_segments=str(count), direction="outbound-api")
        with self.lock:
            self.messages.append(Message(resource["sid"], form["To"], form["From"], body, count, time.time()))
            self.changed.notify_all()
        return JSONResponse(resource, status_code=201)

    async def _calls(self, request: Request) -> JSONResponse:
        form = await self._checked(request, "Calls")
        if isinstance(form, JSONResponse):
            return form
        twiml = form.get("Twiml", "")
        if not twiml and not form.get("Url"):
            return self._error("Calls", form, 21205)
        resource = self._resource("CA", form, direction="outbound-api")
        call = Call(resource["sid"], form["To"], form["From"], twiml, time.time())
        if twiml:
            root = ET.fromstring(twiml)  # a parse failure is a bug in the bot: let the test see it
            call.said = [say.text or "" for say in root.iter("Say")]
            gather = root.find("Gather")
            call.gather_url = gather.get("action") if gather is not None else None
        with self.lock:
            self.calls.append(call)
            self.changed.notify_all()
        return JSONResponse(resource, status_code=201)

    def __enter__(self) -> FakeTwilio:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)


__all__ = [
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "FROM_NUMBER",
    "FakeTwilio",
    "signature",
    "twiml_message",
    "twiml_said",
]
