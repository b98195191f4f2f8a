"""`/incident` and its modal: parse, find the incident of the channel, run the use case, answer.

Every answer is ephemeral and comes back within Slack's 3 seconds (the use cases only write
rows; Slack work goes through the outbox). Errors a person can cause get a sentence, never a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from anyio import to_thread
from slack_bolt.async_app import AsyncApp
from slack_sdk.models.blocks import InputBlock, Option, PlainTextInputElement, StaticSelectElement
from slack_sdk.models.views import View

from bot.core import commands
from bot.core.errors import BadInput, IncidentBotError
from bot.core.incident import Severity
from bot.core.text import slack_unescape
from bot.service import declare, lifecycle, manual_pages, notes, queries, responders, runbooks
from bot.service.context import Context
from bot.slack.answering import GENERIC_ERROR, in_time
from bot.slack.membership import ChannelMembers
from bot.slack.sanitize import dig

log = logging.getLogger(__name__)

DECLARE_CALLBACK = "declare_incident"
DECLARE_FALLBACK = "Could not open the form; declare with `/incident declare <title> [sev1|sev2|sev3]`."


def register(app: AsyncApp, ctx: Context, archive_after: timedelta | None, members: ChannelMembers) -> None:
    @app.command("/incident")
    async def incident_command(ack: Any, command: dict[str, Any], client: Any, respond: Any) -> None:
        cmd = commands.parse(slack_unescape(command.get("text") or ""))
        user, channel = command.get("user_id"), command.get("channel_id")
        if not user or not channel:
            await ack(text="This command arrived without a user or channel; nothing was done.")
            return
        if cmd.name == "declare" and not cmd.text:
            # Open the form before acking: if Slack refuses it, the ack can still say so.
            opened = await _open_declare_modal(client, command.get("trigger_id") or "", ctx)
            await (ack() if opened else ack(text=DECLARE_FALLBACK, response_type="ephemeral"))
            return

        async def work() -> str:
            try:
                return await members.run(partial(_dispatch, ctx, cmd, user, channel, archive_after))
            except IncidentBotError as exc:
                return str(exc)
            except Exception:
                log.exception("/incident %s failed", cmd.name)
                return GENERIC_ERROR

        text, running = await in_time(work())
        if text is not None:
            await ack(text=text, response_type="ephemeral")
            return
        await ack()  # the database is slow: answer through the command's response_url when done
        try:
            await respond(text=await running, response_type="ephemeral")
        except Exception as exc:
            log.warning("could not answer /incident %s: %s", cmd.name, exc)

    @app.view(DECLARE_CALLBACK)
    async def declare_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = dig(view, "state", "values")
        title = str(dig(values, "title", "title", "value") or "").strip()
        if not title:
            await ack(response_action="errors", errors={"title": "Give the incident a title."})
            return
        try:
            severity = Severity(str(dig(values, "severity", "severity", "selected_option", "value")))
        except ValueError:
            await ack(response_action="errors", errors={"severity": "Pick a severity."})
            return
        user = dig(body, "user", "id")
        if not isinstance(user, str):
            await ack(response_action="errors", errors={"title": "Slack did not say who you are."})
            return
        description = str(dig(values, "description", "description", "value") or "").strip()
        rotation = dig(values, "rotation", "rotation", "selected_option", "value")

        async def work() -> str:  # "" once declared, else why not
            try:
                await to_thread.run_sync(
                    declare.declare,
                    ctx,
                    user,
                    title[:200],
                    severity,
                    description,
                    rotation if isinstance(rotation, str) else None,
                )
            except IncidentBotError as exc:
                return str(exc)
            except Exception:
                log.exception("declaring from the form failed")
                return GENERIC_ERROR
            return ""

        refused, running = await in_time(work())
        if refused:  # e.g. DECLARE_RATE: the form stays open and says why
            await ack(response_action="errors", errors={"title": refused})
            return
        await ack()  # declared, or the database is slow (then it finishes, or logs why not)
        if refused is None:
            await running


def _dispatch(
    ctx: Context, cmd: commands.Command, user: str, channel: str, archive_after: timedelta | None
) -> str:
    actor = f"slack:{user}"
    if cmd.name == "help":
        return commands.help_text(cmd.unknown)
    if cmd.name == "declare":
        title, severity = commands.declare_args(cmd.text)
        return declare.declare(ctx, user, title, severity).text
    if cmd.name == "list":
        return queries.open_incidents(ctx)
    incident_id = responders.by_channel(ctx, channel)
    if incident_id is None:
        usage = commands.SUBCOMMANDS[cmd.name][0]
        return (
            f"`/incident {usage}` works in an incident channel; run it there (`/incident list` shows them)."
        )
    handlers: dict[str, Callable[[], str]] = {
        "ack": lambda: responders.acknowledge(ctx, incident_id, actor).text,
        "resolve": lambda: responders.resolve(ctx, incident_id, actor, cmd.text).text,
        "reopen": lambda: lifecycle.reopen(ctx, incident_id, actor).text,
        "close": lambda: lifecycle.close(ctx, incident_id, actor, archive_after).text,
        "status": lambda: queries.status(ctx, incident_id),
        "sev": lambda: lifecycle.set_severity(ctx, incident_id, actor, commands.severity(cmd.text)).text,
        "lead": lambda: lifecycle.set_lead(ctx, incident_id, actor, _mentioned(cmd.text, "lead")).text,
        "note": lambda: notes.note(ctx, incident_id, actor, cmd.text).text,
        "action": lambda: notes.action_item(ctx, incident_id, actor, cmd.text).text,
        "escalate": lambda: responders.escalate(ctx, incident_id, actor).text,
        "page": lambda: _page(ctx, incident_id, actor, cmd.text),
        "timeline": lambda: queries.timeline(ctx, incident_id),
        "runbook": lambda: (
            (
                runbooks.choose(ctx, incident_id, actor, cmd.text)
                if cmd.text
                else runbooks.repost(ctx, incident_id, actor)
            ).text
        ),
        "postmortem": lambda: lifecycle.postmortem_again(ctx, incident_id, actor).text,
    }
    return handlers[cmd.name]()


def _mentioned(text: str, sub: str) -> str:
    user = commands.mention(text)
    if user is None:
        raise BadInput(f"Mention a person: `/incident {sub} @someone`.")
    return user


def _page(ctx: Context, incident_id: int, actor: str, text: str) -> str:
    user = commands.mention(text)
    return manual_pages.page(ctx, incident_id, actor, user, None if user else text.strip() or None).text


async def _open_declare_modal(client: Any, trigger_id: str, ctx: Context) -> bool:
    sev_options = [Option(text=f"{s.value}", value=s.value) for s in Severity]
    blocks = [
        InputBlock(
            block_id="title", label="Title", element=PlainTextInputElement(action_id="title", max_length=200)
        ),
        InputBlock(
            block_id="severity",
            label="Severity",
            element=StaticSelectElement(
                action_id="severity", options=sev_options, initial_option=sev_options[1]
            ),
        ),
        InputBlock(
            block_id="description",
            label="Description",
            optional=True,
            element=PlainTextInputElement(action_id="description", multiline=True, max_length=2900),
        ),
    ]
    if ctx.rotations and ctx.rotations.rotations:
        rot_options = [Option(text=name, value=name) for name in list(ctx.rotations.rotations)[:100]]
        blocks.append(
            InputBlock(
                block_id="rotation",
                label="Rotation to page",
                optional=True,
                element=StaticSelectElement(action_id="rotation", options=rot_options),
            )
        )
    view = View(
        type="modal",
        callback_id=DECLARE_CALLBACK,
        title="Declare an incident",
        submit="Declare",
        close="Cancel",
        blocks=blocks,
    )
    try:
        await client.views_open(trigger_id=trigger_id, view=view.to_dict())
    except Exception as exc:
        log.warning("could not open the declare form: %s", exc)
        return False
    return True
