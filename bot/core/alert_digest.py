"""An incident's alerts as a responder reads them: one entry per distinct alert, not per instance.

A group of 60 alerts usually says the same thing 60 times with one label changed (`instance`).
`digest` folds alerts with the same name and summary into one `AlertDigest`: how many, how many
still fire, since when, until when the resolved ones fired, the labels they all share, and for each
label that differs its distinct values. Descriptions are kept once each (they are often templated
with the instance, so they may differ within a digest).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class AlertLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def generator_url(self) -> str: ...


@dataclass(frozen=True)
class AlertDigest:
    name: str
    summary: str
    descriptions: tuple[str, ...]  # distinct, in order of first appearance
    count: int
    firing: int
    started: datetime  # the earliest start among the firing alerts (among all when none fires)
    last_resolved: datetime | None  # the latest end among the resolved alerts
    common: tuple[tuple[str, str], ...]  # labels every alert has with the same value (no alertname)
    differing: tuple[tuple[str, tuple[str, ...]], ...]  # other labels: their distinct values
    source_url: str  # the first alert's generator URL

    @property
    def resolved(self) -> int:
        return self.count - self.firing


def digest(alerts: Iterable[AlertLike]) -> list[AlertDigest]:
    """Alerts folded by (name, summary); digests with firing alerts first, then in order of first
    appearance (the order of `alerts`)."""
    folded: dict[tuple[str, str], list[AlertLike]] = {}
    for alert in alerts:
        folded.setdefault((alert.name, alert.annotations.get("summary", "")), []).append(alert)
    digests = [_one(name, summary, members) for (name, summary), members in folded.items()]
    return sorted(digests, key=lambda d: d.firing == 0)  # stable: appearance order otherwise


def _one(name: str, summary: str, members: list[AlertLike]) -> AlertDigest:
    firing = [a for a in members if a.status == "firing"]
    ends = [a.ends_at for a in members if a.status != "firing" and a.ends_at is not None]
    descriptions = dict.fromkeys(
        a.annotations["description"] for a in members if a.annotations.get("description")
    )
    keys = dict.fromkeys(k for a in members for k in a.labels if k != "alertname")
    common, differing = [], []
    for key in keys:
        values = dict.fromkeys(a.labels.get(key, "") for a in members)
        if len(values) == 1 and all(key in a.labels for a in members):
            common.append((key, next(iter(values))))
        else:
            differing.append((key, tuple(values)))
    return AlertDigest(
        name=name,
        summary=summary,
        descriptions=tuple(descriptions),
        count=len(members),
        firing=len(firing),
        started=min(a.starts_at for a in (firing or members)),
        last_resolved=max(ends) if ends else None,
        common=tuple(sorted(common)),
        differing=tuple(sorted(differing, key=lambda kv: (len(kv[1]), kv[0]))),
        source_url=next((a.generator_url for a in members if a.generator_url), ""),
    )
