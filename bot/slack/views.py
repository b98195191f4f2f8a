"""Block Kit views of an incident: the pinned card, the topic and the announcement line.

The card tells a responder everything at a glance: status, severity, rotation and lead, who is
paged (and who could not be), who acknowledged when, what the escalation does next, the
description a person declared it with, and its alerts folded by kind (`card_alerts`).

Every alert- or user-supplied string goes through `escape` (or `link`) before it is placed in
mrkdwn, so `<!channel>` in an annotation arrives as text, not as a mention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.core.delivery_failures import continues_in_thread
from bot.core.durations import format_duration
from bot.core.escalation import StepPreview
from bot.core.silences import OFFERED, label
from bot.core.text import escape, fit, link, truncate
from bot.slack.card_alerts import alert_blocks
from bot.slack.card_people import PageView, people_text
from bot.slack.mrkdwn import actor as _who
from bot.slack.mrkdwn import slack_date

__all__ = ["PageView", "slack_date"]

DESCRIPTION_MAX = 2900  # the declare form allows 2900 characters
LINK_MAX = 2000  # a link inside a 3000-character text, with room for its label
_SEV_ICON = {"SEV1": ":red_circle:", "SEV2": ":large_orange_circle:", "SEV3": ":large_yellow_circle:"}
_STATUS_ICON = {
    "triggered": ":rotating_light:",
    "acknowledged": ":eyes:",
    "resolved": ":white_check_mark:",
    "closed": ":lock:",
}


@dataclass(frozen=True)
class AlertView:
    name: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    generator_url: str = ""
    ends_at: datetime | None = None


@dataclass(frozen=True)
class GroupView:
    """An alert group folded into a storm incident."""

    title: str
    severity: str
    status: str


@dataclass(frozen=True)
class IncidentView:
    id: int
    title: str
    severity: str
    status: str
    source: str
    created_at: datetime
    channel_id: str | None = None
    channel_name: str = ""
    external_url: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    alerts: Sequence[AlertView] = ()
    groups: Sequence[GroupView] = ()
    buttons: bool = True
    silences: bool = False  # offer Silence (an Alertmanager API is configured)
    silenced_until: datetime | None = None  # a card silence is active: until when, and who made it
    silenced_by: str | None = None
    rotation: str | None = None
    lead: str | None = None  # an actor, "slack:U123"
    description: str = ""  # what the person who declared it wrote (manual incidents)
    pages: Sequence[PageView] = ()
    next_step: StepPreview | None = None  # the pending escalation step, while unacknowledged
    pagerduty_assignees: tuple[str, ...] = ()
    conference_url: str = ""
    conference_number: str = ""
    truncated_alerts: int = 0  # alerts Alertmanager left out of the group


def topic(view: IncidentView) -> str:
    return fit(f"{view.severity} | {view.status} | {escape(view.title)}", 250)


def announcement(view: IncidentView, refused: str | None = None) -> str:
    """The line in the announce channel; `refused`: Slack's answer when no channel could be made and
    the incident goes on in this announcement's thread (the line says so)."""
    icon = _SEV_ICON.get(view.severity, "")
    if refused is not None:
        return fit(
            f"{icon} {view.severity} incident #{view.id}: {escape(view.title)} ({view.status}). "
            f"{continues_in_thread(refused)}.",
            3000,
        )
    where = f"<#{view.channel_id}>" if view.channel_id else "(channel pending)"
    return fit(f"{icon} {view.severity} incident {where}: {escape(view.title)} ({view.status})", 3000)


def alertmanager_link(external_url: str, labels: dict[str, str]) -> str | None:
    if not external_url.startswith(("http://", "https://")):
        return None
    matchers = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    base = f"{external_url.rstrip('/')}/#/alerts"
    url = f"{base}?filter={quote('{' + matchers + '}')}"
    # Long labels make a URL Slack refuses, and with it the whole card: then the unfiltered page.
    return next((u for u in (url, base) if len(u) <= LINK_MAX), None)


def card(view: IncidentView) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=fit(f"{view.severity} · {escape(view.title)}", 150))]
    if view.description:
        text = escape(truncate(view.description, DESCRIPTION_MAX))
        blocks.append(SectionBlock(text=MarkdownTextObject(text=fit(text, 3000))))
    blocks.append(SectionBlock(fields=_fields(view)))
    people = people_text(view)
    if people:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=people)))
    if view.silenced_until and view.status in ("triggered", "acknowledged"):
        silenced = f":no_bell: Silenced until {slack_date(view.silenced_until)} by {_who(view.silenced_by)}"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=silenced)]))
    if view.alerts or view.truncated_alerts:
        blocks.append(DividerBlock())
        # A PagerDuty incident's "source" is the PagerDuty incident itself: linked once, below.
        blocks += alert_blocks(
            view.alerts, truncated=view.truncated_alerts, source_links=view.source != "pagerduty"
        )
    if view.groups:
        blocks += _group_blocks(view.groups)
    if view.source == "pagerduty" and view.external_url.startswith(("http://", "https://")):
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=link(view.external_url, "Open in PagerDuty"))])
        )
    elif am := alertmanager_link(view.external_url, view.group_labels):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=link(am, "Open in Alertmanager"))]))
    if view.buttons and view.status in ("triggered", "acknowledged"):
        blocks.append(actions(view))
    return blocks


def _fields(view: IncidentView) -> list[MarkdownTextObject]:
    sev_icon = _SEV_ICON.get(view.severity, "")
    fields = [
        f"*Status*\n{_STATUS_ICON.get(view.status, '')} {view.status}",
        f"*Severity*\n{sev_icon} {view.severity}",
        f"*Opened*\n{slack_date(view.created_at)}",
        f"*Source*\n{escape(view.source)} · incident #{view.id}",
    ]
    if view.rotation:
        fields.append(f"*Rotation*\n{escape(truncate(view.rotation, 100))}")
    lead = _who(view.lead) if view.lead else "nobody yet (`/incident lead @someone`)"
    fields.append(f"*Lead*\n{lead}")
    return [MarkdownTextObject(text=text) for text in fields]


MAX_GROUP_LINES = 40


def _group_blocks(groups: Sequence[GroupView]) -> list[Block]:
    """The live list of a storm's groups, open ones first, within one section's 3000 characters."""
    open_count = sum(1 for g in groups if g.status in ("triggered", "acknowledged"))
    ordered = sorted(groups, key=lambda g: (g.status not in ("triggered", "acknowledged"), g.severity))
    lines = []
    for group in ordered[:MAX_GROUP_LINES]:
        icon = ":fire:" if group.status in ("triggered", "acknowledged") else ":white_check_mark:"
        lines.append(f"{icon} {group.severity} {escape(truncate(group.title, 120))}")
    if len(groups) > MAX_GROUP_LINES:
        lines.append(f"…and {len(groups) - MAX_GROUP_LINES} more")
    head = f"*Alert groups in this storm: {len(groups)}, {open_count} still firing*"
    return [
        DividerBlock(),
        SectionBlock(text=MarkdownTextObject(text=fit(head + "\n" + "\n".join(lines), 3000))),
    ]


def actions(view: IncidentView) -> ActionsBlock:
    value = str(view.id)
    elements = []
    if view.status == "triggered":
        elements.append(
            ButtonElement(text="Acknowledge", action_id="incident_ack", value=value, style="primary")
        )
    # Escalation runs while nobody has acknowledged, and PagerDuty runs its own incidents' escalation.
    if view.status == "triggered" and view.source != "pagerduty":
        elements.append(ButtonElement(text="Escalate", action_id="incident_escalate", value=value))
    elements.append(ButtonElement(text="Resolve", action_id="incident_resolve", value=value, style="danger"))
    if view.source == "alertmanager" and view.silenced_until:
        elements.append(ButtonElement(text="Unsilence", action_id="incident_unsilence", value=value))
    elif view.source == "alertmanager" and view.silences:
        elements += [
            ButtonElement(
                text=f"Silence {label(d)}",
                action_id=f"incident_silence_{label(d)}",
                value=f"{view.id}:{int(d.total_seconds())}",
            )
            for d in OFFERED
        ]
    return ActionsBlock(block_id=f"incident_actions_{view.id}", elements=elements)


def fallback_text(view: IncidentView) -> str:
    return f"{view.severity} {view.status}: {escape(view.title)}"


def page_message(view: IncidentView, label: str, page_id: int | None = None) -> tuple[str, list[Block]]:
    """The DM that pages someone: what, how bad, where to go, and the two buttons. The buttons name
    the page (`<incident>:p<page>`), so they act only for the person it was sent to."""
    summary = next((a.annotations.get("summary") for a in view.alerts if a.annotations.get("summary")), "")
    where = (
        f"<#{view.channel_id}>"
        if view.channel_id
        else f"#{view.channel_name}"
        if view.channel_name
        else "the channel"
    )
    lines = [
        f":rotating_light: *You are paged* ({escape(label)}): {_SEV_ICON.get(view.severity, '')} "
        f"*{view.severity} · {escape(view.title)}*",
    ]
    if summary and summary != view.title:
        lines.append(escape(summary))
    lines.append(f"Join {where} · opened {slack_date(view.created_at)}")
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=fit("\n".join(lines), 3000)))]
    if view.status == "triggered":
        value = f"{view.id}:p{page_id}" if page_id else str(view.id)
        blocks.append(
            ActionsBlock(
                block_id=f"page_actions_{view.id}",
                elements=[
                    ButtonElement(text="Acknowledge", action_id="incident_ack", value=value, style="primary"),
                    ButtonElement(text="Escalate now", action_id="incident_escalate", value=value),
                ],
            )
        )
    else:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=progress_line(view))]))
    return f"You are paged: {view.severity} {escape(view.title)}", blocks


def progress_line(view: IncidentView) -> str:
    if view.resolved_at:
        return (
            f":white_check_mark: Resolved by {_who(view.resolved_by)} after {_since(view, view.resolved_at)}"
        )
    if view.acknowledged_at:
        return (
            f":eyes: Acknowledged by {_who(view.acknowledged_by)} after {_since(view, view.acknowledged_at)}"
        )
    return f"Status: {view.status}"


def _since(view: IncidentView, when: datetime) -> str:
    return format_duration(when - view.created_at)
