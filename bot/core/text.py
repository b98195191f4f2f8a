"""Text that reaches Slack: mrkdwn escaping, slugs and channel names.

Slack treats `<...>` as control sequences (mentions, `<!channel>`, disguised links), so every
piece of alert or user text is escaped before it is placed into a message. Slack's own rule is
to escape exactly `&`, `<` and `>`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime

from bot.core.markdown import Markdown, markdown_link, markdown_text

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})

CHANNEL_NAME_MAX = 80
TITLE_MAX = 200  # an incident's title: alert summaries can be kilobytes, and titles go everywhere


def escape(text: str) -> str:
    """Escape untrusted text for a mrkdwn or plain_text field (no mentions, no links)."""
    return text.translate(_ESCAPES)


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_SLACK_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>")


def escape_keeping_mentions(text: str, users: Iterable[str]) -> str:
    """`escape`, except mentions of `users`, which the bot wrote itself (a timeline entry lists them
    in its data): alert or typed text cannot add to that list, so it cannot ping anyone."""
    out = escape(text)
    for user in users:
        if _USER_ID.fullmatch(user):
            out = out.replace(f"&lt;@{user}&gt;", f"<@{user}>")
    return out


def slack_unescape(text: str) -> str:
    """Text as a person typed it, from Slack's encoding of messages and slash commands (Slack
    sends `&`, `<`, `>` as entities; mentions arrive as `<@U123>`)."""
    text = _SLACK_MENTION.sub(r"<@\1>", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# What may be a link target: in `<...|label>` anything else is Slack syntax (`!channel`, `@U123`).
_WEB_URL = re.compile(r"(?:https?://[^\s/?#]+|mailto:\S)", re.IGNORECASE)


def link(url: str, label: str) -> str:
    """A mrkdwn link whose URL and label cannot break out of the `<url|label>` syntax; a URL that
    is not http(s) or mailto gives the label alone, so it cannot become a mention."""
    if not _WEB_URL.match(url):
        return escape(label)
    safe_url = url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C").replace(" ", "%20")
    return f"<{safe_url}|{escape(label).replace('|', '¦')}>"


# Markup a person may type and keep (`safe_mrkdwn`): a user mention, a channel link, a web or mail link.
_TYPED_SEQUENCE = re.compile(r"<([^<>]*)>")
_TYPED_USER = re.compile(r"@([UW][A-Z0-9]{2,})(?:\|.*)?", re.DOTALL)
_TYPED_CHANNEL = re.compile(r"#([CG][A-Z0-9]{2,})(?:\|(.*))?", re.DOTALL)
_CHANNEL_LABEL = re.compile(r"[a-z0-9_-]{1,80}")
_BROADCAST = re.compile(r"!(?:here|channel|everyone|subteam\^[A-Z0-9]+)")
_TYPED_URL = re.compile(r"(?:https?://[^\s/?#|]+|mailto:[^\s|]+)[^\s|]*", re.IGNORECASE)


def safe_mrkdwn(typed: str) -> str:
    """Text a person typed in Slack (as typed: `slack_unescape`d), escaped except for its mentions
    of users (`<@U1>`), channel links (`<#C1>`, `<#C1|name>`) and http(s)/mailto links (`<url>`,
    `<url|label>`): a note can link a dashboard and ask a colleague. Every `<!...>` (`<!channel>`,
    `<!here>`, `<!everyone>`, `<!subteam^...>`, `<!date...>`) and every other scheme is shown as
    text: a note must not broadcast through the bot, nor link `javascript:`. Alert text: `escape`."""
    out: list[str] = []
    pos = 0
    for match in _TYPED_SEQUENCE.finditer(typed):
        out.append(escape(typed[pos : match.start()]))
        out.append(_typed_markup(match.group(1)) or escape(match.group(0)))
        pos = match.end()
    out.append(escape(typed[pos:]))
    return "".join(out)


def _typed_markup(body: str) -> str | None:
    """The safe sequence for the inside of one typed `<...>`, or None to show it as text."""
    if user := _TYPED_USER.fullmatch(body):
        return f"<@{user.group(1)}>"
    if channel := _TYPED_CHANNEL.fullmatch(body):
        name = channel.group(2)
        return (
            f"<#{channel.group(1)}|{name}>"
            if name and _CHANNEL_LABEL.fullmatch(name)
            else f"<#{channel.group(1)}>"
        )
    target, bar, label = body.partition("|")
    if not _TYPED_URL.fullmatch(target):
        return None
    return link(target, label) if bar and label.strip() else f"<{target}>"


def slack_to_markdown(text: str, user_name: Callable[[str], str]) -> Markdown:
    """Slack markup in recorded text (typed notes, the bot's own mentions) as Markdown that reads as
    Slack showed it: `<@U1>` -> `user_name("U1")`, `<#C1|ops>` -> #ops, `<url|label>` -> a link
    (http(s)/mailto only), `<!here>` -> @here as text, `<!date^...|fallback>` -> fallback. Anything
    else in angle brackets is shown as written, and every other character is Markdown text (see
    bot/core/markdown.py), so nothing becomes structure."""

    def piece(match: re.Match[str]) -> Markdown:
        body = match.group(1)
        target, bar, label = body.partition("|")
        if user := _TYPED_USER.fullmatch(body):
            return markdown_text(user_name(user.group(1)))
        if channel := _TYPED_CHANNEL.fullmatch(body):
            return markdown_text("#" + (channel.group(2) or channel.group(1)))
        if body.startswith("!date^"):
            return markdown_text(label)
        if _BROADCAST.fullmatch(target):
            return markdown_text("@" + (label or target[1:].partition("^")[0]))
        if _TYPED_URL.fullmatch(target):
            return markdown_link(target, label if bar and label.strip() else target)
        return markdown_text(match.group(0))

    out, pos = [], 0
    for match in _TYPED_SEQUENCE.finditer(text):
        out += [markdown_text(text[pos : match.start()]), piece(match)]
        pos = match.end()
    out.append(markdown_text(text[pos:]))
    return Markdown("".join(out))


def slack_date(at: datetime, tokens: str, fallback: str) -> str:
    """A time Slack shows in each reader's own zone (`tokens` such as "{date_short_pretty} {time}");
    `fallback` (say, in UTC or the rotation's zone) where a client cannot format it."""
    return f"<!date^{int(at.timestamp())}^{tokens}|{escape(fallback).replace('|', '¦')}>"


def truncate(text: str, limit: int, marker: str = "…") -> str:
    """Cut raw text (escape it afterwards); for text already escaped, `fit`."""
    return text if len(text) <= limit else text[: max(0, limit - len(marker))] + marker


def safe_cut(text: str, cut: int) -> int:
    """Move a cut in escaped mrkdwn back so it splits neither a `<...>` nor an `&entity;`."""
    lt = text.rfind("<", 0, cut)
    if lt > 0 and lt > text.rfind(">", 0, cut):
        cut = lt  # inside a <url|label> link
    amp = text.rfind("&", max(0, cut - 5), cut)
    if amp > 0 and ";" not in text[amp:cut]:
        cut = amp  # inside &amp; / &lt; / &gt;
    return max(cut, 1)


def fit(text: str, limit: int) -> str:
    """Escaped text cut to `limit` without splitting an entity or a link."""
    if len(text) <= limit:
        return text
    return text[: safe_cut(text, limit - 1)] + "…"


def slugify(text: str, max_len: int = 60) -> str:
    """Lowercase ASCII slug of `a-z0-9-` (CamelCase split into words), never empty."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].strip("-") or "incident"


def channel_name(prefix: str, day: str, title: str, suffix: int = 1) -> str:
    """`inc-20261122-weaviate-down`, `...-2` for the second one: Slack's rules, at most 80 chars."""
    tail = "" if suffix <= 1 else f"-{suffix}"
    head = f"{prefix}-{day}-"
    room = CHANNEL_NAME_MAX - len(head) - len(tail)
    return f"{head}{slugify(title, room)}{tail}"


def with_suffix(name: str, suffix: int) -> str:
    """`<name>-N` within Slack's 80 characters: for a name taken in Slack outside the bot. (Its
    `-N` cannot be stripped to find a base: a title may end in digits, like "HTTP 502".)"""
    tail = f"-{suffix}"
    return name[: CHANNEL_NAME_MAX - len(tail)].rstrip("-") + tail


_SLACK_TS = re.compile(r"\d{1,12}(\.\d{1,6})?")


def slack_ts_seconds(ts: object) -> float | None:
    """A Slack message ts ("1700000000.123456") as epoch seconds; None for anything else
    (a signed event can still carry "nan" or "1e400", which float() would accept)."""
    if not isinstance(ts, str) or not _SLACK_TS.fullmatch(ts):
        return None
    return float(ts)
