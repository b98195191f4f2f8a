"""Bolt listeners: hand the work to a use case, ack, answer the person ephemerally.

Use cases touch the database, so they run in a worker thread. Clicks and commands ack once their
use case has committed, so Slack is not told "done" before it is; but within the 3 seconds Slack
allows (bot.slack.answering; a busy database), after which they ack and answer when the work is done.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from anyio import to_thread
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.text import slack_unescape
from bot.service import channel_members, notes, oncall, responders, runbooks, silences
from bot.service.context import Context
from bot.slack import commands, oncall_commands
from bot.slack.answering import ephemeral, in_time, run_use_case
from bot.slack.membership import ChannelMembers
from bot.slack.oncall_people import SlackPeople
from bot.slack.runbook_blocks import STEP_ACTION_RE, parse_step_action
from bot.slack.sanitize import CleanRequest

log = logging.getLogger(__name__)


def _incident_id(body: dict[str, Any]) -> int | None:
    try:
        value = int(body["actions"][0]["value"].split(":")[0])
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        return None
    return value if 0 < value < 2**31 else None  # an id the database can hold


def _page_id(body: dict[str, Any]) -> int | None:
    """The page a page-DM button names (`<incident>:p<page>`); None for the card's buttons."""
    try:
        part = str(body["actions"][0]["value"]).split(":")[1]
        value = int(part.removeprefix("p")) if part.startswith("p") else None
    except (KeyError, IndexError, ValueError, TypeError):
        return None
    return value if value is not None and 0 < value < 2**31 else None


def register(
    app: AsyncApp,
    ctx: Context,
    archive_after: timedelta | None = None,
    pagerduty: oncall.PagerDutyLookup | None = None,
    *,
    client: AsyncWebClient,
) -> None:
    """Attach every listener (commands, buttons, events) to the Bolt app. `client` is the bot's own
    Web API client (it carries the token; Bolt's `app.client` does not) for the calls listeners make
    outside a request's own client, such as `conversations.members`."""
    app.use(CleanRequest())
    members = ChannelMembers(ctx, client)
    commands.register(app, ctx, archive_after, members)
    people = SlackPeople(ctx.rotations)
    oncall_commands.register_buttons(app, ctx, people, members)

    def button(action_id: str, use_case: Callable[..., responders.Answer], *, in_page: bool = False) -> None:
        @app.action(action_id)
        async def handle(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            incident_id = _incident_id(body)
            if incident_id is None:
                await ack()
                await ephemeral(client, body, "This button does not name an incident.")
                return
            actor = f"slack:{body['user']['id']}"
            # Page DMs' buttons name their page: only its recipient may use them.
            run = partial(use_case, page_id=_page_id(body)) if in_page else use_case
            text, work = await in_time(run_use_case(members, run, ctx, incident_id, actor))
            await ack()
            await ephemeral(client, body, text if text is not None else await work)

    button("incident_ack", responders.acknowledge, in_page=True)
    button("incident_escalate", responders.escalate, in_page=True)
    button("incident_resolve", responders.resolve)

    @app.action(re.compile(r"^incident_silence_\d+h$"))
    async def silence(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            incident_text, seconds_text = str(body["actions"][0]["value"]).split(":")
            incident_id, seconds = int(incident_text), int(seconds_text)
        except (KeyError, IndexError, ValueError):
            incident_id, seconds = 0, 0
        if not 0 < incident_id < 2**31:  # an id the database can hold
            await ephemeral(client, body, "This button does not name an incident.")
            return
        # The duration is checked by the use case: a button's value is text anyone can forge.
        text = await run_use_case(members, silences.silence, ctx, incident_id, body["user"]["id"], seconds)
        await ephemeral(client, body, text)

    button("incident_unsilence", silences.unsilence)

    @app.event("pin_added")
    async def pinned(event: dict[str, Any]) -> None:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        message = item.get("message") if isinstance(item.get("message"), dict) else {}
        channel = event.get("channel_id") or item.get("channel")
        if item.get("type") == "message" and channel and message.get("ts"):
            await _capture(
                channel,
                event.get("user"),
                message.get("user"),
                message["ts"],
                message.get("text", ""),
                "pinned",
            )

    @app.event("reaction_added")
    async def reacted(event: dict[str, Any], client: AsyncWebClient) -> None:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        if event.get("reaction") != "pushpin" or item.get("type") != "message":
            return
        channel, ts = item.get("channel"), item.get("ts")
        if not channel or not ts or await to_thread.run_sync(responders.by_channel, ctx, channel) is None:
            return
        try:  # the event does not carry the text: read that one message
            found = await client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1)
            message = (found.get("messages") or [{}])[0]
        except Exception as exc:
            log.warning("could not read the :pushpin:-ed message: %s", exc)
            message = {}
        await _capture(
            channel,
            event.get("user"),
            event.get("item_user") or message.get("user"),
            ts,
            message.get("text", "(message not readable)"),
            "pushpin reaction",
        )

    async def _capture(
        channel: str, by: str | None, author: str | None, ts: str, text: str, how: str
    ) -> None:
        incident_id = await to_thread.run_sync(responders.by_channel, ctx, channel)
        if incident_id is None:
            return
        try:
            typed = slack_unescape(text)  # Slack sends &, <, > as entities
            await to_thread.run_sync(
                notes.capture_message, ctx, incident_id, f"slack:{by}", author, ts, typed, how
            )
        except Exception:
            log.exception("could not add a pinned message to the timeline")

    @app.event("member_joined_channel")
    async def member_joined(event: dict[str, Any]) -> None:
        await _membership(channel_members.joined, event)

    @app.event("member_left_channel")
    async def member_left(event: dict[str, Any]) -> None:
        await _membership(channel_members.left, event)

    async def _membership(change: Callable[[Context, str, str], None], event: dict[str, Any]) -> None:
        """Keep who is in which channel: a fact for who may acknowledge, note and add actions."""
        channel, user = event.get("channel"), event.get("user")
        if not isinstance(channel, str) or not isinstance(user, str) or not channel or not user:
            return
        try:
            await to_thread.run_sync(change, ctx, channel, user)
        except Exception:
            log.exception("could not record a channel membership change")

    @app.event("message")
    async def ignore_messages() -> None:
        """Messages are not timeline material unless pinned; acknowledging them keeps Bolt quiet."""

    @app.action(STEP_ACTION_RE)
    async def runbook_step(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        step = parse_step_action(str(body["actions"][0].get("value", "")))
        if step is None:
            await ephemeral(client, body, "This button does not name a runbook step.")
            return
        text = await run_use_case(
            members,
            runbooks.toggle_step,
            ctx,
            step.incident_id,
            step.slug,
            step.number,
            step.done,
            body["user"]["id"],
        )
        if not text.startswith("Step") or "already" in text:
            await ephemeral(client, body, text)

    @app.command("/oncall")
    async def oncall_command(ack: Any, command: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await oncall_commands.handle(ack, command, client, respond, ctx, people, pagerduty)
