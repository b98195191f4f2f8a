"""Text from alerts, notes, PagerDuty and people, written into Markdown (the post-mortem draft) as text.

An alert annotation, a note or a PagerDuty title is data: in the draft it must read exactly as it was
written, and it must not become structure. Unescaped, `# Outage` became a heading, `<img onerror=...>`
raw HTML, and a `javascript:` generatorURL a live link. CommonMark's backslash escapes make every ASCII
punctuation character literal, so:

* `\\`, backticks, `*`, `[`, `]`, `<`, `|` and `~` are escaped everywhere (code spans, emphasis, links,
  images, raw HTML and autolinks, table cells, strikethrough);
* `_` where it could start or end emphasis (not inside a word: `node_exporter` stays as it is), and `&`
  where it would start an entity (`&lt;`);
* at the start of the text (where the template may put it at the start of a line) the markers of
  headings, block quotes, lists and setext underlines (`#`, `>`, `-`, `+`, `=`, `1.`, `1)`);
* line breaks and runs of whitespace become one space: each value stays on its line (a list item, a
  table cell) and cannot start a code block with indentation.

Links are made only for http(s) and mailto URLs (`markdown_link`); anything else is its label as text.
`Markdown` marks text already made safe (the template filters return it), so it is not escaped twice.
"""

from __future__ import annotations

import re

_ALWAYS = re.compile(r"([\\`*\[\]<|~])")
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")  # not between two letters or digits
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_LINE_START = re.compile(r"^( ?)([#>+=-]|\d{1,9}(?=[.)](?: |$)))")
_WHITESPACE = re.compile(r"\s+")
_WEB_URL = re.compile(r"(?:https?://[^\s/?#]+|mailto:[^\s@]+@\S)", re.IGNORECASE)
# Characters that would end or confuse a link destination, percent-encoded (the URL means the same).
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f<>()\\\"'`]")


class Markdown(str):
    """Markdown the bot made safe already (escaped text, a checked link, a code span)."""

    __slots__ = ()


def markdown_text(value: object) -> Markdown:
    """`value` as Markdown text that renders as exactly these characters, on one line."""
    # One space for any run (a template's own ", " keeps its space; no indented code block).
    text = _WHITESPACE.sub(" ", str(value))
    text = _ALWAYS.sub(r"\\\1", text)
    text = _UNDERSCORE.sub(r"\\_", text)
    text = _ENTITY.sub(r"\\&", text)
    start = _LINE_START.match(text)
    if start:
        space, marker = start.groups()
        rest = text[start.end() :]
        text = f"{space}{marker}\\{rest}" if marker[0].isdigit() else f"{space}\\{marker}{rest}"
    return Markdown(text)


def markdown_code(value: object) -> Markdown:
    """`value` as an inline code span (labels, matchers), whatever backticks it holds."""
    text = _WHITESPACE.sub(" ", str(value)).strip()
    if not text:
        return Markdown("")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return Markdown(f"{fence}{pad}{text}{pad}{fence}")


def is_web_url(url: str) -> bool:
    """http(s) with a host, or mailto with an address: what a draft may link to."""
    return bool(_WEB_URL.match(url))


def markdown_link(url: object, label: object) -> Markdown:
    """`[label](url)` for an http(s) or mailto URL; otherwise the label alone, as text."""
    target = str(url).strip()
    if not is_web_url(target):
        return markdown_text(label)
    safe = _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), target)
    return Markdown(f"[{markdown_text(label)}]({safe})")
