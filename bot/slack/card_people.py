"""The incident card's "who is on it" section: who is paged (and who could not be), who
acknowledged and resolved it and when, what the escalation does next, and for PagerDuty incidents
PagerDuty's assignees and conference bridge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core.durations import format_duration
from bot.core.escalation import StepPreview
from bot.core.text import escape, fit, link, truncate
from bot.slack.mrkdwn import actor, person, slack_date

if TYPE_CHECKING:
    from bot.slack.views import IncidentView

MAX_PEOPLE = 15  # names per line; more are counted
NO_SLACK_USER = "users_not_found"


@dataclass(frozen=True)
class PageView:
    """One page of the incident: whom, for what, and if it could not be delivered, why."""

    name: str  # people.yaml display name (or key)
    slack_user: str | None
    label: str  # "primary, step 1", "paged by hand"
    failure: str | None = None  # Slack's error code when the page failed for good


def people_text(view: IncidentView) -> str | None:
    """The section's mrkdwn, or None when there is nothing to say yet."""
    lines = []
    paged, failed = _pages(view.pages)
    if paged:
        lines.append("*Paged:* " + _names(paged))
    elif view.status == "triggered" and view.source != "pagerduty" and not failed:
        lines.append("*Paged:* nobody yet")
    if failed:
        lines.append(":warning: *Could not page:* " + _names(failed))
    if view.pagerduty_assignees:
        shown = ", ".join(escape(truncate(n, 80)) for n in view.pagerduty_assignees[:MAX_PEOPLE])
        more = len(view.pagerduty_assignees) - MAX_PEOPLE
        lines.append(f"*Assigned in PagerDuty:* {shown}" + (f" +{more} more" if more > 0 else ""))
    bridge = _bridge(view.conference_url, view.conference_number)
    if bridge:
        lines.append(f":telephone_receiver: *Conference bridge:* {bridge}")
    if view.acknowledged_at:
        lines.append(f"*Acknowledged* by {_when(view, view.acknowledged_by, view.acknowledged_at)}")
    if view.resolved_at:
        lines.append(f"*Resolved* by {_when(view, view.resolved_by, view.resolved_at)}")
    if view.next_step is not None:
        lines.append(f"*Next:* {next_step_text(view.next_step)}")
    return fit("\n".join(lines), 3000) if lines else None


def next_step_text(step: StepPreview) -> str:
    """`step 2 (secondary: <@U02SARAH>) at <date>`, `final @here notice at <date>`."""
    at = f"at {slack_date(step.due_at)}"
    if step.final_notice:
        return f"final @{step.channel_mention or 'here'} notice {at}"
    whom = [
        (f"{escape(layer)}: " if layer else "") + person(p.display_name or p.name, p.slack_id)
        for layer, p in step.people
    ]
    whom += [escape(via) for via in step.pagerduty]
    paged = f" ({', '.join(whom[:MAX_PEOPLE])}{' …' if len(whom) > MAX_PEOPLE else ''})" if whom else ""
    mention = f" with @{step.channel_mention}" if step.channel_mention else ""
    return f"{step.label}{paged}{mention} {at}"


def _pages(pages: Sequence[PageView]) -> tuple[list[str], list[str]]:
    """(paged, could not page) as text, one entry per person: their latest page decides."""
    latest: dict[str, PageView] = {}
    for page in pages:
        key = page.slack_user or page.name
        latest.pop(key, None)
        latest[key] = page
    paged, failed = [], []
    for page in latest.values():
        who = f"{person(page.name, page.slack_user)} ({escape(page.label)})"
        if page.failure is None:
            paged.append(who)
        else:
            why = "no Slack user" if page.failure == NO_SLACK_USER else f"Slack answered {page.failure}"
            failed.append(f"{who}: {escape(why)}")
    return paged, failed


def _names(items: list[str]) -> str:
    more = len(items) - MAX_PEOPLE
    return " · ".join(items[:MAX_PEOPLE]) + (f" +{more} more" if more > 0 else "")


def _when(view: IncidentView, who: str | None, at: datetime) -> str:
    return f"{actor(who)} {slack_date(at)} (after {format_duration(at - view.created_at)})"


def _bridge(url: str, number: str) -> str:
    parts = []
    if url.startswith(("http://", "https://")) and len(url) <= 1000:
        parts.append(link(url, "Join the bridge"))
    elif url:
        parts.append(escape(truncate(url, 200)))
    if number:
        parts.append(escape(truncate(number, 100)))
    return " · ".join(parts)
