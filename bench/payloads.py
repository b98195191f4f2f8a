"""Realistic Alertmanager v4 notifications (shaped like tests/fixtures/alertmanager-0.25/*.json).

Every group carries a tag `[bench:<id>]` in its summary annotation, which becomes the incident
title and so shows up in the page DM: that is how a page is matched back to its webhook.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

ALERTNAMES = (
    "HighApiErrorRate",
    "HighLatencyP99",
    "PodCrashLooping",
    "KubeNodeNotReady",
    "DiskWillFillIn4h",
    "RedisPoolExhaustion",
    "PostgresReplicationLag",
    "WeaviateQueryTimeouts",
    "LLMServingQueueBacklog",
    "CertificateExpiresSoon",
    "TargetDown",
    "KafkaConsumerLag",
)
TEAMS = ("platform", "platform", "ai-platform", "data-platform")
SERVICES = ("checkout", "gateway", "search", "billing", "rag-api", "inference", "orders", "auth")
TAG = re.compile(r"\[bench:(\w+)\]")


class Kind(StrEnum):
    NEW = "new"  # first notification of a group: opens an incident
    REPEAT = "repeat"  # identical re-send (repeat_interval, HA peers): changes nothing
    UPDATE = "update"  # the group's third alert resolves or fires again: the incident is updated


@dataclass(frozen=True)
class Mix:
    """Share of each kind of notification in a load run."""

    new: float = 0.25
    repeat: float = 0.5
    update: float = 0.25

    def describe(self) -> str:
        return (
            f"{self.new:.0%} new groups (open an incident), {self.repeat:.0%} identical repeats, "
            f"{self.update:.0%} updates (one of the 3 alerts resolves / fires again)"
        )


@dataclass
class Group:
    """One Alertmanager alert group (group_by: alertname, service)."""

    tag: str
    alertname: str
    service: str
    team: str
    severity: str
    size: int = 3
    third_resolved: bool = False
    started: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(minutes=2))

    @property
    def group_key(self) -> str:
        return f'{{}}:{{alertname="{self.alertname}", service="{self.service}"}}'

    @property
    def summary(self) -> str:
        return f"{self.alertname} on {self.service} [bench:{self.tag}]"

    def _alert(self, i: int, firing: bool) -> dict[str, Any]:
        labels = {
            "alertname": self.alertname,
            "instance": f"{self.service}-{i}:8080",
            "service": self.service,
            "severity": self.severity,
            "team": self.team,
        }
        ends = "0001-01-01T00:00:00Z" if firing else _iso(datetime.now(UTC))
        return {
            "status": "firing" if firing else "resolved",
            "labels": labels,
            "annotations": {
                "description": f"{self.alertname} on {self.service}-{i}: 7.{i}% over threshold",
                "runbook_url": "https://runbooks.example.com/high-error-rate",
                "summary": self.summary,
            },
            "startsAt": _iso(self.started),
            "endsAt": ends,
            "generatorURL": "http://prometheus:9090/graph?g0.expr=rate",
            "fingerprint": hashlib.blake2b(f"{self.tag}/{i}".encode(), digest_size=8).hexdigest(),
        }

    def notification(self, alerts: int | None = None) -> dict[str, Any]:
        """The v4 payload Alertmanager would send for this group now (the first `alerts` alerts)."""
        count = self.size if alerts is None else alerts
        items = [
            self._alert(i, firing=not (i == 2 and self.third_resolved and self.size == 3))
            for i in range(count)
        ]
        common = {
            "alertname": self.alertname,
            "service": self.service,
            "severity": self.severity,
            "team": self.team,
        }
        return {
            "receiver": "incidentbot",
            "status": "firing",
            "alerts": items,
            "groupLabels": {"alertname": self.alertname, "service": self.service},
            "commonLabels": common,
            "commonAnnotations": {
                "runbook_url": "https://runbooks.example.com/high-error-rate",
                "summary": self.summary,
            },
            "externalURL": "http://alertmanager:9093",
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": 0,
        }


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Request:
    """One pre-rendered webhook body and what it is."""

    kind: Kind
    tag: str
    body: bytes


def new_group(rng: random.Random, tag: str, service_suffix: str | None = None) -> Group:
    alertname = rng.choice(ALERTNAMES)
    service = f"{rng.choice(SERVICES)}-{service_suffix or tag}"
    return Group(
        tag=tag,
        alertname=alertname,
        service=service,
        team=rng.choice(TEAMS),
        severity=rng.choice(("critical", "warning", "warning")),
    )


class Workload:
    """Deterministic stream of notifications with a given mix; repeats/updates pick known groups."""

    def __init__(self, prefix: str, mix: Mix | None = None, seed: int = 7) -> None:
        self.prefix = prefix
        self.mix = mix or Mix()
        self.rng = random.Random(seed)
        self.groups: list[Group] = []

    def _new(self) -> Group:
        group = new_group(self.rng, f"{self.prefix}{len(self.groups)}")
        self.groups.append(group)
        return group

    def next(self) -> Request:
        roll = self.rng.random()
        if not self.groups or roll < self.mix.new:
            group, kind = self._new(), Kind.NEW
        else:
            group = self.rng.choice(self.groups)
            if roll < self.mix.new + self.mix.repeat:
                kind = Kind.REPEAT
            else:
                kind = Kind.UPDATE
                group.third_resolved = not group.third_resolved
        return Request(kind, group.tag, json.dumps(group.notification()).encode())

    def take(self, count: int) -> list[Request]:
        return [self.next() for _ in range(count)]

    def seed_groups(self, count: int) -> list[Request]:
        """`count` new-group notifications (run them first so repeats hit existing incidents)."""
        return [
            Request(Kind.NEW, g.tag, json.dumps(g.notification()).encode()) for g in self._iter_new(count)
        ]

    def _iter_new(self, count: int) -> Iterator[Group]:
        for _ in range(count):
            yield self._new()


def tag_of(text: str) -> str | None:
    found = TAG.search(text)
    return found.group(1) if found else None


def regroup(groups: int, times: int, seed: int = 5, prefix: str = "r") -> list[Request]:
    """Traffic closer to a real Alertmanager's: `groups` alert groups, each sent `times` times
    (group_interval / repeat_interval re-sends, interleaved across groups). A group's first send
    opens its incident; a third of the later ones change it (an alert resolves or fires again),
    the rest repeat it unchanged."""
    rng = random.Random(seed)
    pool = [new_group(rng, f"{prefix}{i}") for i in range(groups)]
    out: list[Request] = []
    for round_ in range(times):
        order = list(pool)
        rng.shuffle(order)
        for group in order:
            kind = Kind.NEW if round_ == 0 else Kind.REPEAT
            if round_ and rng.random() < 1 / 3:
                kind, group.third_resolved = Kind.UPDATE, not group.third_resolved
            out.append(Request(kind, group.tag, json.dumps(group.notification()).encode()))
    return out
