"""The alert list of the incident card: one section per distinct alert (`bot.core.alert_digest`).

A 60-alert group reads as one section "×60" with its summary and description once and the labels
that differ listed compactly (`instance: api-1, api-2, api-3 +57 more`); 1,600 alerts stay within
a few kilobytes and far inside Slack's 50 blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.core.alert_digest import AlertDigest, AlertLike, digest
from bot.core.text import escape, fit, link, truncate
from bot.slack.mrkdwn import slack_date

MAX_DIGESTS = 10  # sections of alerts on the card; the rest are counted in one line
SECTION_MAX = 1500  # characters per section: the card stays readable (Slack allows 3000)
MAX_LABELS = 12  # shared labels shown per section
MAX_DIFFERING = 4  # labels that differ, shown per section
MAX_VALUES = 5  # values shown per differing label
VALUE_MAX = 60
DESCRIPTION_MAX = 500
MAX_DESCRIPTIONS = 3
URL_MAX = 1000  # a longer source URL is left off rather than cut (a cut URL leads nowhere)


def alert_blocks(
    alerts: Sequence[AlertLike], *, truncated: int = 0, source_links: bool = True
) -> list[Block]:
    """Sections for the alerts, a line for those left off the card, and one for those Alertmanager
    left out of the group (`truncated`: its `truncatedAlerts`). `source_links`: show each alert's
    generator URL (not for PagerDuty incidents, whose "source" is the incident itself)."""
    digests = digest(alerts)
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=_section(d, source_links))) for d in digests[:MAX_DIGESTS]
    ]
    notes = []
    hidden = digests[MAX_DIGESTS:]
    if hidden:
        count = sum(d.count for d in hidden)
        notes.append(f"… and {count} more alert{'s' if count != 1 else ''} ({len(hidden)} more kinds)")
    if truncated > 0:
        notes.append(f"… and {truncated} more (truncated by Alertmanager)")
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="\n".join(notes))]))
    return blocks


def _section(d: AlertDigest, source_links: bool) -> str:
    icon = ":fire:" if d.firing else ":white_check_mark:"
    head = f"{icon} *{escape(truncate(d.name or 'alert', 150))}*"
    if d.count > 1:
        head += f" ×{d.count}"
    head += f" · {_state(d)}"
    lines = [head]
    if d.summary:
        lines.append(f"*Summary:* {escape(truncate(d.summary, DESCRIPTION_MAX))}")
    if len(d.descriptions) == 1:
        lines.append(f"*Description:* {escape(truncate(d.descriptions[0], DESCRIPTION_MAX))}")
    elif d.descriptions:
        shown = [f"• {escape(truncate(text, 200))}" for text in d.descriptions[:MAX_DESCRIPTIONS]]
        more = len(d.descriptions) - MAX_DESCRIPTIONS
        lines.append(f"*Descriptions ({len(d.descriptions)} different):*")
        lines += shown + ([f"• +{more} more"] if more > 0 else [])
    if source_links and d.source_url.startswith(("http://", "https://")) and len(d.source_url) <= URL_MAX:
        lines.append(link(d.source_url, "Source graph"))
    common = [f"`{escape(_value(k))}={escape(_value(v))}`" for k, v in d.common[:MAX_LABELS]]
    if len(d.common) > MAX_LABELS:
        common.append(f"+{len(d.common) - MAX_LABELS} more labels")
    if common:
        lines.append(" ".join(common))
    for key, values in d.differing[:MAX_DIFFERING]:
        shown = ", ".join(escape(_value(v) or '""') for v in values[:MAX_VALUES])
        more = f" +{len(values) - MAX_VALUES} more" if len(values) > MAX_VALUES else ""
        lines.append(f"*{escape(_value(key))}:* {shown}{more}")
    if len(d.differing) > MAX_DIFFERING:
        lines.append(f"+{len(d.differing) - MAX_DIFFERING} more labels that differ")
    return fit("\n".join(lines), SECTION_MAX)


def _state(d: AlertDigest) -> str:
    """`firing since <start>`, `resolved <end>`, or both counts for a digest of mixed alerts."""
    ended = f" {slack_date(d.last_resolved)}" if d.last_resolved else ""
    if d.count == 1:
        return f"firing since {slack_date(d.started)}" if d.firing else f"resolved{ended}"
    if not d.resolved:
        return f"firing since {slack_date(d.started)}"
    if not d.firing:
        return f"all resolved, the last{ended}" if ended else "all resolved"
    last = f", the last{ended}" if ended else ""
    return f"{d.firing} firing since {slack_date(d.started)} · {d.resolved} resolved{last}"


def _value(text: str) -> str:
    return truncate(" ".join(text.split()), VALUE_MAX)
