"""A fake Pushover: the Message API with its priority rules, and the Receipts API.

`POST /1/messages.json` (form-encoded): `token` must be the app token, `user` a registered user
key; `priority=2` (emergency) needs `retry` >= 30 and `expire` <= 10800 and answers a `receipt`.
Errors as Pushover shapes them: a 4xx with `{"<field>": "invalid", "errors": [...], "status": 0,
"request": ...}`. `GET /1/receipts/<r>.json?token=` answers Pushover's receipt fields
(`acknowledged`, `acknowledged_at`, `acknowledged_by`, `acknowledged_by_device`, `expired`,
`expires_at`, `last_delivered_at`, `called_back`, `called_back_at`); `POST /1/receipts/<r>/cancel.json`
stops the repeats. `acknowledge(receipt)` is the person tapping Acknowledge in the app,
`expire(receipt)` nobody doing so in time; `fail(status, times)` answers the next requests with
that status.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.harness import ThreadServer

APP_TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
USER_KEY = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"


@dataclass
class Push:
    form: dict[str, str]
    at: float
    receipt: str | None = None


@dataclass
class Receipt:
    user: str
    expires_at: int
    acknowledged_at: int = 0
    device: str = ""
    cancelled: bool = False
    polls: list[float] = field(default_factory=list)


class FakePushover:
    def __init__(self, users: tuple[str, ...] | None = (USER_KEY,), app_token: str = APP_TOKEN) -> None:
        self.users = set(users) if users is not None else None  # None: any well-formed user key
        self.app_token = app_token
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.pushes: list[Push] = []
        self.refused: list[tuple[dict[str, str], int, list[str]]] = []
        self.receipts: dict[str, Receipt] = {}
        self.failures: list[int] = []
        self.server = ThreadServer(
            Starlette(
                routes=[
                    Route("/1/messages.json", self._messages, methods=["POST"]),
                    Route("/1/receipts/{receipt}.json", self._receipt, methods=["GET"]),
                    Route("/1/receipts/{receipt}/cancel.json", self._cancel, methods=["POST"]),
                ]
            )
        )

    @property
    def url(self) -> str:
        return self.server.url

    def settings(self) -> dict[str, str]:
        return {"pushover_app_token": self.app_token, "pushover_api_url": f"{self.url}/1/"}

    def fail(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.failures += [status] * times

    def acknowledge(self, receipt: str, device: str = "alex-iphone") -> None:
        with self.lock:
            self.receipts[receipt].acknowledged_at = int(time.time())
            self.receipts[receipt].device = device

    def expire(self, receipt: str) -> None:
        """Nobody acknowledged within `expire` seconds: Pushover stops repeating it."""
        with self.lock:
            self.receipts[receipt].expires_at = int(time.time()) - 1

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Push]:
        with self.lock:
            if not self.changed.wait_for(lambda: len(self.pushes) >= count, timeout):
                raise AssertionError(f"expected {count} push(es), Pushover got {len(self.pushes)}")
            return list(self.pushes)

    def wait_until(self, predicate: Any, timeout: float = 10.0, what: str = "") -> None:
        with self.lock:
            if not self.changed.wait_for(predicate, timeout):
                raise AssertionError(f"Pushover: timed out waiting for {what or predicate}")

    def _answer(self, body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse({**body, "request": secrets.token_hex(16)[:32]}, status_code=status)

    def _refuse(self, form: dict[str, str], status: int, errors: list[str], **fields: str) -> JSONResponse:
        with self.lock:
            self.refused.append((form, status, errors))
            self.changed.notify_all()
        return self._answer({**fields, "errors": errors, "status": 0}, status)

    def _forced(self, form: dict[str, str]) -> JSONResponse | None:
        with self.lock:
            status = self.failures.pop(0) if self.failures else None
        if status is None:
            return None
        return self._refuse(form, status, [f"fake failure {status}"])

    async def _messages(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        forced = self._forced(form)
        if forced is not None:
            return forced
        if form.get("token") != self.app_token:
            return self._refuse(form, 400, ["application token is invalid"], token="invalid")
        user = form.get("user", "")
        known = re.fullmatch(r"[A-Za-z0-9]{30}", user) if self.users is None else user in self.users
        if not known:
            error = "user identifier is not a valid user, group, or subscribed user key"
            return self._refuse(form, 400, [error], user="invalid")
        problems = _message_problems(form)
        if problems:
            return self._refuse(form, 400, problems)
        receipt = None
        if form.get("priority") == "2":
            receipt = secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")[:30]
            expires = int(time.time()) + int(form["expire"])
            self.receipts[receipt] = Receipt(form["user"], expires)
        with self.lock:
            self.pushes.append(Push(form, time.time(), receipt))
            self.changed.notify_all()
        return self._answer({"status": 1, **({"receipt": receipt} if receipt else {})})

    async def _receipt(self, request: Request) -> JSONResponse:
        form = dict(request.query_params)
        forced = self._forced(form)
        if forced is not None:
            return forced
        if form.get("token") != self.app_token:
            return self._refuse(form, 400, ["application token is invalid"], token="invalid")
        receipt = self.receipts.get(request.path_params["receipt"])
        if receipt is None:
            return self._refuse(
                form, 404, ["receipt not found; may be invalid or expired"], receipt="not found"
            )
        now = int(time.time())
        with self.lock:
            receipt.polls.append(time.time())
            self.changed.notify_all()
        acknowledged = receipt.acknowledged_at > 0
        return self._answer(
            {
                "status": 1,
                "acknowledged": int(acknowledged),
                "acknowledged_at": receipt.acknowledged_at,
                "acknowledged_by": receipt.user if acknowledged else "",
                "acknowledged_by_device": receipt.device,
                "last_delivered_at": now,
                "expired": int(now >= receipt.expires_at or receipt.cancelled),
                "expires_at": receipt.expires_at,
                "called_back": 0,
                "called_back_at": 0,
            }
        )

    async def _cancel(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        forced = self._forced(form)
        if forced is not None:
            return forced
        if form.get("token") != self.app_token:
            return self._refuse(form, 400, ["application token is invalid"], token="invalid")
        receipt = self.receipts.get(request.path_params["receipt"])
        if receipt is None:
            return self._refuse(
                form, 404, ["receipt not found; may be invalid or expired"], receipt="not found"
            )
        with self.lock:
            receipt.cancelled = True
            self.changed.notify_all()
        return self._answer({"status": 1})

    def __enter__(self) -> FakePushover:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)


def _message_problems(form: dict[str, str]) -> list[str]:
    problems = []
    if not form.get("message"):
        problems.append("message cannot be blank")
    if len(form.get("message", "")) > 1024:
        problems.append("message is too long (1024 characters at most)")
    if len(form.get("title", "")) > 250:
        problems.append("title is too long (250 characters at most)")
    if len(form.get("url", "")) > 512:
        problems.append("url is too long (512 characters at most)")
    priority = form.get("priority", "0")
    if priority not in ("-2", "-1", "0", "1", "2"):
        problems.append("priority is invalid")
    if priority == "2":
        retry, expire = form.get("retry"), form.get("expire")
        if not retry:
            problems.append("retry must be supplied with priority=2")
        elif int(retry) < 30:
            problems.append("retry is too small (30 seconds at least)")
        if not expire:
            problems.append("expire must be supplied with priority=2")
        elif int(expire) > 10800:
            problems.append("expire is too large (10800 seconds at most)")
    return problems
