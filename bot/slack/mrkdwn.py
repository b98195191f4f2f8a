"""Small pieces of Slack mrkdwn the bot writes itself: dates and mentions of people."""

from __future__ import annotations

import re
from datetime import datetime

from bot.core.text import escape

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def slack_date(when: datetime) -> str:
    """A date Slack renders in each reader's time zone, with a UTC fallback text."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"


def actor(who: str | None) -> str:
    """An actor as stored (`slack:U123`, `alertmanager`, `pagerduty:Alice`): a mention for a Slack
    user (it shows their name to every reader), else the escaped text."""
    if not who:
        return "someone"
    if who.startswith("slack:") and _USER_ID.fullmatch(who.removeprefix("slack:")):
        return f"<@{who.removeprefix('slack:')}>"
    return escape(who)


def person(name: str, slack_user: str | None = None) -> str:
    """A person: a mention when their Slack ID is known, else their (escaped) name."""
    if slack_user and _USER_ID.fullmatch(slack_user):
        return f"<@{slack_user}>"
    return escape(name)
