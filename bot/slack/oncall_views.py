"""Block Kit for on-call from Slack: the `/oncall overrides` list (Remove buttons) and the swap
request message (Take button; then who took it, or that it expired). Reasons people typed are
escaped before they reach mrkdwn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.core.text import escape, fit
from bot.core.when import slack_date
from bot.service.oncall_overrides import OverrideView
from bot.store.tables import SwapRequest

REMOVE_ACTION = "oncall_override_remove"
TAKE_ACTION = "oncall_swap_take"
MAX_LISTED = 45  # Slack shows at most 50 blocks in a message
TEXT_MAX = 2900  # a section's text may hold 3000 characters

PersonText = Callable[[str], str]


def overrides_list(
    views: Sequence[OverrideView], who: PersonText, rotation: str | None
) -> tuple[str, list[Block]]:
    """The ephemeral answer to `/oncall overrides`: text, and blocks with a Remove button on each
    override made from Slack (the file's own are changed in the file)."""
    where = f" in {escape(rotation)}" if rotation else ""
    if not views:
        return f"No current or future overrides{where}.", []
    title = f"Current and future overrides{where}:"
    blocks: list[Block] = [SectionBlock(text=title)]
    for view in views[:MAX_LISTED]:
        text = fit(_line(view, who), TEXT_MAX)
        if view.id is None:
            blocks.append(SectionBlock(text=text + " _(from the rotation file)_"))
        else:
            button = ButtonElement(text="Remove", action_id=REMOVE_ACTION, value=str(view.id), style="danger")
            blocks.append(SectionBlock(text=text, accessory=button))
    if len(views) > MAX_LISTED:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"… and {len(views) - MAX_LISTED} more.")])
        )
    return title + "\n" + "\n".join(_line(v, who) for v in views[:MAX_LISTED]), blocks


def _line(view: OverrideView, who: PersonText) -> str:
    made = f" (#{view.id}, asked by <@{view.created_by}>)" if view.id is not None and view.created_by else ""
    reason = f": {escape(view.reason)}" if view.reason else ""
    return (
        f"*{view.rotation}* {view.layer}: {who(view.who)} from {slack_date(view.start, view.zone)} "
        f"to {slack_date(view.end, view.zone)}{made}{reason}"
    )


def swap_message(swap: SwapRequest, who: PersonText, zone: ZoneInfo) -> tuple[str, list[Block]]:
    """The swap request as it stands: open (with Take), taken, expired."""
    span = f"from {slack_date(swap.starts_at, zone)} to {slack_date(swap.ends_at, zone)}"
    what = f"{swap.rotation} {swap.layer} {span}"
    reason = f": {escape(swap.reason)}" if swap.reason else ""
    if swap.status == "taken" and swap.taken_by:
        text = f":white_check_mark: {who(swap.taken_by)} covers {who(swap.requester)} on {what}{reason}."
    elif swap.status == "open":
        text = f":sos: {who(swap.requester)} needs cover on {what}{reason}"
    else:
        text = f":hourglass: {who(swap.requester)}'s request for cover on {what} expired, untaken{reason}."
    text = fit(text, TEXT_MAX)
    blocks: list[Block] = [SectionBlock(text=text)]
    if swap.status == "open":
        take = ButtonElement(text="Take", action_id=TAKE_ACTION, value=str(swap.id), style="primary")
        blocks.append(ActionsBlock(elements=[take]))
    return text, blocks
