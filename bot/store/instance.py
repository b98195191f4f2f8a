"""This database's instance id: one row made by the first migration (0003), never changed.

Messages the bot posts carry it in their metadata, so a lookup after an ambiguous failure never
takes a post of another database (a restore, a lost volume, a second deployment on the same Slack
app: their outbox ids start at 1 too) for its own.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.store.db import reading
from bot.store.tables import Instance


def instance_id(engine: Engine) -> str:
    """The id, read once per engine (it never changes) and cached on it, like `db.reader`."""
    cached: str | None = engine.__dict__.get("_instance_id")
    if cached is None:
        with reading(engine) as session:
            row = session.exec(select(Instance).order_by(col(Instance.created_at))).first()
        if row is None:
            raise RuntimeError("the database has no instance id: run `incidentbot db upgrade`")
        cached = engine.__dict__["_instance_id"] = row.id
    return cached
