"""The Bolt app, built so that it says nothing untrue at start (issue 17)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.web.async_client import AsyncWebClient


class _TokenFromEnvironment(logging.Filter):
    """Drops Bolt's notice that it does not use SLACK_BOT_TOKEN from the environment: Bolt reads that
    variable itself (`token or os.environ.get("SLACK_BOT_TOKEN")`, whatever it is given) and says so
    whenever it is set, but the bot does use it, through Settings and `authorize`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def bolt_app(signing_secret: str, client: AsyncWebClient, authorize: Any) -> AsyncApp:
    # Bolt takes the token from `authorize` for each request and builds each request's client from
    # this one's base URL and timeout; given a client holding the token too, it warned at every start
    # that the token "will be ignored". So Bolt's client carries none.
    tokenless = AsyncWebClient(base_url=client.base_url, timeout=client.timeout)
    tokenless.retry_handlers = []  # as the bot's client: the outbox retries
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    notice = _TokenFromEnvironment()
    bolt_log.addFilter(notice)
    try:
        return AsyncApp(
            signing_secret=signing_secret,
            client=tokenless,
            authorize=authorize,
            process_before_response=False,
        )
    finally:
        bolt_log.removeFilter(notice)
