"""Runbook markdown -> Slack mrkdwn.

Everything a runbook author wrote is untrusted as far as Slack is concerned: a step reading
`notify <!channel>` must arrive as text, not ping the channel. So the markdown is parsed with
markdown-it-py (raw HTML off, so `<...>` stays text) and rebuilt token by token: bold, italic,
strikethrough, inline code and http(s) links are translated; every other character goes
through `text.escape`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.core.text import escape, link

if TYPE_CHECKING:
    from bot.core.runbooks import CodeBlock, Step

_INLINE_MARKS = {"strong": "*", "em": "_", "s": "~"}
_LINK_SCHEMES = ("http", "https", "mailto")
_INDENT = "    "
_TASK_BOXES = {"[ ]": "☐", "[x]": "☑", "[X]": "☑"}


@cache
def markdown_parser() -> MarkdownIt:
    """CommonMark with raw HTML disabled: `<!channel>` in a runbook is text, never markup."""
    return MarkdownIt("commonmark", {"html": False}).enable("strikethrough")


def step_mrkdwn(step: Step) -> str:
    """The whole step as mrkdwn: its text, then each of its code blocks as a ``` fence."""
    parts = [markdown_to_mrkdwn(step.text)] + [code_mrkdwn(block) for block in step.code]
    return "\n".join(part for part in parts if part)


def code_mrkdwn(block: CodeBlock) -> str:
    """A ``` fence. Slack ignores a language tag (it would show as text), so none is written."""
    return f"```\n{code_body(block.code)}\n```"


def code_body(code: str) -> str:
    # Escaped like all text; a ``` inside the code would close the fence early, so break it up.
    return escape(code.rstrip("\n")).replace("```", "`\u200b``") or " "


def markdown_to_mrkdwn(source: str) -> str:
    lines: list[str] = []
    lists: list[list[int]] = []  # per open list: [ordered (0/1), current number]
    item_prefix: str | None = None  # bullet waiting for the first paragraph of a list item
    quote = 0
    heading = False
    for tok in markdown_parser().parse(source):
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            ordered = kind == "ordered_list_open"
            lists.append([int(ordered), int(tok.attrGet("start") or 1) - 1])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            lists[-1][1] += 1
            ordered, number = lists[-1]
            item_prefix = _INDENT * (len(lists) - 1) + (f"{number}. " if ordered else "• ")
        elif kind == "heading_open":
            heading = True
        elif kind == "heading_close":
            heading = False
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
        elif kind == "inline":
            text = render_inline(tok.children or [])
            text = f"*{text}*" if heading and text else text
            indent = _INDENT * len(lists)
            if item_prefix is not None:
                text, item_prefix = item_prefix + _task_box(text), None
            else:
                text = indent + text
            lines.append(_quoted(text.replace("\n", "\n" + indent), quote))
        elif kind in ("fence", "code_block"):
            lines.append(_quoted(f"```\n{code_body(tok.content)}\n```", quote))
        elif kind == "html_block":
            lines.append(_quoted(escape(tok.content.rstrip("\n")), quote))
        elif kind == "hr":
            lines.append("──────────")
    return "\n".join(lines)


def render_inline(children: list[Token]) -> str:
    out: list[str] = []
    link_href: str | None = None
    label: list[str] = []
    for tok in children:
        kind = tok.type
        if link_href is not None:
            if kind == "link_close":
                out.append(_link(link_href, "".join(label)))
                link_href = None
            elif kind in ("text", "code_inline"):
                label.append(tok.content)
            elif kind in ("softbreak", "hardbreak"):
                label.append(" ")
            continue
        if kind == "text":
            out.append(escape(tok.content))
        elif kind == "code_inline":
            # Slack has no escape for a backtick inside inline code; swap in a look-alike.
            out.append("`" + escape(tok.content).replace("`", "ˋ") + "`")
        elif kind.endswith(("_open", "_close")) and tok.tag in _INLINE_MARKS:
            out.append(_INLINE_MARKS[tok.tag])
        elif kind == "link_open":
            link_href, label = str(tok.attrGet("href") or ""), []
        elif kind == "softbreak":
            out.append(" ")  # markdown joins wrapped lines; so does Slack's reader
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "image":
            out.append(escape(tok.content or str(tok.attrGet("src") or "")))
        elif kind == "html_inline":
            out.append(escape(tok.content))
    return "".join(out)


def plain_text(inline: Token) -> str:
    """The visible text of an inline token (headings, titles): no markup, not escaped."""
    parts = [
        c.content if c.type in ("text", "code_inline") else " " if c.type == "softbreak" else ""
        for c in inline.children or []
    ]
    return "".join(parts).strip()


def _link(href: str, label: str) -> str:
    label = label.strip() or href
    if urlsplit(href).scheme.lower() in _LINK_SCHEMES:
        return link(href, label)
    # A relative link (`../docs/x.md`) cannot be opened from Slack: show where it points instead.
    return escape(label if label == href else f"{label} ({href})")


def _task_box(text: str) -> str:
    box = _TASK_BOXES.get(text[:3])
    return f"{box} {text[3:].lstrip()}" if box and (len(text) == 3 or text[3] == " ") else text


def _quoted(text: str, depth: int) -> str:
    return text if not depth else "\n".join("> " * depth + line for line in text.split("\n"))
