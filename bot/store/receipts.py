"""Webhook deliveries already processed, kept only as long as a sender may still retry them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete
from sqlmodel import col

from bot.store.db import transaction
from bot.store.tables import WebhookReceipt


def prune(engine: Engine, before: datetime) -> int:
    with transaction(engine) as session:
        result = session.exec(delete(WebhookReceipt).where(col(WebhookReceipt.received_at) < before))  # type: ignore[call-overload]
        return int(result.rowcount or 0)
