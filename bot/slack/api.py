"""The Slack Web API port: one `call`, and failures classified as retry-later or give-up.

Alertmanager's notifiers taught the rule: 429 and 5xx (and network trouble) are recoverable and
retried with backoff (honouring Retry-After); other errors fail fast and are recorded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.integrations.errors import DeliveryError
from bot.observability import SLACK_CALLS
from bot.slack.pacing import Pacer

log = logging.getLogger(__name__)

# `ok: false` errors that mean "Slack is struggling", not "your request is wrong".
_RECOVERABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)
# The token itself is refused: a credentials problem, not an outage. Rows wait (an operator fixes the
# token) and Slack is asked again once a minute, not probed every second. `missing_scope` is not one
# of them: auth.test succeeds without the scope (so a re-check could not tell it was fixed) and it
# concerns one method, not every call.
CREDENTIAL_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


# Channel-side refusals and the call that repairs them: a person archived the channel, or removed
# the bot from it. The refused call is made again once after each repair. The bot's channels are
# public: a private one cannot be joined, and then the call fails for good. (Slack does not let bot
# tokens unarchive: archiving drops the bot and unarchive answers not_in_channel, so an archived
# channel fails for good until a person unarchives it; the next call then joins and goes through.)
_REPAIRED = frozenset({"is_archived", "not_in_channel"})
_NOT_REPAIRED = frozenset(
    {"conversations.archive", "conversations.unarchive", "conversations.join", "conversations.leave"}
)


class SlackCallError(DeliveryError):
    """A Slack Web API call that failed (`error` is Slack's error code or the HTTP status)."""


class SlackAPI(Protocol):
    async def call(self, method: str, **params: Any) -> dict[str, Any]: ...


class SlackWebAPI:
    """`SlackAPI` over slack_sdk's AsyncWebClient (retries are the outbox's job, not the SDK's).

    `pooled`: keep one aiohttp session (so keep-alive connections) per event loop. Without it the
    SDK opens and closes a session, so a TCP connection, for every call: a third of the worker's
    time per Slack call under load. Whoever passes `pooled` calls `aclose()` at shutdown."""

    def __init__(self, client: AsyncWebClient, pacer: Pacer | None = None, *, pooled: bool = False) -> None:
        self.client = client
        self.pacer = pacer or Pacer()
        self.pooled = pooled
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def _pool(self) -> None:
        loop = asyncio.get_running_loop()
        session = self.client.session
        if session is None or session.closed or self._session_loop is not loop:
            self.client.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.client.timeout)
            )
            self._session_loop = loop

    async def aclose(self) -> None:
        session, self.client.session = self.client.session, None
        if self.pooled and session is not None and not session.closed:
            await session.close()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        channel = params.get("channel")
        repaired: set[str] = set()
        while True:
            try:
                return await self._call(method, **params)
            except SlackCallError as exc:
                if (
                    exc.error not in _REPAIRED
                    or exc.error in repaired
                    or method in _NOT_REPAIRED
                    or not isinstance(channel, str)
                ):
                    raise
                repaired.add(exc.error)
                await self._repair(channel, exc)

    async def _repair(self, channel: str, refused: SlackCallError) -> None:
        """Unarchive or join `channel`; if that is refused for good, the refused call fails for good
        with its own error (a transient failure of the repair is retried like any other)."""
        repair = "unarchive" if refused.error == "is_archived" else "join"
        log.info("%s answered %s in %s: %s and trying again", refused.method, refused.error, channel, repair)
        try:
            if refused.error == "is_archived":
                await self._call("conversations.unarchive", channel=channel)
            else:
                await self._call("conversations.join", channel=channel)
        except SlackCallError as exc:
            if exc.recoverable:
                raise
            if exc.error in ("not_archived", "already_in_channel"):
                return  # someone repaired it meanwhile
            log.warning(
                "%s in %s failed (%s): %s fails for good with %s",
                repair,
                channel,
                exc.error,
                refused.method,
                refused.error,
            )
            raise refused from exc

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        if self.pooled:
            self._pool()
        func = getattr(self.client, method.replace(".", "_"))
        channel = params.get("channel") if isinstance(params.get("channel"), str) else None
        paced = await self.pacer.wait(method, channel)
        if paced < 0:  # over Slack's budget for a while: retry the row later, call nothing now
            raise SlackCallError(method, "paced", recoverable=True, retry_after=-paced)
        try:
            response = await func(**params)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            retry_after = _retry_after(exc.response.headers) if status == 429 else None
            if retry_after is not None:
                self.pacer.rate_limited(method, channel, retry_after)
            credentials = error in CREDENTIAL_ERRORS
            recoverable = status == 429 or status >= 500 or error in _RECOVERABLE_ERRORS or credentials
            SLACK_CALLS.labels(method, error or str(status)).inc()
            raise SlackCallError(
                method,
                error or f"http {status}",
                recoverable=recoverable,
                retry_after=retry_after,
                maybe_done=status >= 500,
                credentials=credentials,
            ) from exc
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            SLACK_CALLS.labels(method, "network_error").inc()
            raise SlackCallError(
                method, f"network: {type(exc).__name__}", recoverable=True, maybe_done=True, unfinished=True
            ) from exc
        SLACK_CALLS.labels(method, "ok").inc()
        return dict(response.data) if isinstance(response.data, dict) else {}


def _retry_after(headers: Any) -> float | None:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value if isinstance(value, str) else value[0]))
            except (TypeError, ValueError, IndexError):
                return None
    return None
