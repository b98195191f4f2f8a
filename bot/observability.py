"""Metrics (Prometheus) and structured logs that never carry a secret."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from bot import metrics_processes
from bot.core.delivery_failures import error_label
from bot.store import inbox, outbox, outbox_health

disable_created_metrics()  # the *_created series only add noise to every scrape

WEBHOOKS = Counter("incidentbot_webhooks_total", "Webhooks received", ["source", "outcome"])
WEBHOOK_SECONDS = Histogram(
    "incidentbot_webhook_seconds",
    "Webhook handling time",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
INCIDENTS_OPENED = Counter("incidentbot_incidents_opened_total", "Incidents opened", ["source"])
SLACK_CALLS = Counter("incidentbot_slack_calls_total", "Slack Web API calls", ["method", "outcome"])
NOTIFICATIONS = Counter(
    "incidentbot_notifications_total",
    "Notifications by method (email, ntfy, ...) and outcome",
    ["method", "outcome"],
)
OUTBOX_DELIVERED = Counter("incidentbot_outbox_delivered_total", "Outbox rows settled", ["op", "outcome"])


# -- Read from the database at each scrape (by the web process): the outbox and inbox as they are --
@dataclass(eq=False)  # registered by identity: a collector must stay hashable
class DatabaseLooks(Collector):
    """Gauges of the work waiting in the database, and incidentbot_outbox_failed_total{op, error}
    (rows that failed for good, by operation and the far side's error; a counter: failed rows stay
    in the database). Values are set by `refresh` before each scrape; a collector of its own, so
    they are the same whichever process answers and however many there are."""

    outbox_pending: int = 0
    inbox_pending: int = 0
    inbox_oldest_seconds: float = 0.0
    inbox_parked: int = 0
    slack_credentials_ok: int = 1
    failed: dict[tuple[str, str], int] = field(default_factory=dict)

    def collect(self) -> Iterable[Metric]:
        for name, help_text, value in [
            ("incidentbot_outbox_pending", "Outbound calls waiting for delivery", self.outbox_pending),
            ("incidentbot_inbox_pending", "Webhooks stored and not processed yet", self.inbox_pending),
            (
                "incidentbot_inbox_oldest_pending_seconds",
                "Age of the oldest webhook not processed yet (0: none)",
                self.inbox_oldest_seconds,
            ),
            (
                "incidentbot_inbox_parked",
                "Webhooks parked after failing 5 times (`incidentbot inbox list`)",
                self.inbox_parked,
            ),
            (
                "incidentbot_slack_credentials_ok",
                "0 while Slack refuses the bot token (calls wait for a valid one) or none is set, else 1",
                self.slack_credentials_ok,
            ),
        ]:
            yield GaugeMetricFamily(name, help_text, value=value)
        family = CounterMetricFamily(
            "incidentbot_outbox_failed",
            "Outbox rows that failed for good, by operation and error",
            labels=["op", "error"],
        )
        for (op, error), count in sorted(self.failed.items()):
            family.add_metric([op, error], count)
        yield family

    def refresh(self, engine: Engine, token_set: bool, credential_errors: Iterable[str]) -> None:
        """In a thread, before a scrape: read what the metrics above report."""
        self.outbox_pending = outbox.pending_count(engine)
        seen = inbox.depth(engine)
        self.inbox_pending, self.inbox_parked = seen.pending, seen.parked
        oldest = (datetime.now(UTC) - seen.oldest).total_seconds() if seen.oldest else 0.0
        self.inbox_oldest_seconds = max(0.0, oldest)
        counts: dict[tuple[str, str], int] = {}
        for op, error, count in outbox_health.failed_by_op_and_error(engine):
            key = (op, error_label(error))
            counts[key] = counts.get(key, 0) + count
        self.failed = counts
        refused = not token_set or outbox_health.waiting_on(engine, credential_errors)
        self.slack_credentials_ok = 0 if refused else 1


DATABASE = DatabaseLooks()
REGISTRY.register(DATABASE)


@cache
def _registry() -> CollectorRegistry:
    """Every process's counters (multiprocess mode, see bot/metrics_processes.py) and the
    database's gauges; no per-process python_* or process_* series, which would not add up."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(DATABASE)
    return registry


def exposition() -> bytes:
    """The /metrics text: this process's registry, or every process's with the multiprocess mode."""
    shared = os.environ.get(metrics_processes.ENV)
    return generate_latest(_registry() if shared else REGISTRY)


class _Redacting(logging.Formatter):
    """Format with `inner`, then replace every configured secret in the whole line: message,
    extra fields and tracebacks alike."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        for secret in self.secrets:
            line = line.replace(secret, "***")
        return line


# uvicorn adds `color_message` (its message with ANSI colours) to its records for its own console
# formatter: in a log file or a JSON line it is noise, so it is dropped.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
# Terminal escape sequences (colours, cursor moves) from any library: logs are read by machines too.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")


def _plain(value: object) -> object:
    return _ANSI.sub("", value) if isinstance(value, str) else value


class _JSON(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _plain(record.getMessage()),
        }
        doc.update({k: _plain(v) for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _ANSI.sub("", super().format(record))


def setup_logging(level: str, fmt: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    inner = _JSON() if fmt == "json" else _Text("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(_Redacting(inner, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
