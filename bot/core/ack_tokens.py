"""Acknowledge links: `PUBLIC_URL/ack/<token>`, one per page (or test page), signed with SECRET_KEY.

A token names what it acknowledges (a page, or a test notification), the incident's paging cycle
(a link from before a reopen does not acknowledge the new cycle) and when it expires; an
HMAC-SHA256 over exactly those fields, keyed by SECRET_KEY for this purpose only, makes it
unforgeable, and it is compared in constant time. Whether the incident is still open is the
service's question: a token only says who may acknowledge what until when.

Pure: the key and the clock are parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

VALID_FOR = timedelta(hours=24)  # or until the incident resolves, whichever comes first
_PURPOSE = b"incidentbot ack link v1\x00"
_MAX_TOKEN = 200  # longer input is not one of ours: refuse before any work

Kind = Literal["page", "test"]


@dataclass(frozen=True)
class AckTarget:
    kind: Kind
    id: int  # Page.id, or Notification.id for a test page
    cycle: int  # the incident's paging cycle when paged (0 for tests)
    expires_at: datetime


class TokenProblem(StrEnum):
    """Why a token acknowledges nothing (each gets its own page)."""

    FORGED = "This link is not valid: it was not made by this bot, or it was changed."
    EXPIRED = "This link has expired: acknowledge links work for 24 hours."


def _key(secret: str) -> bytes:
    return hashlib.sha256(_PURPOSE + secret.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: str, target: AckTarget) -> str:
    body = f"{target.kind[0]}{target.id}.{target.cycle}.{int(target.expires_at.timestamp())}"
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return f"{_b64(body.encode())}.{_b64(mac)}"


def read_token(secret: str, token: str, now: datetime) -> AckTarget | TokenProblem:
    """The target of a valid token, or why it is not valid."""
    if not secret or len(token) > _MAX_TOKEN or token.count(".") != 1:
        return TokenProblem.FORGED
    body_text, mac_text = token.split(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (ValueError, TypeError):
        return TokenProblem.FORGED
    expected = hmac.new(_key(secret), body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        return TokenProblem.FORGED
    try:  # signed by us, so well formed; parsed defensively all the same
        head, cycle, expires = body.decode().split(".")
        kind: Kind = "page" if head[0] == "p" else "test"
        target = AckTarget(kind, int(head[1:]), int(cycle), datetime.fromtimestamp(int(expires), UTC))
    except (ValueError, IndexError, UnicodeDecodeError, OverflowError, OSError):
        return TokenProblem.FORGED
    if now >= target.expires_at:
        return TokenProblem.EXPIRED
    return target


def ack_url(public_url: str, secret: str, target: AckTarget) -> str:
    return f"{public_url.rstrip('/')}/ack/{make_token(secret, target)}"
