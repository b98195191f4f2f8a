"""A webhook receiver that checks incidentbot's signature as a real receiver would, and drops
repeats by `Idempotency-Key`."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.harness import ThreadServer


@dataclass
class Delivery:
    body: dict[str, Any]
    headers: dict[str, str]
    signed: bool  # the signature matched SECRET_KEY over "<timestamp>.<body>"
    status: int
    at: float = 0.0  # time.time() when it arrived


class FakeWebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.deliveries: list[Delivery] = []
        self.answers: list[int] = []  # statuses to answer next (default 200)
        self.server = ThreadServer(Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])]))

    def url(self, path: str = "page") -> str:
        return f"{self.server.url}/{path}"

    def answer(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.answers += [status] * times

    def unique(self) -> dict[str, dict[str, Any]]:
        """Accepted deliveries by Idempotency-Key (what a receiver that drops repeats keeps)."""
        with self.lock:
            return {d.headers.get("idempotency-key", ""): d.body for d in self.deliveries if d.status == 200}

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Delivery]:
        with self.lock:
            ok = self.changed.wait_for(
                lambda: sum(d.status == 200 for d in self.deliveries) >= count, timeout
            )
            if not ok:
                raise AssertionError(f"expected {count} webhook deliveries, saw {len(self.deliveries)}")
            return list(self.deliveries)

    def _accepted(self) -> int:
        return sum(d.status == 200 for d in self.deliveries)

    async def _receive(self, request: Request) -> JSONResponse:
        raw = await request.body()
        timestamp = request.headers.get("x-incidentbot-timestamp", "")
        expected = (
            "sha256="
            + hmac.new(self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        )
        signed = hmac.compare_digest(expected, request.headers.get("x-incidentbot-signature", ""))
        with self.lock:
            status = self.answers.pop(0) if self.answers else (200 if signed else 401)
            body = json.loads(raw) if raw else {}
            self.deliveries.append(Delivery(body, dict(request.headers), signed, status, time.time()))
            self.changed.notify_all()
        return JSONResponse({"ok": status == 200}, status_code=status)

    def __enter__(self) -> FakeWebhookReceiver:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)
