"""The notifier port: what a notifier is given, what it answers, and how its failures are classified.

Like Alertmanager's notifiers, a failure says whether trying again can help: 429, 5xx, timeouts and
dropped connections are recoverable (the outbox retries them with backoff inside the rule's window);
any other refusal (a 4xx: an unknown topic, a bad address, a refused recipient) is final, said in the
incident channel, and the person's next rule is tried at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from bot.integrations.errors import DeliveryError


@dataclass(frozen=True)
class Outgoing:
    """One notification, ready to send: the same facts for every provider."""

    notification_id: int
    method: str
    address: str  # topic/URL, email address, phone number, user key, webhook URL
    person: str
    subject: str  # "[SEV1] Incident #42: Weaviate is down"
    severity: str
    text: str  # plain text body (summary, links, how to acknowledge)
    incident_id: int | None
    title: str  # the incident's title alone
    summary: str
    ack_url: str | None  # None without PUBLIC_URL and SECRET_KEY
    open_url: str | None  # the incident channel in Slack (or the alert's source)
    idempotency_key: str  # the same for every attempt of this notification
    test: bool = False
    ack_token: str | None = None  # the token of `ack_url`, for callbacks that carry it (calls)
    # How many other incidents wait for this person's acknowledgement: an SMS then names its
    # incident, so that a reply says which page it answers.
    other_open_pages: int = 0


@dataclass(frozen=True)
class Follow:
    """A receipt worth following: ask the provider after `every` (no sooner than it allows), then
    half as often again each time up to `at_most`, until it is acknowledged, or for `for_` at most
    (when the provider stops repeating the page). Many open pages then cost few requests, and an
    acknowledgement soon after the page is still seen within seconds."""

    every: timedelta
    for_: timedelta
    at_most: timedelta


@dataclass(frozen=True)
class Sent:
    receipt: str  # the provider's id for what it accepted ("" when it gives none)
    answer: str  # what it answered, for the timeline ("ntfy accepted it (id abc123)")
    follow: Follow | None = None  # the receipt tells later whether the person acknowledged


class Notifier(Protocol):
    """One way to reach people. `send` raises `NotifyError` (recoverable or not) when it fails."""

    method: str

    async def send(self, message: Outgoing) -> Sent: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ReceiptState:
    """What a provider says of a receipt: acknowledged in its app, or nothing more to come."""

    acknowledged: bool
    over: bool  # expired, or unknown to the provider: stop following it
    detail: str  # for the timeline ("acknowledged on alex-iphone")


@runtime_checkable
class ReceiptFollower(Protocol):
    """A notifier whose receipts can be followed (Pushover's emergency priority) and cancelled
    once the incident is acknowledged elsewhere (so the phone stops ringing)."""

    method: str

    async def check(self, receipt: str) -> ReceiptState: ...

    async def cancel(self, receipt: str) -> None: ...


class NotifyError(DeliveryError):
    """A notifier call that failed; `error` is what the provider said, safe to show people."""


def http_error(method: str, status: int, detail: str, retry_after: float | None = None) -> NotifyError:
    """Classify an HTTP answer: 408, 429 and 5xx are worth retrying, other 4xx are final."""
    recoverable = status in (408, 429) or status >= 500
    text = f"HTTP {status}" + (f": {detail[:200]}" if detail else "")
    return NotifyError(
        method, text, recoverable=recoverable, retry_after=retry_after if status == 429 else None
    )


def network_error(method: str, exc: BaseException) -> NotifyError:
    """A timeout or a dropped connection: it may have landed, so retrying may send it twice."""
    return NotifyError(
        method, f"network: {type(exc).__name__}", recoverable=True, maybe_done=True, unfinished=True
    )


def retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
