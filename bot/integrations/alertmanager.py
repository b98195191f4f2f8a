"""Alertmanager API v2 (httpx): create and expire silences for an incident's alert group."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.integrations.errors import DeliveryError


class AlertmanagerAPI:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

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
            # Already expired or gone: the goal (no active silence) is met.
            if exc.recoverable:
                raise

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        what = f"alertmanager {method} {path}"
        try:
            response = await self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                what, f"network: {type(exc).__name__}", recoverable=True, maybe_done=True, unfinished=True
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(what, f"http {response.status_code}", recoverable=True, maybe_done=True)
        if response.status_code >= 400:
            raise DeliveryError(
                what, f"http {response.status_code}: {response.text[:200]}", recoverable=False
            )
        return response.json() if response.content else None

    async def aclose(self) -> None:
        await self.client.aclose()
