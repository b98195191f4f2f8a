"""Answering people within Slack's 3 seconds: run a use case, ack, say the result ephemerally."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import IncidentBotError
from bot.service import responders
from bot.slack.membership import ChannelMembers

log = logging.getLogger(__name__)

GENERIC_ERROR = "Something went wrong on our side; it is logged. Please try again."
ACK_WITHIN_SECONDS = 2.5  # from the request's arrival: Slack gives up on an ack after 3 s
# When the request being handled must be acked by (monotonic), set where it arrives: the receipt
# (bot/slack/admission.py) and Bolt's own work come out of the same 3 seconds as the use case.
_ACK_BY: ContextVar[float | None] = ContextVar("slack_ack_by", default=None)


def start_ack_clock() -> None:
    """Slack's clock starts now, for this request (a context variable: each request its own)."""
    _ACK_BY.set(time.monotonic() + ACK_WITHIN_SECONDS)


def ack_budget(margin: float = 0.0) -> float:
    """Seconds left before this request must be acked (ACK_WITHIN_SECONDS outside a request)."""
    by = _ACK_BY.get()
    left = ACK_WITHIN_SECONDS if by is None else by - time.monotonic()
    return max(0.05, left - margin)


async def run_use_case(members: ChannelMembers, func: Callable[..., responders.Answer], *args: Any) -> str:
    """Run `func(*args)` in a worker thread (asking Slack who is in the channel when that is what
    a refusal turns on); the sentence for the person."""
    try:
        answer = await members.run(partial(func, *args))
    except IncidentBotError as exc:
        return str(exc)
    except Exception:
        log.exception("use case %s failed", getattr(func, "__name__", func))
        return GENERIC_ERROR
    return answer.text


async def in_time(work: Awaitable[str]) -> tuple[str | None, asyncio.Future[str]]:
    """Wait for `work` until the request must be acked: (its answer, or None if still running; the work)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=ack_budget())
    return (task.result() if done else None), task


async def ephemeral(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    """Answer the person who clicked, in the channel only they see it; when Slack cannot show it
    there (they are not in the channel, the bot is not, the channel is archived or gone), by DM."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    user = (body.get("user") or {}).get("id")
    if not user:
        return
    if channel:
        try:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
            return
        except SlackApiError as exc:
            log.info("could not answer %s ephemerally (%s): answering by DM", user, exc.response.get("error"))
        except Exception as exc:  # Slack unreachable: a DM would not get through either
            log.warning("could not answer %s ephemerally: %s", user, type(exc).__name__)
            return
    try:
        opened = await client.conversations_open(users=user)
        await client.chat_postMessage(channel=opened["channel"]["id"], text=text)
    except Exception as exc:  # an answer that cannot be shown must not look like a failure
        log.warning("could not answer %s by DM either: %s", user, type(exc).__name__)
