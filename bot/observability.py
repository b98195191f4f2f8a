"""Metrics (Prometheus) and structured logs that never carry a secret."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

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
OUTBOX_DEPTH = Gauge("incidentbot_outbox_pending", "Outbound calls waiting for delivery")
NOTIFICATIONS = Counter(
    "incidentbot_notifications_total",
    "Notifications by method (email, ntfy, ...) and outcome",
    ["method", "outcome"],
)
OUTBOX_DELIVERED = Counter("incidentbot_outbox_delivered_total", "Outbox rows settled", ["op", "outcome"])


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


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class _JSON(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str, fmt: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    inner = _JSON() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(_Redacting(inner, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
