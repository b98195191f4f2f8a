"""`/oncall` and its buttons (Take on a swap request, Remove on an override): parse, learn who the
Slack users are (`SlackPeople`), run the use case in a worker thread, answer ephemerally.

Answers come within Slack's 3 seconds; a slow database or PagerDuty gets an ack first and the
answer through the command's response_url once the work is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import oncall_command
from bot.core.errors import BadInput, IncidentBotError
from bot.core.oncall_changes import Actor
from bot.core.text import slack_unescape
from bot.service import notify_tests, oncall, oncall_overrides, swaps
from bot.service.context import Context
from bot.slack.answering import GENERIC_ERROR, ack_budget, ephemeral, run_use_case
from bot.slack.membership import ChannelMembers
from bot.slack.oncall_people import SlackPeople
from bot.slack.oncall_views import REMOVE_ACTION, TAKE_ACTION, overrides_list

log = logging.getLogger(__name__)

Answer = tuple[str, list[Any]]  # text, blocks


async def handle(
    ack: Any,
    command: dict[str, Any],
    client: AsyncWebClient,
    respond: Any,
    ctx: Context,
    people: SlackPeople,
    pagerduty: oncall.PagerDutyLookup | None,
) -> None:
    """The `/oncall` listener's body."""
    if ctx.rotations is None:
        await ack(text="No rotations are configured (see ROTATIONS_DIR).")
        return
    user = command.get("user_id") or ""
    layers = {name: tuple(r.layers) for name, r in ctx.rotations.rotations.items()}
    try:
        cmd = oncall_command.parse(slack_unescape(command.get("text") or ""), layers)
    except IncidentBotError as exc:
        await ack(text=str(exc), response_type="ephemeral")
        return

    async def work() -> Answer:
        try:
            return await _dispatch(cmd, user, client, ctx, people, pagerduty)
        except IncidentBotError as exc:
            return str(exc), []
        except Exception:
            log.exception("/oncall %s failed", cmd.name)
            return GENERIC_ERROR, []

    answer, running = await _in_time(work())
    if answer is not None:
        await ack(text=answer[0], blocks=answer[1] or None, response_type="ephemeral")
        return
    await ack()  # slow: answer through the response_url when done
    try:
        text, blocks = await running
        await respond(text=text, blocks=blocks or None, response_type="ephemeral")
    except Exception as exc:
        log.warning("could not answer /oncall %s: %s", cmd.name, exc)


async def _in_time(work: Awaitable[Answer]) -> tuple[Answer | None, asyncio.Future[Answer]]:
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=ack_budget())
    return (task.result() if done else None), task


async def _dispatch(
    cmd: oncall_command.OncallCommand,
    user: str,
    client: AsyncWebClient,
    ctx: Context,
    people: SlackPeople,
    pagerduty: oncall.PagerDutyLookup | None,
) -> Answer:
    if cmd.name == "help":
        return oncall_command.help_text(), []
    if cmd.name == "show":
        return await _show(ctx, cmd.rotation, pagerduty), []
    if cmd.name == "test-page":
        return await to_thread.run_sync(notify_tests.test_page, ctx, user), []
    actor = Actor(user, await people.person_of(client, user))
    if cmd.name == "me":
        return await to_thread.run_sync(oncall.my_shifts, ctx, actor.person), []
    if cmd.name == "overrides":
        views = await to_thread.run_sync(oncall_overrides.listing, ctx, cmd.rotation)
        return overrides_list(views, lambda name: oncall_overrides.person_text(ctx, name), cmd.rotation)
    if cmd.name == "override":
        who = await _who(cmd, client, people)
        answer = await to_thread.run_sync(
            oncall_overrides.override, ctx, actor, cmd.rotation, cmd.layer, who, list(cmd.words)
        )
        return answer.text, []
    assert cmd.name == "swap" and cmd.rotation is not None
    answer = await to_thread.run_sync(swaps.request, ctx, actor, cmd.rotation, cmd.layer, list(cmd.words))
    return answer.text, []


async def _show(ctx: Context, rotation: str | None, pagerduty: oncall.PagerDutyLookup | None) -> str:
    def describe() -> str:
        return oncall.on_call_now(ctx, rotation, slack=True, pagerduty=pagerduty)

    try:
        # PagerDuty lookups may be slow (then cached): say so rather than miss Slack's 3 seconds.
        return await asyncio.wait_for(to_thread.run_sync(describe), ack_budget(margin=0.3))
    except TimeoutError:
        return "PagerDuty is slow to say who is on call; try again in a moment."


async def _who(cmd: oncall_command.OncallCommand, client: AsyncWebClient, people: SlackPeople) -> str:
    if cmd.who_user is not None:
        person = await people.person_of(client, cmd.who_user)
        if person is None:
            raise BadInput(f"<@{cmd.who_user}> is not in people.yaml, so the bot cannot put them on call.")
        return person
    assert cmd.who_name is not None
    return cmd.who_name


def register_buttons(app: AsyncApp, ctx: Context, people: SlackPeople, members: ChannelMembers) -> None:
    """Take (a swap request) and Remove (an override): both act through the same permission rule."""

    def button(action_id: str, use_case: Callable[..., Any]) -> None:
        @app.action(action_id)
        async def clicked(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            user = str((body.get("user") or {}).get("id") or "")
            try:
                target = int(str(body["actions"][0]["value"]))
            except (KeyError, IndexError, ValueError, TypeError):
                target = 0
            if not user or not 0 < target < 2**31:  # a button's value is text anyone can forge
                await ephemeral(client, body, "This button does not name anything the bot knows.")
                return
            actor = Actor(user, await people.person_of(client, user))
            await ephemeral(client, body, await run_use_case(members, use_case, ctx, actor, target))

    button(TAKE_ACTION, swaps.take)
    button(REMOVE_ACTION, oncall_overrides.remove)
