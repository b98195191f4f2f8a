"""Runbooks: markdown files turned into numbered, checkable steps.

A runbook is `runbooks/<slug>.md` with optional YAML front matter (`title`, `alerts`, `owner`,
`severity`). The markdown is parsed with markdown-it-py, never with regexes over the text: the
steps are the items of top-level ordered lists and task lists (`- [ ]`), each filed under the
headings above it (`## Investigation`, `## Resolution › If Redis is down`). Fenced code blocks
inside an item belong to that step; nested lists stay part of their parent step.

Pure: text in, objects and problems out. Reading files is `bot.catalog.runbooks`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from markdown_it.token import Token

from bot.core.errors import ConfigProblem
from bot.core.runbook_mrkdwn import markdown_parser, plain_text, step_mrkdwn

__all__ = [
    "CodeBlock",
    "Runbook",
    "Step",
    "is_valid_slug",
    "parse_runbook",
    "step_mrkdwn",
]

SLUG_MAX = 100
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_FRONT_MATTER_KEYS = {"title": "text", "alerts": "list of alert names", "owner": "text", "severity": "text"}
_TASK_MARKERS = ("[ ]", "[x]", "[X]")
SECTION_SEPARATOR = " › "


@dataclass(frozen=True)
class CodeBlock:
    lang: str
    code: str


@dataclass(frozen=True)
class Step:
    number: int  # 1-based across the whole runbook, so "step 7" is unambiguous in a channel
    section: str  # "" when the step sits above every heading
    text: str  # markdown source of the item, code blocks excluded
    code: tuple[CodeBlock, ...] = ()
    line: int = 0  # 1-based line in the file, for problems and "edit this step" links

    def summary(self, limit: int = 200) -> str:
        """The step's text on one line, for the timeline and post-mortems, which leave its code out:
        the colon that introduced the code would end the sentence on nothing."""
        text = " ".join(self.text.split())
        text = text if len(text) <= limit else text[: limit - 1] + "…"
        return text.rstrip(" :") or text


@dataclass(frozen=True)
class Runbook:
    slug: str
    title: str
    alerts: tuple[str, ...] = ()
    owner: str | None = None
    severity: str | None = None
    steps: tuple[Step, ...] = ()
    source_file: str = ""
    # Line of each entry of `alerts` in the file, so a duplicate claim can point at it.
    alert_lines: tuple[int, ...] = field(default=(), compare=False)

    def sections(self) -> tuple[str, ...]:
        """Section names in order of first appearance."""
        return tuple(dict.fromkeys(step.section for step in self.steps))

    def step(self, number: int) -> Step | None:
        return self.steps[number - 1] if 1 <= number <= len(self.steps) else None


def is_valid_slug(slug: str) -> bool:
    """True when `slug` may be looked up at all: no path separators, no `..`, lowercase."""
    return len(slug) <= SLUG_MAX and bool(_SLUG_RE.match(slug)) and ".." not in slug


def parse_runbook(slug: str, text: str, file: str = "") -> tuple[Runbook | None, list[ConfigProblem]]:
    """Parse one runbook. Returns None only when there is nothing usable (bad slug or no steps);
    a runbook with front-matter problems is still returned (minus the bad fields) so the bot
    keeps working while `incidentbot check` reports the problems."""
    file = file or f"runbooks/{slug}.md"
    problems: list[ConfigProblem] = []
    if not is_valid_slug(slug):
        problems.append(
            ConfigProblem(
                file, 0, f"file name {slug!r} is not a valid runbook slug (lowercase a-z, 0-9, '.', '_', '-')"
            )
        )
        return None, problems
    meta, meta_lines, body, offset = _front_matter(text.removeprefix("\ufeff"), file, problems)
    tokens = markdown_parser().parse(body)
    heading_title, steps = _steps(tokens, body.splitlines(), offset)
    if not steps:
        problems.append(
            ConfigProblem(
                file,
                0,
                "runbook has no steps: add a numbered list (1.) or a task list (- [ ]) under a ## section",
            )
        )
        return None, problems
    alerts = meta.get("alerts", ())
    runbook = Runbook(
        slug=slug,
        title=meta.get("title") or heading_title or slug,
        alerts=tuple(alerts),
        owner=meta.get("owner"),
        severity=meta.get("severity"),
        steps=tuple(steps),
        source_file=file,
        alert_lines=tuple(meta_lines.get("alerts", ())),
    )
    return runbook, problems


# --- front matter -----------------------------------------------------------------------------


def _front_matter(
    text: str, file: str, problems: list[ConfigProblem]
) -> tuple[dict[str, Any], dict[str, list[int]], str, int]:
    """Split off `---` front matter; returns (valid fields, alert lines, body, body line offset)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return {}, {}, text, 0
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        problems.append(ConfigProblem(file, 1, "front matter starting here is never closed with '---'"))
        return {}, {}, text, 0
    source = "".join(lines[1:end])
    body = "".join(lines[end + 1 :])
    meta, alert_lines = _validate_front_matter(source, file, problems)
    return meta, {"alerts": alert_lines}, body, end + 1


def _validate_front_matter(
    source: str, file: str, problems: list[ConfigProblem]
) -> tuple[dict[str, Any], list[int]]:
    """Check the schema with line numbers: compose() keeps each node's position, safe_load the values."""

    def at(node: yaml.Node) -> int:
        return node.start_mark.line + 2  # +1 for 1-based, +1 for the opening '---'

    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(ConfigProblem(file, line, f"front matter is not valid YAML: {reason}"))
        return {}, []
    if root is None:
        return {}, []
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        problems.append(ConfigProblem(file, at(root), "front matter must be a mapping of key: value"))
        return {}, []

    meta: dict[str, Any] = {}
    alert_lines: list[int] = []
    seen: set[str] = set()
    for key_node, value_node in root.value:
        key, line = key_node.value, at(key_node)
        if key not in _FRONT_MATTER_KEYS:
            message = f"unknown front matter key {key!r} (allowed: {', '.join(_FRONT_MATTER_KEYS)})"
            problems.append(ConfigProblem(file, line, message))
            continue
        if key in seen:
            problems.append(ConfigProblem(file, line, f"front matter key {key!r} appears twice"))
            continue
        seen.add(key)
        value = data.get(key)
        if key == "alerts":
            meta["alerts"], alert_lines = _alerts(value, value_node, file, problems, at)
        elif isinstance(value, str) and value.strip():
            meta[key] = value.strip()
        else:
            problems.append(ConfigProblem(file, line, f"{key!r} must be non-empty text, got {_kind(value)}"))
    return meta, alert_lines


def _alerts(
    value: Any, node: yaml.Node, file: str, problems: list[ConfigProblem], at: Any
) -> tuple[list[str], list[int]]:
    if not isinstance(value, list) or not isinstance(node, yaml.SequenceNode):
        problems.append(
            ConfigProblem(
                file,
                at(node),
                f"'alerts' must be a list of alert names, e.g. [WeaviateDown], got {_kind(value)}",
            )
        )
        return [], []
    names: list[str] = []
    lines: list[int] = []
    for item, item_node in zip(value, node.value, strict=True):
        if not isinstance(item, str) or not item.strip():
            problems.append(ConfigProblem(file, at(item_node), f"alert name must be text, got {_kind(item)}"))
        elif item.strip() in names:
            problems.append(ConfigProblem(file, at(item_node), f"alert {item.strip()!r} is listed twice"))
        else:
            names.append(item.strip())
            lines.append(at(item_node))
    return names, lines


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


# --- steps ------------------------------------------------------------------------------------


def _steps(tokens: list[Token], lines: list[str], offset: int) -> tuple[str | None, list[Step]]:
    """Walk top-level blocks: h1 gives the title, h2+ the section, top-level list items the steps."""
    title: str | None = None
    headings: dict[int, str] = {}
    steps: list[Step] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open" and tok.level == 0:
            level, text = int(tok.tag[1:]), plain_text(tokens[i + 1])
            if level == 1:
                title = title or text or None
            else:
                headings = {lvl: name for lvl, name in headings.items() if lvl < level}
                headings[level] = text
        elif tok.type == "list_item_open" and tok.level == 1:
            end = next(
                j
                for j in range(i + 1, len(tokens))
                if tokens[j].type == "list_item_close" and tokens[j].level == tok.level
            )
            section = SECTION_SEPARATOR.join(headings[lvl] for lvl in sorted(headings) if headings[lvl])
            step = _step(tokens[i : end + 1], lines, offset, len(steps) + 1, section)
            if step is not None:
                steps.append(step)
            i = end
        i += 1
    return title, steps


def _step(item: list[Token], lines: list[str], offset: int, number: int, section: str) -> Step | None:
    opener = item[0]
    ordered = opener.markup in (".", ")")
    assert opener.map is not None
    start, end = opener.map
    code_tokens = [t for t in item if t.type in ("fence", "code_block") and t.map]
    code_lines = {n for t in code_tokens for n in range(*t.map)}  # type: ignore[misc]
    marker = opener.info + opener.markup if ordered else opener.markup
    kept = [(n, lines[n].expandtabs(4)) for n in range(start, min(end, len(lines))) if n not in code_lines]
    text = _dedent_item(kept, start, marker)
    is_task = _task_marker(text) is not None
    if not ordered and not is_task:
        return None  # a plain bullet list is prose (e.g. a list of symptoms), not a checkable step
    if is_task:
        text = text[3:].lstrip(" ")
    code = tuple(CodeBlock(lang=(t.info.split() or [""])[0], code=t.content) for t in code_tokens)
    return Step(number=number, section=section, text=text.strip("\n"), code=code, line=offset + start + 1)


def _dedent_item(kept: list[tuple[int, str]], start: int, marker: str) -> str:
    """The item's source without its list marker, continuation lines shifted left to match."""
    out: list[str] = []
    indent = 0
    for n, line in kept:
        if n == start:
            lead = len(line) - len(line.lstrip(" "))
            rest = line.lstrip(" ")[len(marker) :]
            gap = len(rest) - len(rest.lstrip(" "))
            gap = 1 if gap == 0 or gap > 4 or not rest.strip() else gap  # CommonMark's 1-4 space rule
            indent = lead + len(marker) + gap
            out.append(rest[gap:] if gap <= len(rest) else "")
        else:
            lead = len(line) - len(line.lstrip(" "))
            out.append(line[min(lead, indent) :])
    return "\n".join(line.rstrip() for line in out)


def _task_marker(content: str) -> str | None:
    for marker in _TASK_MARKERS:
        if content.startswith(marker) and (len(content) == 3 or content[3] in " \t\n"):
            return marker
    return None
