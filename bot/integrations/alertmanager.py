"""Alertmanager API v2 (httpx): create and expire silences for an incident's alert group, and list
the group's alerts that are still active (silenced and inhibited ones included)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.integrations.errors import DeliveryError
from bot.integrations.http_client import async_client


class AlertmanagerAPI:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = async_client(timeout, base_url=self.base_url)

    def silence_link(self, silence_id: str) -> str:
        return f"{self.base_url}/#/silences/{silence_id}"

    async def create_silence(
        self, labels: dict[str, str], start: datetime, duration: timedelta, created_by: str, comment: str
    ) -> str:
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(labels.items())
            ],
            "startsAt": start.isoformat(),
            "endsAt": (start + duration).isoformat(),
            "createdBy": created_by,
            "comment": comment,
        }
        data = await self._call("POST", "/api/v2/silences", json=body)
        return str(data["silenceID"])

    async def find_silence(self, comment: str) -> str | None:
        """An active silence we made earlier with this exact comment (after an ambiguous failure)."""
        data = await self._call("GET", "/api/v2/silences")
        for silence in data or []:
            if silence.get("comment") == comment and silence.get("status", {}).get("state") != "expired":
                return str(silence["id"])
        return None

    async def expire_silence(self, silence_id: str) -> None:
        try:
            await self._call("DELETE", f"/api/v2/silence/{silence_id}")
        except DeliveryError as exc:
            # Already expired or gone: the goal (no active silence) is met. Alertmanager up to 0.26
            # answers an unknown id with a 500 "silence not found": gone too, not an outage.
            if exc.recoverable and "silence not found" not in exc.error:
                raise

    async def active_alerts(self, labels: dict[str, str]) -> set[str]:
        """Fingerprints of the alerts matching `labels` that have not ended, silenced and inhibited
        ones included (Alertmanager lists no alert whose `endsAt` has passed)."""
        params = [("filter", matcher(k, v)) for k, v in sorted(labels.items())]
        params += [("silenced", "true"), ("inhibited", "true"), ("active", "true")]
        data = await self._call("GET", "/api/v2/alerts", params=params)
        try:
            return {str(alert["fingerprint"]) for alert in data}
        except (TypeError, KeyError) as exc:
            raise DeliveryError(
                "alertmanager GET /api/v2/alerts", "unexpected answer", recoverable=False
            ) from exc

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        what = f"alertmanager {method} {path}"
        try:
            response = await self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                what, f"network: {type(exc).__name__}", recoverable=True, maybe_done=True, unfinished=True
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(
                what, f"http {response.status_code}: {response.text[:200]}", recoverable=True, maybe_done=True
            )
        if response.status_code >= 400:
            raise DeliveryError(
                what, f"http {response.status_code}: {response.text[:200]}", recoverable=False
            )
        try:
            return response.json() if response.content else None
        except ValueError as exc:
            raise DeliveryError(what, "the answer is not JSON", recoverable=False) from exc

    async def aclose(self) -> None:
        await self.client.aclose()


def matcher(name: str, value: str) -> str:
    """`name="value"` as Alertmanager's `filter` parameter parses it (quotes and backslashes escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"'
