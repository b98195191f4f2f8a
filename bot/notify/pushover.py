"""Pushover: push notifications, with emergency priority for SEV1 and its receipt followed.

`POST {PUSHOVER_API_URL}messages.json` (form-encoded) with the app token, the person's user key,
`title`, `message`, `priority` and the acknowledge link as the supplementary URL. Priority: SEV1 is
emergency (2: repeated every `RETRY` until acknowledged in the app, for `EXPIRE` at most), SEV2 high
(1: bypasses quiet hours), SEV3 and test pages normal (0).

An emergency page answers with a `receipt`, followed through `GET receipts/{receipt}.json?token=`
after `RECEIPT_EVERY`, then less often up to `RECEIPT_AT_MOST` (Pushover asks for no more than one
request per receipt per 5 seconds; hundreds of open pages must not cost hundreds of requests a
second): acknowledged in
the app acknowledges the incident as the person paged. When the incident is acknowledged elsewhere
(Slack, an SMS reply) `POST receipts/{receipt}/cancel.json` stops the phone from ringing on.

Errors are `{"status": 0, "errors": [...], "request": ...}` with a 4xx (an invalid user key, an
unknown app token: final, said in the channel) or a 5xx (retried with the outbox's backoff, 4 s,
8 s, ..., inside the rule's window). The app token travels in the form body, never in a URL
we log; the receipt lookup has it in its query string, as Pushover's API wants, and the bot's log
redaction knows it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from bot.core.text import truncate
from bot.integrations.http_client import async_client
from bot.notify.port import (
    Follow,
    NotifyError,
    Outgoing,
    ReceiptState,
    Sent,
    http_error,
    network_error,
    retry_after,
)

PRIORITY = {"SEV1": 2, "SEV2": 1, "SEV3": 0}
EMERGENCY = 2
RETRY = 60  # seconds between Pushover's repeats of an unacknowledged emergency page (30 at least)
EXPIRE = 3600  # seconds it keeps repeating (10800 at most)
RECEIPT_EVERY = timedelta(seconds=5)  # Pushover: "no faster than once every 5 seconds"
RECEIPT_AT_MOST = timedelta(seconds=30)  # then less often: Pushover repeats the page every RETRY
TITLE_MAX, MESSAGE_MAX, URL_MAX = 250, 1024, 512


class PushoverNotifier:
    method = "pushover"

    def __init__(self, app_token: str, api_url: str, timeout: float) -> None:
        self.token = app_token
        self.api_url = api_url.rstrip("/") + "/"
        self.client = async_client(timeout, follow_redirects=False)

    def __repr__(self) -> str:
        return f"PushoverNotifier({self.api_url})"

    def form(self, message: Outgoing) -> dict[str, Any]:
        priority = 0 if message.test else PRIORITY.get(message.severity, 0)
        subject = ("TEST: " if message.test else "") + message.subject
        form: dict[str, Any] = {
            "token": self.token,
            "user": message.address,
            "title": truncate(subject, TITLE_MAX),
            "message": truncate(message.text, MESSAGE_MAX),
            "priority": priority,
        }
        if priority == EMERGENCY:
            form.update(retry=RETRY, expire=EXPIRE)
        link = message.ack_url or message.open_url
        if link and len(link) <= URL_MAX:
            form.update(url=link, url_title="Acknowledge" if message.ack_url else "Open the incident")
        return form

    async def send(self, message: Outgoing) -> Sent:
        form = self.form(message)
        data = await self._call("POST", "messages.json", data=form)
        receipt = str(data.get("receipt") or "")
        if receipt:
            answer = f"Pushover accepted it (emergency, receipt {receipt})"
            return Sent(receipt, answer, Follow(RECEIPT_EVERY, timedelta(seconds=EXPIRE), RECEIPT_AT_MOST))
        request = str(data.get("request") or "")
        answer = f"Pushover accepted it (request {request})" if request else "Pushover accepted it"
        return Sent(request, answer)

    async def check(self, receipt: str) -> ReceiptState:
        try:
            data = await self._call("GET", f"receipts/{receipt}.json", params={"token": self.token})
        except NotifyError as exc:
            if exc.recoverable:
                raise
            return ReceiptState(False, True, f"Pushover no longer knows the receipt ({exc.error})")
        if data.get("acknowledged") == 1:
            device = str(data.get("acknowledged_by_device") or "")
            return ReceiptState(True, True, "acknowledged in Pushover" + (f" on {device}" if device else ""))
        if data.get("expired") == 1:
            return ReceiptState(False, True, "the emergency page expired unacknowledged")
        return ReceiptState(False, False, "not acknowledged yet")

    async def cancel(self, receipt: str) -> None:
        try:
            await self._call("POST", f"receipts/{receipt}/cancel.json", data={"token": self.token})
        except NotifyError as exc:
            if exc.recoverable:
                raise
            # Already acknowledged or expired there: nothing is ringing any more.

    async def _call(self, verb: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            response = await self.client.request(verb, self.api_url + path, **kw)
        except httpx.TransportError as exc:
            raise network_error(self.method, exc) from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        if response.status_code >= 300 or data.get("status") != 1:
            status = response.status_code if response.status_code >= 300 else 400
            wait = retry_after(response.headers.get("retry-after"))
            raise http_error(self.method, status, _error(data, response), wait)
        return data

    async def aclose(self) -> None:
        await self.client.aclose()


def _error(data: dict[str, Any], response: httpx.Response) -> str:
    """Pushover's `errors` list ("user identifier is invalid"), or the start of the body."""
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)[:200]
    return response.text[:200] if not data else ""
