"""Queries for on-call changes made from Slack: overrides in effect, conflicts, the audit trail.

Loading the overrides of a use case is one indexed query (`ix_oncall_override_rotation_end`):
only those still running or ahead of `since` are read, however long the history grows.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from bot.core.oncall_changes import Existing
from bot.core.rotations import Override
from bot.store.db import advisory_lock
from bot.store.tables import OncallAudit, OncallOverride


def ref(row: OncallOverride) -> str:
    return f"db:{row.id}"


def id_of(reference: str | None) -> int | None:
    """The database id in an override's `ref` ("db:12" -> 12)."""
    if reference and reference.startswith("db:") and reference[3:].isdigit():
        return int(reference[3:])
    return None


def effective_end(row: OncallOverride) -> datetime:
    """An override removed after it began counts until its removal (that part happened)."""
    return min(row.ends_at, row.removed_at) if row.removed_at is not None else row.ends_at


def as_override(row: OncallOverride) -> Override:
    return Override(row.layer, row.who, row.starts_at, effective_end(row), ref(row))


def in_effect(
    session: Session, rotations: Collection[str] | None, since: datetime, until: datetime | None = None
) -> list[OncallOverride]:
    """Overrides of `rotations` (None: all) that were or will be in effect at some moment of
    [since, until), oldest first (the order `core.schedule.layered` stacks them in)."""
    query = select(OncallOverride).where(
        col(OncallOverride.ends_at) > since,
        or_(
            col(OncallOverride.removed_at).is_(None),
            col(OncallOverride.removed_at) > col(OncallOverride.starts_at),
        ),
    )
    if rotations is not None:
        query = query.where(col(OncallOverride.rotation).in_(list(rotations)))
    if until is not None:
        query = query.where(col(OncallOverride.starts_at) < until)
    rows = session.exec(query.order_by(col(OncallOverride.id))).all()
    # A row whose end is not after its start (edited by hand) cannot be an override: left out.
    return [row for row in rows if effective_end(row) > max(since, row.starts_at)]


def active(session: Session, rotation: str, since: datetime) -> list[OncallOverride]:
    """Overrides of `rotation` not removed and not over by `since`, by start."""
    return list(
        session.exec(
            select(OncallOverride)
            .where(
                col(OncallOverride.rotation) == rotation,
                col(OncallOverride.ends_at) > since,
                col(OncallOverride.removed_at).is_(None),
            )
            .order_by(col(OncallOverride.starts_at), col(OncallOverride.id))
        )
    )


def as_existing(row: OncallOverride) -> Existing:
    assert row.id is not None
    return Existing(row.id, row.layer, row.who, row.starts_at, row.ends_at, row.created_by)


def lock_layer(session: Session, rotation: str, layer: str) -> None:
    """Serialise changes to one layer's overrides until the transaction ends, so two requests
    checked at the same moment cannot both pass the overlap check. SQLite has one writer anyway."""
    advisory_lock(session, f"oncall:{rotation}:{layer}")


def audit(
    session: Session,
    at: datetime,
    actor: str,
    kind: str,
    rotation: str,
    layer: str | None,
    text_: str,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        OncallAudit(
            at=at, actor=actor, kind=kind, rotation=rotation, layer=layer, text=text_, data=data or {}
        )
    )


def history(session: Session, rotation: str | None, since: datetime, limit: int = 500) -> list[OncallAudit]:
    query = select(OncallAudit).where(col(OncallAudit.at) >= since)
    if rotation is not None:
        query = query.where(col(OncallAudit.rotation) == rotation)
    return list(session.exec(query.order_by(col(OncallAudit.at), col(OncallAudit.id)).limit(limit)))


def count_active(session: Session, rotation: str, since: datetime) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(OncallOverride)
            .where(
                col(OncallOverride.rotation) == rotation,
                col(OncallOverride.ends_at) > since,
                col(OncallOverride.removed_at).is_(None),
            )
        ).one()
    )
