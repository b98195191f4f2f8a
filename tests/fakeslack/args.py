"""Argument access for handlers.

Slack accepts the same arguments as form fields, query parameters or JSON, so values arrive as strings
("true", "1", "20") or as real JSON types; the helpers here hide that difference. Structured fields
(``blocks``, ``metadata``, ``view``...) are JSON strings in form bodies and are decoded up front so that
recorded calls look the same whichever transport the client used.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from .model import SlackError

JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "files", "user_auth_blocks")


def normalize_args(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Decode JSON-string structured fields; leave undecodable ones as strings for handlers to reject."""
    args = dict(raw)
    for key in JSON_FIELDS:
        value = args.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args


class Args:
    """Typed, Slack-lenient access to one call's arguments."""

    def __init__(self, data: Mapping[str, Any], *, base_url: str = "") -> None:
        self.data = dict(data)
        self.base_url = base_url  # the server's own root URL, for URLs the fake hands out

    def has(self, key: str) -> bool:
        """True if the argument was sent at all (even empty)."""
        return key in self.data and self.data[key] is not None

    def text(self, key: str, default: str = "") -> str:
        """The argument as a string ('' when missing)."""
        value = self.data.get(key)
        return default if value is None else str(value)

    def require(self, key: str, error: str) -> str:
        """A non-empty string argument, or the given Slack error."""
        value = self.text(key).strip()
        if not value:
            raise SlackError(error)
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        """Booleans as Slack reads them: true/1 are true (slack_sdk sends "1"/"0" in form bodies)."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes")

    def integer(self, key: str, default: int) -> int:
        """An integer argument; malformed values are an ``invalid_arguments`` error like Slack's."""
        value = self.data.get(key)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None

    def csv(self, key: str) -> list[str]:
        """A comma-separated list argument (``users=U1,U2``), also accepting a JSON list."""
        value = self.data.get(key)
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]

    def structured(self, key: str, error: str) -> Any:
        """A structured argument (decoded by :func:`normalize_args`); still a string means bad JSON."""
        value = self.data.get(key)
        if isinstance(value, str):
            if not value.strip():
                return None
            raise SlackError(error)
        return value
