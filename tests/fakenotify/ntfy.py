"""A fake ntfy server: JSON publishing at the root URL, as ntfy answers it.

Success: the message as ntfy echoes it (`{"id", "time", "expires", "event": "message", "topic", ...}`).
Errors as ntfy shapes them: `{"code": 40301, "http": 403, "error": "forbidden", "link": ...}`.
`protect(topic, token)` makes a topic need `Authorization: Bearer <token>` (401 with a wrong one, 403
without); `fail(status, times=n)` answers the next n publishes with that status (429 with
Retry-After); an invalid topic is a 400.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.harness import ThreadServer

ID_CHARS = string.ascii_letters + string.digits
_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_ERRORS = {
    400: (40001, "invalid request"),
    401: (40101, "unauthorized"),
    403: (40301, "forbidden"),
    404: (40401, "page not found"),
    429: (42901, "limit reached: too many requests"),
    500: (50001, "internal server error"),
    503: (50301, "service unavailable"),
}


@dataclass
class Publish:
    body: dict[str, Any]
    authorization: str | None
    status: int
    at: float  # time.time() when it arrived


class FakeNtfy:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.publishes: list[Publish] = []
        self.protected: dict[str, str] = {}
        self.failures: list[int] = []
        self.server = ThreadServer(Starlette(routes=[Route("/", self._publish, methods=["POST", "PUT"])]))

    @property
    def url(self) -> str:
        return self.server.url

    def protect(self, topic: str, token: str) -> None:
        self.protected[topic] = token

    def fail(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.failures += [status] * times

    def accepted(self, topic: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                p.body for p in self.publishes if p.status == 200 and topic in (None, p.body.get("topic"))
            ]

    def wait_for(
        self, count: int = 1, timeout: float = 10.0, topic: str | None = None
    ) -> list[dict[str, Any]]:
        def enough() -> bool:
            return (
                len([p for p in self.publishes if p.status == 200 and topic in (None, p.body.get("topic"))])
                >= count
            )

        with self.lock:
            if not self.changed.wait_for(enough, timeout):
                raise AssertionError(f"expected {count} ntfy publish(es), saw {len(self.publishes)}")
        return self.accepted(topic)

    def _error(self, status: int, body: dict[str, Any], auth: str | None) -> JSONResponse:
        code, text = _ERRORS.get(status, (status * 100 + 1, "error"))
        with self.lock:
            self.publishes.append(Publish(body, auth, status, time.time()))
            self.changed.notify_all()
        headers = {"Retry-After": "1"} if status == 429 else {}
        payload = {"code": code, "http": status, "error": text, "link": "https://ntfy.sh/docs/publish/"}
        return JSONResponse(payload, status_code=status, headers=headers)

    async def _publish(self, request: Request) -> JSONResponse:
        auth = request.headers.get("authorization")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._error(400, {}, auth)
        if not isinstance(body, dict) or not _TOPIC.fullmatch(str(body.get("topic", ""))):
            return self._error(400, body if isinstance(body, dict) else {}, auth)
        with self.lock:
            forced = self.failures.pop(0) if self.failures else None
        if forced is not None:
            return self._error(forced, body, auth)
        token = self.protected.get(body["topic"])
        if token is not None and auth != f"Bearer {token}":
            return self._error(401 if auth else 403, body, auth)
        now = int(time.time())
        message = {
            "id": "".join(secrets.choice(ID_CHARS) for _ in range(12)),  # as ntfy: 12 letters/digits
            "time": now,
            "expires": now + 43200,
            "event": "message",
            "topic": body["topic"],
            "message": body.get("message", "triggered"),
            **{k: body[k] for k in ("title", "priority", "tags", "click", "actions") if k in body},
        }
        with self.lock:
            self.publishes.append(Publish(body, auth, 200, time.time()))
            self.changed.notify_all()
        return JSONResponse(message)

    def __enter__(self) -> FakeNtfy:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)
