"""Generic webhook: a signed JSON POST to the person's URL.

The body (documented for receivers):
```json
{"type": "page", "delivery_id": "incidentbot-n17", "incident": {"id": 42, "title": "...",
 "severity": "SEV1", "summary": "...", "url": "..."}, "person": "alex",
 "ack_url": "https://bot.example.com/ack/...", "test": false}
```
Headers: `X-Incidentbot-Timestamp: <unix seconds>`, `X-Incidentbot-Signature: sha256=<hex>` where
the HMAC-SHA256 key is SECRET_KEY and the message is `<timestamp>.<exact body bytes>`, and
`Idempotency-Key: <delivery_id>` (the same on every retry of one notification, so a receiver can
drop repeats). 2xx is success; 408, 429 and 5xx are retried; other answers are final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from bot.integrations.http_client import async_client
from bot.notify.port import Outgoing, Sent, http_error, network_error, retry_after


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by SECRET_KEY>`."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def payload(message: Outgoing) -> dict[str, Any]:
    return {
        "type": "test" if message.test else "page",
        "delivery_id": message.idempotency_key,
        "incident": None
        if message.incident_id is None
        else {
            "id": message.incident_id,
            "title": message.title,
            "severity": message.severity,
            "summary": message.summary,
            "url": message.open_url,
        },
        "person": message.person,
        "ack_url": message.ack_url,
        "test": message.test,
    }


class WebhookNotifier:
    method = "webhook"

    def __init__(self, secret: str, timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.clock = clock
        self.client = async_client(timeout, follow_redirects=False)

    async def send(self, message: Outgoing) -> Sent:
        body = json.dumps(payload(message), separators=(",", ":")).encode()
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "incidentbot",
            "X-Incidentbot-Timestamp": timestamp,
            "X-Incidentbot-Signature": sign(self.secret, timestamp, body),
            "Idempotency-Key": message.idempotency_key,
        }
        try:
            response = await self.client.post(message.address, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise network_error(self.method, exc) from exc
        if not 200 <= response.status_code < 300:
            wait = retry_after(response.headers.get("retry-after"))
            raise http_error(self.method, response.status_code, response.text[:200], wait)
        return Sent(message.idempotency_key, f"the webhook answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self.client.aclose()
