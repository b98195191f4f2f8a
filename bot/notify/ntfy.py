"""ntfy (self-hostable push): one JSON publish per notification.

`POST <server>/` with `{"topic", "title", "message", "priority", "tags", "click", "actions"}`
(ntfy's "publish as JSON": to the server's root URL, never the topic URL). A person's `ntfy:` is a
topic on NTFY_URL, or the full https URL of a topic on another server; NTFY_TOKEN is sent as a
bearer token to NTFY_URL's server only, never to a server named in people.yaml.

Priority: 5 (max) for SEV1, 4 (high) for SEV2, 3 (default) for SEV3. Buttons: "Acknowledge", an
`http` action that POSTs to the page's ack link, and "Open", a `view` action.

Delivery is at least once: ntfy has no idempotency key, so a publish whose answer was lost (a
timeout, a crash mid-call) is sent again, and the person may see it twice. A page seen twice is
better than a page lost.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.core.text import truncate
from bot.integrations.http_client import async_client
from bot.notify.port import NotifyError, Outgoing, Sent, http_error, network_error, retry_after

PRIORITY = {"SEV1": 5, "SEV2": 4, "SEV3": 3}
MESSAGE_MAX = 3000  # ntfy turns messages over 4,096 bytes into attachments: keep it a notification


class NtfyNotifier:
    method = "ntfy"

    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.client = async_client(timeout)

    def target(self, address: str) -> tuple[str, str, bool]:
        """(server root URL, topic, whether our token goes there)."""
        if address.startswith(("https://", "http://")):
            parts = urlsplit(address)
            root = f"{parts.scheme}://{parts.netloc}"
            return root, parts.path.strip("/"), root == self.base_url
        return self.base_url, address, True

    def body(self, message: Outgoing, topic: str) -> dict[str, Any]:
        actions: list[dict[str, Any]] = []
        if message.ack_url:
            ack = {"action": "http", "label": "Acknowledge", "url": message.ack_url, "method": "POST"}
            actions.append({**ack, "clear": True})
        if message.open_url:
            actions.append({"action": "view", "label": "Open", "url": message.open_url})
        body: dict[str, Any] = {
            "topic": topic,
            "title": message.subject,
            "message": truncate(message.text, MESSAGE_MAX),
            "priority": PRIORITY.get(message.severity, 3),
            "tags": ["test_tube"] if message.test else ["rotating_light"],
            "actions": actions,
        }
        if message.open_url:
            body["click"] = message.open_url
        return body

    async def send(self, message: Outgoing) -> Sent:
        root, topic, ours = self.target(message.address)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token and ours else {}
        try:
            response = await self.client.post(f"{root}/", json=self.body(message, topic), headers=headers)
        except httpx.TransportError as exc:
            raise network_error(self.method, exc) from exc
        if response.status_code >= 300:
            wait = retry_after(response.headers.get("retry-after"))
            raise http_error(self.method, response.status_code, _error(response), wait)
        try:
            receipt = str(response.json().get("id", ""))
        except ValueError:
            receipt = ""
        return Sent(receipt, f"ntfy accepted it (message {receipt})" if receipt else "ntfy accepted it")

    async def aclose(self) -> None:
        await self.client.aclose()


def _error(response: httpx.Response) -> str:
    """ntfy answers errors as {"code": 40301, "http": 403, "error": "forbidden", "link": ...}."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict) and data.get("error"):
        return f"{data['error']} (code {data.get('code', '?')})"
    return ""


__all__ = ["PRIORITY", "NotifyError", "NtfyNotifier"]
