"""Slack-style cursor pagination (``limit`` + opaque ``cursor`` -> ``response_metadata.next_cursor``).

Bots that forget to follow ``next_cursor`` only break in big workspaces; paginating in the fake makes
that visible with a handful of channels and a small ``limit``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

from .args import Args
from .model import SlackError

T = TypeVar("T")


def encode_cursor(offset: int) -> str:
    """Opaque cursor for the item at ``offset`` (base64, like Slack's)."""
    return base64.b64encode(f"next:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """Offset from a cursor we issued; anything else is ``invalid_cursor``."""
    try:
        prefix, _, offset = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if prefix != "next":
            raise ValueError(cursor)
        return int(offset)
    except ValueError:
        raise SlackError("invalid_cursor") from None


def paginate(
    items: Sequence[T], args: Args, *, default_limit: int = 100, max_limit: int = 1000
) -> tuple[list[T], dict[str, Any]]:
    """One page of ``items`` and the ``response_metadata`` to return with it."""
    limit = args.integer("limit", default_limit)
    limit = default_limit if limit <= 0 else min(limit, max_limit)
    cursor = args.text("cursor")
    start = decode_cursor(cursor) if cursor else 0
    page = list(items[start : start + limit])
    end = start + len(page)
    return page, {"next_cursor": encode_cursor(end) if end < len(items) else ""}
