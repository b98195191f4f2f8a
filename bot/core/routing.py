"""Which rotation an alert goes to: an ordered list of label matchers, first match wins.

Matching follows Alertmanager: equality and regex on label values, regexes fully anchored, and a
label the alert lacks is matched as the empty string. A `default` route matches everything.
When nothing matches, the caller falls back (the catalog sends such alerts to the first rotation).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Compile so that `.match`, `.search` and `.fullmatch` all require the whole value to match."""
    return re.compile(rf"\A(?:{pattern})\Z")


@dataclass(frozen=True, kw_only=True)
class Route:
    match: dict[str, str] = field(default_factory=dict)
    match_re: dict[str, re.Pattern[str]] = field(default_factory=dict)
    default: bool = False
    rotation: str
    runbook: str | None = None  # carried through for the incident, not interpreted here
    severity: str | None = None  # overrides the alert's severity when set
    line: int = 0  # where the route is written, for logs that explain a routing decision

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.default:
            return True
        return all(labels.get(k, "") == v for k, v in self.match.items()) and all(
            rx.fullmatch(labels.get(k, "")) is not None for k, rx in self.match_re.items()
        )


def route(labels: Mapping[str, str], routes: Sequence[Route]) -> Route | None:
    """The first route matching `labels`, or None when none does."""
    for candidate in routes:
        if candidate.matches(labels):
            return candidate
    return None
