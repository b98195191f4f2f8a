"""Silences made from the incident card: the durations offered, and what a look at the group's
alerts in Alertmanager means for a silenced incident.

Alertmanager sends no resolved notification for silenced alerts, so while a card silence is active
the bot asks Alertmanager which of the group's alerts are still active (silenced ones included);
`after_check` turns that answer into a decision with its reason.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

# The Silence buttons on the card, in order; nothing else is accepted (a button's value is only text).
OFFERED: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=4))


def offered(seconds: int) -> timedelta | None:
    """The offered duration of `seconds`, or None for any other (a forged or stale button)."""
    return next((d for d in OFFERED if d.total_seconds() == seconds), None)


def label(duration: timedelta) -> str:
    """`1h`, `4h`: the button's text and its action id's suffix."""
    return f"{int(duration.total_seconds() // 3600)}h"


def offered_text() -> str:
    return " or ".join(label(d) for d in OFFERED)


class CheckReason(StrEnum):
    STILL_FIRING = "still_firing"  # at least one of the incident's alerts is still active
    SOME_STOPPED = "some_stopped"  # some stopped, others are still active
    ALL_STOPPED = "all_stopped"  # none of its alerts is active any more: resolve
    GROUP_STILL_FIRING = "group_still_firing"  # ours stopped, but the group was truncated and fires
    NOTHING_FIRING = "nothing_firing"  # no alert of ours was firing: a person keeps it open


@dataclass(frozen=True)
class SilencedCheck:
    reason: CheckReason
    stopped: frozenset[str]  # fingerprints of the incident's firing alerts Alertmanager no longer has

    @property
    def resolves(self) -> bool:
        return self.reason is CheckReason.ALL_STOPPED


def after_check(
    firing: Collection[str], listed: Collection[str], *, truncated: bool = False
) -> SilencedCheck:
    """What Alertmanager listing `listed` (fingerprints of the group's active, silenced and inhibited
    alerts) means for an incident whose alerts `firing` fire as far as we know.

    Alertmanager lists no alert whose end has passed, so an alert of ours it does not list has
    stopped. When Alertmanager truncated the group (`truncated`), we never saw all its alerts: any
    alert still listed keeps it open. An incident with no firing alert (reopened by a person) is
    never resolved by a check.
    """
    ours, active = frozenset(firing), frozenset(listed)
    if not ours:
        return SilencedCheck(CheckReason.NOTHING_FIRING, frozenset())
    stopped = ours - active
    if stopped == ours:
        if truncated and active:
            return SilencedCheck(CheckReason.GROUP_STILL_FIRING, stopped)
        return SilencedCheck(CheckReason.ALL_STOPPED, stopped)
    return SilencedCheck(CheckReason.SOME_STOPPED if stopped else CheckReason.STILL_FIRING, stopped)
