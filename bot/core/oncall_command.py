"""The `/oncall` command language, parsed without any Slack client:

    /oncall [rotation]                                   who is on call now
    /oncall me                                           my next shifts
    /oncall override @who <rotation> [layer] <when>      put someone on call (see core/when.py)
    /oncall overrides [rotation]                         current and future overrides, Remove buttons
    /oncall swap <rotation> [layer] <when> [reason]      ask the rotation's channel for cover
    /oncall help

`[layer]` is the word after the rotation when it names one of its layers. A word there that is no
layer and cannot start a `<when>`, followed by one that can (`tertiary now for 4h`), is an unknown
layer; otherwise the words are read as `<when>` (and `tonight` gets the `<when>` help).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from bot.core.errors import BadInput
from bot.core.text import escape

USAGE = {
    "show": "/oncall [rotation]",
    "me": "/oncall me",
    "override": "/oncall override @who <rotation> [layer] <when>",
    "overrides": "/oncall overrides [rotation]",
    "swap": "/oncall swap <rotation> [layer] <when> [reason]",
    "test-page": "/oncall test-page",
}
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_WHEN_WORDS = frozenset({"now", "until", "till", "to", "for", "today", "tomorrow"})


@dataclass(frozen=True)
class OncallCommand:
    name: str  # show | me | override | overrides | swap | test-page | help
    rotation: str | None = None
    layer: str | None = None
    who_user: str | None = None  # a Slack user ID from a mention
    who_name: str | None = None  # a people key written as text
    words: tuple[str, ...] = ()  # <when> and what follows it


def help_text() -> str:
    lines = [f"`{usage}`" for usage in USAGE.values()]
    return (
        "On-call from Slack:\n"
        + "\n".join(lines)
        + "\n`<when>`: `now for 4h`, `until 18:00`, `tomorrow 09:00 for 8h`, "
        + "`2026-12-24T18:00 to 2026-12-26T09:00`"
    )


def parse(text: str, layers: Mapping[str, Collection[str]]) -> OncallCommand:
    """`layers`: each rotation's layer names (a rotation from PagerDuty has none)."""
    words = text.split()
    if not words:
        return OncallCommand("show")
    head = words[0].lower()
    if head in ("help", "-h", "--help"):
        return OncallCommand("help")
    if head == "me":
        return OncallCommand("me")
    if head == "test-page":  # a marked test page by every way the person can be reached
        return OncallCommand("test-page")
    if head == "overrides":
        return OncallCommand("overrides", rotation=words[1] if len(words) > 1 else None)
    if head == "override":
        return _override(words[1:], layers)
    if head == "swap":
        rotation, layer, rest = _rotation_and_layer(words[1:], layers, "swap")
        return OncallCommand("swap", rotation=rotation, layer=layer, words=tuple(rest))
    return OncallCommand("show", rotation=words[0])


def _override(words: list[str], layers: Mapping[str, Collection[str]]) -> OncallCommand:
    if not words or (words[0] in layers and not _is_who(words[0])):
        raise BadInput(f"Say who takes the shift: `{USAGE['override']}`.")
    mention = _MENTION.fullmatch(words[0])
    who_user = mention.group(1) if mention else None
    who_name = None if mention else words[0].removeprefix("@")
    rotation, layer, rest = _rotation_and_layer(words[1:], layers, "override")
    return OncallCommand("override", rotation, layer, who_user, who_name, tuple(rest))


def _is_who(word: str) -> bool:
    return word.startswith(("<@", "@"))


def _rotation_and_layer(
    words: list[str], layers: Mapping[str, Collection[str]], sub: str
) -> tuple[str, str | None, list[str]]:
    if not words:
        raise BadInput(f"Name the rotation: `{USAGE[sub]}`.")
    rotation, rest = words[0], words[1:]
    if rotation not in layers:
        known = ", ".join(sorted(layers)) or "none"
        raise BadInput(f"There is no rotation named {escape(repr(rotation))}. Rotations: {known}.")
    if rest and rest[0] in layers[rotation]:
        return rotation, rest[0], rest[1:]
    if rest and not _could_start_when(rest[0]) and len(rest) > 1 and _could_start_when(rest[1]):
        known = ", ".join(layers[rotation])
        raise BadInput(f"Rotation {rotation} has no layer {escape(repr(rest[0]))}. Layers: {known}.")
    return rotation, None, rest


def _could_start_when(word: str) -> bool:
    return word.lower() in _WHEN_WORDS or word[:1].isdigit()
