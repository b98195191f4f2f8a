"""Alert groups: normalised notifications and what each one means for its incident.

The decision carries a named reason (like Alertmanager's own dedup stage) so that the service
can log why a webhook opened, joined, resolved or changed nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.core.incident import Severity, severity_from_label


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    status: str  # "firing" | "resolved"
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None while firing (Alertmanager sends year 1 for "unset")
    generator_url: str = ""

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class Notification:
    """One Alertmanager webhook (payload version 4), already validated."""

    receiver: str
    status: str
    group_key: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0

    @property
    def key(self) -> str:
        """What identifies the incident while it is open: receiver plus group key."""
        return f"{self.receiver}|{self.group_key}"

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def alertname(self) -> str:
        return (
            self.group_labels.get("alertname")
            or self.common_labels.get("alertname")
            or next((a.name for a in self.alerts if a.name), "")
        )

    @property
    def title(self) -> str:
        summary = self.common_annotations.get("summary")
        if summary:
            return summary
        others = [f"{k}={v}" for k, v in sorted(self.group_labels.items()) if k != "alertname"]
        return " ".join([self.alertname or "Alert", *others]).strip()

    @property
    def severity(self) -> Severity:
        labels = self.common_labels or (self.alerts[0].labels if self.alerts else {})
        return severity_from_label(labels.get("severity"))


def unquote_receiver(receiver: str) -> str:
    """Alertmanager regexp-quotes the receiver name in webhooks (`team\\.ops`)."""
    return re.sub(r"\\(.)", r"\1", receiver)


class Reason(StrEnum):
    OPEN = "first notification"
    REFIRE = "group fired again after resolution"
    JOIN = "new alerts"
    UPDATE = "alerts changed"
    RESOLVE = "all alerts resolved"
    REPEAT = "repeat or retry, nothing changed"
    IGNORE_RESOLVED = "resolved group with no open incident"
    STALE = "retry of a notification for an already resolved incident"
    HEARTBEAT = "heartbeat"
    FOLD = "folded into a storm incident"


@dataclass(frozen=True)
class GroupDecision:
    reason: Reason
    added: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()
    refired: tuple[Alert, ...] = ()
    changed: tuple[Alert, ...] = field(default=())  # same status, new annotations or end time

    @property
    def opens(self) -> bool:
        return self.reason in (Reason.OPEN, Reason.REFIRE)

    @property
    def resolves(self) -> bool:
        return self.reason is Reason.RESOLVE

    @property
    def writes(self) -> bool:
        return self.reason not in (Reason.REPEAT, Reason.IGNORE_RESOLVED, Reason.STALE, Reason.HEARTBEAT)


@dataclass(frozen=True)
class KnownAlert:
    status: str
    starts_at: datetime
    annotations: Mapping[str, str]


def decide(
    note: Notification,
    open_alerts: Mapping[str, KnownAlert] | None,
    previous_alerts: Mapping[str, KnownAlert] | None = None,
    *,
    truncated: int = 0,
) -> GroupDecision:
    """What `note` means, given the alerts of the group's open incident (None: none open).

    `previous_alerts` are those of the group's last resolved incident: a firing notification
    that only repeats them (same fingerprints, same start) is a late retry, not a new fire.
    `truncated` is how many alerts Alertmanager left out of the open incident's last notification
    (`max_alerts`): a new count with the same alerts is an update (the card shows it).
    """
    if open_alerts is None:
        if not note.firing:
            return GroupDecision(Reason.IGNORE_RESOLVED)
        firing = tuple(a for a in note.alerts if a.firing)
        if previous_alerts and all(
            a.fingerprint in previous_alerts and previous_alerts[a.fingerprint].starts_at == a.starts_at
            for a in firing
        ):
            return GroupDecision(Reason.STALE)
        return GroupDecision(Reason.REFIRE if previous_alerts is not None else Reason.OPEN, added=note.alerts)

    added, resolved, refired, changed = [], [], [], []
    for alert in note.alerts:
        known = open_alerts.get(alert.fingerprint)
        if known is None:
            added.append(alert)
        elif known.status != alert.status:
            (refired if alert.firing else resolved).append(alert)
        elif known.annotations != alert.annotations or known.starts_at != alert.starts_at:
            changed.append(alert)
    if not note.firing:
        # Top-level "resolved" means every alert of the group is resolved, truncated or not.
        return GroupDecision(Reason.RESOLVE, tuple(added), tuple(resolved), tuple(refired), tuple(changed))
    if any(a.firing for a in added):
        reason = Reason.JOIN
    elif resolved or refired or added or changed or note.truncated_alerts != truncated:
        reason = Reason.UPDATE
    else:
        reason = Reason.REPEAT
    return GroupDecision(reason, tuple(added), tuple(resolved), tuple(refired), tuple(changed))
