"""Block Kit views of an incident: the pinned card, the topic and the announcement line.

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
from bot.core.silences import OFFERED, label
from bot.core.text import escape, fit, link, truncate

MAX_ALERTS_ON_CARD = 10
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
    truncated_alerts: int = 0  # alerts Alertmanager left out of the group (max_alerts)


def slack_date(when: datetime) -> str:
    """A date Slack renders in each reader's time zone, with a UTC fallback text."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"


def _who(actor: str | None) -> str:
    if not actor:
        return "someone"
    if actor.startswith("slack:"):
        return f"<@{actor.removeprefix('slack:')}>"
    return escape(actor)


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


def _alert_block(alert: AlertView) -> SectionBlock:
    icon = ":fire:" if alert.status == "firing" else ":white_check_mark:"
    lines = [f"{icon} *{escape(alert.name or 'alert')}* · {alert.status} since {slack_date(alert.starts_at)}"]
    for key in ("summary", "description"):
        if alert.annotations.get(key):
            lines.append(f"*{key.capitalize()}:* {escape(alert.annotations[key])}")
    labels = " ".join(
        f"`{escape(k)}={escape(v)}`" for k, v in sorted(alert.labels.items()) if k != "alertname"
    )
    if labels:
        lines.append(labels)
    if alert.generator_url.startswith(("http://", "https://")):
        lines.append(link(alert.generator_url, "Source graph"))
    return SectionBlock(text=MarkdownTextObject(text=fit("\n".join(lines), 3000)))


def card(view: IncidentView) -> list[Block]:
    sev_icon = _SEV_ICON.get(view.severity, "")
    blocks: list[Block] = [
        HeaderBlock(text=fit(f"{view.severity} · {escape(view.title)}", 150)),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Status*\n{_STATUS_ICON.get(view.status, '')} {view.status}"),
                MarkdownTextObject(text=f"*Severity*\n{sev_icon} {view.severity}"),
                MarkdownTextObject(text=f"*Opened*\n{slack_date(view.created_at)}"),
                MarkdownTextObject(text=f"*Source*\n{escape(view.source)} · incident #{view.id}"),
            ]
        ),
    ]
    progress = []
    if view.acknowledged_at:
        progress.append(
            f"Acknowledged by {_who(view.acknowledged_by)} after {_since(view, view.acknowledged_at)}"
        )
    if view.resolved_at:
        progress.append(f"Resolved by {_who(view.resolved_by)} after {_since(view, view.resolved_at)}")
    if progress:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(progress))]))
    if view.silenced_until and view.status in ("triggered", "acknowledged"):
        silenced = f":no_bell: Silenced until {slack_date(view.silenced_until)} by {_who(view.silenced_by)}"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=silenced)]))
    if view.alerts:
        blocks.append(DividerBlock())
        for alert in view.alerts[:MAX_ALERTS_ON_CARD]:
            blocks.append(_alert_block(alert))
        hidden = len(view.alerts) - MAX_ALERTS_ON_CARD
        if hidden > 0:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {hidden} more alerts")]))
    if view.truncated_alerts > 0:
        # Alertmanager's max_alerts kept these out of the webhook: the group is bigger than the list.
        truncated = f"… and {view.truncated_alerts} more (truncated by Alertmanager)"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncated)]))
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
