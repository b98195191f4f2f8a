"""Block Kit messages for a runbook posted into an incident channel.

Each step is a section with a Done/Undo button. A runbook can be longer than one message allows
(50 blocks, 3000 characters a section), so it is laid out over several messages. The layout
reserves room for every step's done state (the ✅ prefix and the "done by" context line) so that
toggling a step never moves steps between messages: the caller updates just the message that
`step_message_index` names, re-rendered with `runbook_message`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.core.runbook_links import RunbookLink
from bot.core.runbook_mrkdwn import code_body, markdown_to_mrkdwn
from bot.core.runbooks import Runbook, Step, is_valid_slug
from bot.core.text import escape, fit, link, safe_cut, slack_date, truncate

MAX_BLOCKS = 50
SECTION_MAX = 3000
HEADER_MAX = 150
CONTEXT_MAX = 3000
MAX_PARTS_PER_STEP = 20  # 60k characters of one step is already unreadable; cap the rest

STEP_ACTION_ID = "runbook_step_done"  # listeners match `^runbook_step_done:\d+$` (unique per message)
STEP_ACTION_RE = re.compile(rf"^{STEP_ACTION_ID}:\d+$")
DONE_MARK = "✅ "
_INTRO_BLOCKS = 2
DoneAt = str | datetime  # when a step was done: a time (shown in each reader's zone), or text as is
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_FENCE = "```"
_TOO_LONG = "_… this step is too long for Slack; read the rest in the runbook._"


@dataclass(frozen=True)
class StepAction:
    """What a Done/Undo click asks for; the intent is in the value so double clicks are idempotent."""

    incident_id: int
    slug: str
    number: int
    done: bool


def step_button_value(incident_id: int, slug: str, number: int, done: bool) -> str:
    return f"{incident_id}:{slug}:{number}:{'done' if done else 'undo'}"


def parse_step_action(value: str) -> StepAction | None:
    """The button value back, or None if it was tampered with or is malformed."""
    parts = value.split(":")
    if len(parts) != 4 or parts[3] not in ("done", "undo") or not is_valid_slug(parts[1]):
        return None
    if not (parts[0].isdigit() and parts[2].isdigit()):
        return None
    return StepAction(int(parts[0]), parts[1], int(parts[2]), parts[3] == "done")


def runbook_messages(
    runbook: Runbook,
    incident_id: int,
    done: Mapping[int, tuple[str, DoneAt]],
    source_url: str | None = None,
) -> list[list[Block]]:
    """All messages for the runbook, in posting order. `done`: step -> (user id, "14:03 UTC")."""
    layout = _layout(runbook)
    return [_render(runbook, incident_id, done, items, source_url) for items in layout]


def runbook_message(
    runbook: Runbook,
    incident_id: int,
    done: Mapping[int, tuple[str, DoneAt]],
    index: int,
    source_url: str | None = None,
) -> list[Block]:
    """Only message `index` (see `step_message_index`), to update it after a step is toggled."""
    return _render(runbook, incident_id, done, _layout(runbook)[index], source_url)


def step_message_index(runbook: Runbook) -> dict[int, int]:
    """Step number -> index of the message holding it. Independent of which steps are done."""
    return {
        item.number: i for i, items in enumerate(_layout(runbook)) for item in items if isinstance(item, Step)
    }


def no_runbook_blocks(link_result: RunbookLink) -> list[Block]:
    alert = f" for *{escape(link_result.alertname)}*" if link_result.alertname else ""
    lines = [f":grey_question: No runbook found{alert}."]
    if link_result.suggested_file:
        name = escape(link_result.suggested_file)
        alert_name = escape(link_result.alertname)
        hint = f" with `alerts: [{alert_name}]` in its front matter" if alert_name else ""
        lines.append(f"Create `{name}`{hint} and it will be posted here next time.")
    if link_result.url:
        lines.append(f"The alert links to {link(link_result.url, truncate(link_result.url, 200))}")
    text = MarkdownTextObject(text=fit("\n".join(lines), SECTION_MAX))
    blocks: list[Block] = [SectionBlock(block_id="rb-missing", text=text)]
    if link_result.refused:
        note = fit("Refused runbook reference: " + escape(link_result.refused), CONTEXT_MAX)
        blocks.append(ContextBlock(block_id="rb-refused", elements=[MarkdownTextObject(text=note)]))
    return blocks


# --- layout -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Heading:
    name: str
    continued: bool


_Item = Step | _Heading | None  # None = the intro (title, owner, source)


def _layout(runbook: Runbook) -> list[list[_Item]]:
    messages: list[list[_Item]] = [[None]]
    used = _INTRO_BLOCKS
    section: str | None = None
    for step in runbook.steps:
        need = len(_step_parts(step)) + 1  # +1: the "done by" context, reserved even when not done
        heading = 1 if step.section.strip() and step.section != section else 0
        if used + heading + need > MAX_BLOCKS:
            messages.append([])
            used = 0
            if step.section.strip() and not heading:
                messages[-1].append(_Heading(step.section, continued=True))
                used += 1
        if heading:
            messages[-1].append(_Heading(step.section, continued=False))
            used += 1
        section = step.section
        messages[-1].append(step)
        used += need
    return messages


def _render(
    runbook: Runbook,
    incident_id: int,
    done: Mapping[int, tuple[str, DoneAt]],
    items: list[_Item],
    source_url: str | None,
) -> list[Block]:
    blocks: list[Block] = []
    for n, item in enumerate(items):
        if item is None:
            blocks.extend(_intro(runbook, source_url, done))
        elif isinstance(item, _Heading):
            name = item.name + (" (continued)" if item.continued else "")
            text = PlainTextObject(text=fit(escape(name), HEADER_MAX))
            blocks.append(HeaderBlock(block_id=f"rb-section-{n}", text=text))
        else:
            blocks.extend(_step_blocks(runbook.slug, incident_id, item, done.get(item.number)))
    return blocks


def _intro(runbook: Runbook, source_url: str | None, done: Mapping[int, tuple[str, DoneAt]]) -> list[Block]:
    title = fit(escape(f"📘 Runbook: {runbook.title}"), HEADER_MAX)
    source = escape(runbook.source_file or f"runbooks/{runbook.slug}.md")
    done_count = sum(1 for n in done if runbook.step(n))  # steps of an older version do not count
    facts = [
        f"*Owner:* {escape(runbook.owner)}" if runbook.owner else "",
        f"*Severity:* {escape(runbook.severity)}" if runbook.severity else "",
        f"*Alerts:* {escape(', '.join(runbook.alerts))}" if runbook.alerts else "",
        f"*Source:* {link(source_url, runbook.source_file) if source_url else f'`{source}`'}",
        f"{done_count} of {len(runbook.steps)} steps done: press *Done* as you go",
    ]
    context = fit("  ·  ".join(f for f in facts if f), CONTEXT_MAX)
    return [
        HeaderBlock(block_id="rb-title", text=PlainTextObject(text=title)),
        ContextBlock(block_id="rb-intro", elements=[MarkdownTextObject(text=context)]),
    ]


def _step_blocks(slug: str, incident_id: int, step: Step, done_by: tuple[str, DoneAt] | None) -> list[Block]:
    parts = _step_parts(step)
    n = step.number
    button = ButtonElement(
        text="Undo" if done_by else "Done",
        action_id=f"{STEP_ACTION_ID}:{n}",
        value=step_button_value(incident_id, slug, n, not done_by),
        style=None if done_by else "primary",
    )
    blocks: list[Block] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        text = DONE_MARK + part if done_by and i == 0 else part
        blocks.append(
            SectionBlock(
                block_id=f"rb-step-{n}" if last else f"rb-step-{n}-part-{i + 1}",
                text=MarkdownTextObject(text=text),
                accessory=button if last else None,
            )
        )
    if done_by:
        user, when = done_by
        who = f"<@{user}>" if _USER_ID_RE.match(user) else escape(user)
        at = escape(when) if isinstance(when, str) else _done_at(when)
        note = fit(f"done by {who} at {at}", CONTEXT_MAX)
        blocks.append(ContextBlock(block_id=f"rb-done-{n}", elements=[MarkdownTextObject(text=note)]))
    return blocks


def _done_at(when: datetime) -> str:
    """Each reader sees the time in their own zone; UTC where Slack cannot format it."""
    return slack_date(when, "{time}", f"{when.astimezone(UTC):%H:%M} UTC")


@lru_cache(maxsize=2048)  # layout and rendering both need it; steps are immutable
def _step_parts(step: Step) -> tuple[str, ...]:
    """The step's mrkdwn in section-sized parts, split between paragraphs and code blocks first."""
    budget = SECTION_MAX - len(DONE_MARK)  # room for the ✅ so done/undone never re-splits
    pieces = [f"*{step.number}.* {markdown_to_mrkdwn(step.text)}".rstrip()]
    for block in step.code:
        body = code_body(block.code)
        pieces += [f"{_FENCE}\n{chunk}\n{_FENCE}" for chunk in _split(body, budget - 2 * len(_FENCE) - 2)]
    parts: list[str] = []
    for piece in pieces:
        for chunk in _split(piece, budget) if not piece.startswith(_FENCE) else [piece]:
            if not chunk.strip():
                continue  # Slack rejects a section of only whitespace
            if parts and len(parts[-1]) + 1 + len(chunk) <= budget:
                parts[-1] += "\n" + chunk
            else:
                parts.append(chunk)
    if len(parts) > MAX_PARTS_PER_STEP:
        parts = [*parts[: MAX_PARTS_PER_STEP - 1], _TOO_LONG]
    return tuple(parts)


def _split(text: str, limit: int) -> list[str]:
    """Cut at a newline, else a space, never inside `<...>` or an `&entity;` we wrote."""
    chunks: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit + 1)
        if cut < limit // 2:
            cut = limit
        cut = safe_cut(text, cut)
        chunks.append(text[:cut])
        text = text[cut:].removeprefix("\n")
    if text or not chunks:
        chunks.append(text)
    return chunks
