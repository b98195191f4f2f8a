"""How Slack shows a mrkdwn string to one reader: what pings, what links, what a date says.

Slack parses `<...>` as control sequences and decodes the entities `&amp;`, `&lt;`, `&gt;` everywhere
else (docs.slack.dev "Formatting message text"):
  * `<@U123>` / `<@U123|label>` mentions (pings) a user, shown as @their display name;
  * `<#C123>` / `<#C123|name>` links a channel;
  * `<!here>`, `<!channel>`, `<!everyone>`, `<!subteam^S123>` notify many people;
  * `<!date^<epoch>^<tokens>[^<link>]|<fallback>>` shows the time in the READER's time zone (their
    profile's `tz`), the fallback when it cannot be formatted;
  * anything else is a link, `<url>` or `<url|label>`.
Text outside those sequences is shown with its entities decoded. Bold/italic are not modelled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SEQUENCE = re.compile(r"<([^<>]*)>")
_DATE_TOKEN = re.compile(r"\{([a-z_]+)\}")


@dataclass
class Reading:
    text: str = ""  # as the reader sees it
    mentions: list[str] = field(default_factory=list)  # user IDs pinged
    broadcasts: list[str] = field(default_factory=list)  # here, channel, everyone, subteam^S1, other `!x`
    channels: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (url, label)
    dates: list[str] = field(default_factory=list)  # each date as shown to this reader


def decode(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _date_token(token: str, at: datetime) -> str | None:
    """One `{token}` as Slack fills it (24-hour clock; "pretty" forms without today/yesterday)."""
    long_date = f"{at:%B} {_ordinal(at.day)}, {at.year}"
    forms = {
        "date_num": f"{at:%Y-%m-%d}",
        "date": long_date,
        "date_pretty": long_date,
        "date_short": f"{at:%b} {at.day}, {at.year}",
        "date_short_pretty": f"{at:%b} {at.day}, {at.year}",
        "date_long": f"{at:%A}, {long_date}",
        "date_long_pretty": f"{at:%A}, {long_date}",
        "time": f"{at:%H:%M}",
        "time_secs": f"{at:%H:%M:%S}",
    }
    return forms.get(token)


def _date(body: str, zone: ZoneInfo) -> str:
    """`date^<epoch>^<tokens>[^link]|fallback` as shown to a reader in `zone`."""
    spec, _, fallback = body.partition("|")
    parts = spec.split("^")
    if len(parts) < 3 or not parts[1].isdigit():
        return decode(fallback)
    at = datetime.fromtimestamp(int(parts[1]), UTC).astimezone(zone)
    unknown = False

    def fill(match: re.Match[str]) -> str:
        nonlocal unknown
        value = _date_token(match.group(1), at)
        unknown = unknown or value is None
        return value or ""

    shown = _DATE_TOKEN.sub(fill, parts[2])
    return decode(fallback) if unknown else decode(shown)


def read(text: str, users: Mapping[str, dict[str, Any]], tz: str = "UTC") -> Reading:
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    reading = Reading()
    shown: list[str] = []
    pos = 0
    for match in _SEQUENCE.finditer(text):
        shown.append(decode(text[pos : match.start()]))
        pos = match.end()
        body = match.group(1)
        target, _, label = body.partition("|")
        if body.startswith("@"):
            user = target[1:]
            reading.mentions.append(user)
            profile = users.get(user, {}).get("profile", {})
            shown.append("@" + (profile.get("display_name") or user))
        elif body.startswith("#"):
            reading.channels.append(target[1:])
            shown.append("#" + decode(label or target[1:]))
        elif body.startswith("!date^"):
            date = _date(body[1:], zone)
            reading.dates.append(date)
            shown.append(date)
        elif body.startswith("!"):
            reading.broadcasts.append(target[1:])
            shown.append(decode(label) if label else "@" + target[1:])
        else:
            reading.links.append((decode(target), decode(label or target)))
            shown.append(decode(label or target))
    shown.append(decode(text[pos:]))
    reading.text = "".join(shown)
    return reading
