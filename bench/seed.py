"""Pre-populate a bot database with open incidents (and their escalation timers) using the bot's
own schema code: `bot.store.db.upgrade` for the migrations, `bot.store.tables` for the rows.

Seeded incidents look like ones the bot opened itself from a webhook: routed to the `platform`
rotation, first step paged (its timer row `c0r0s0` is fired), the next step `c0r0s1` pending.
Their `open_key` and alert fingerprints are those of `bench.payloads.Group`, so webhooks for the
same groups join them instead of opening new incidents.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, text, update
from sqlmodel import Session, col, func, select

from bench.payloads import Group
from bot.store.db import is_postgres, make_engine, upgrade
from bot.store.tables import Alert, Incident, Page, Timer

ROTATION = "platform"
STEP1_AFTER = timedelta(minutes=15)  # platform policy: secondary after 15m (SEV2's ack timeout is 1h)
BATCH = 1000


def engine_for(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def _incident_row(i: int, group: Group, anchor: datetime) -> dict[str, Any]:
    note_key = f"incidentbot|{group.group_key}"
    return {
        "id": i,
        "source": "alertmanager",
        "title": group.summary,
        "severity": "SEV2",
        "status": "triggered",
        "open_key": note_key,
        "group_key": note_key,
        "group_labels": {"alertname": group.alertname, "service": group.service},
        "common_annotations": {"summary": group.summary},
        "external_url": "http://alertmanager:9093",
        "channel_name": f"inc-bench-{group.tag.lower()}",
        # A channel id the fake does not know: invites/posts there fail fast (and are counted).
        "channel_id": f"CBENCH{i:06d}",
        "card_ts": None,
        "created_at": anchor,
        "rotation": ROTATION,
        "paging_cycle": 0,
        "escalation_anchor": anchor,
    }


def seed(
    engine: Engine, groups: Sequence[Group], step1_due: datetime, alerts_per_incident: int = 3
) -> list[int]:
    """Insert one open incident per group with step 1 due at `step1_due`; returns the incident ids.

    Rows are built as the bot's own SQLModel objects, so column defaults the schema adds later are
    filled in exactly as when the bot writes them.
    """
    anchor = step1_due - STEP1_AFTER
    ids: list[int] = []
    with Session(engine) as session:
        for start in range(0, len(groups), BATCH):
            chunk = list(enumerate(groups[start : start + BATCH], start=start + 1))
            session.add_all([Incident(**_incident_row(i, g, anchor)) for i, g in chunk])
            session.flush()
            for i, group in chunk:
                for item in group.notification()["alerts"][:alerts_per_incident]:
                    session.add(
                        Alert(
                            incident_id=i,
                            fingerprint=item["fingerprint"],
                            name=group.alertname,
                            status="firing",
                            labels=item["labels"],
                            annotations=item["annotations"],
                            starts_at=group.started,
                            generator_url=item["generatorURL"],
                        )
                    )
                session.add(_timer(i, "c0r0s0", anchor, "fired", anchor))
                session.add(_timer(i, "c0r0s1", step1_due, "pending", None))
            session.flush()
            ids.extend(i for i, _ in chunk)
        if is_postgres(engine):
            for table in ("incident", "alert", "timer"):
                session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                    )
                )
        session.commit()
    return ids


def _timer(incident_id: int, key: str, due: datetime, status: str, fired: datetime | None) -> Timer:
    return Timer(
        incident_id=incident_id, kind="escalation", key=key, due_at=due, status=status, fired_at=fired
    )


def reschedule(engine: Engine, dues: dict[int, datetime]) -> None:
    """Move each incident's pending step-1 timer to its new due time (and its plan's anchor with it)."""
    timer, incident = Timer.__table__.c, Incident.__table__.c  # type: ignore[attr-defined]
    move_timer = (
        update(Timer)
        .where(timer.incident_id == bindparam("iid"), timer.key == "c0r0s1")
        .values(due_at=bindparam("due"))
    )
    move_anchor = (
        update(Incident)
        .where(incident.id == bindparam("iid"))
        .values(escalation_anchor=bindparam("anchor"), created_at=bindparam("anchor"))
    )
    params = [{"iid": i, "due": due, "anchor": due - STEP1_AFTER} for i, due in dues.items()]
    with engine.begin() as conn:
        conn.execute(move_timer, [{"iid": p["iid"], "due": p["due"]} for p in params])
        conn.execute(move_anchor, [{"iid": p["iid"], "anchor": p["anchor"]} for p in params])


def fired_timers(engine: Engine) -> list[tuple[int, datetime, datetime]]:
    """(incident id, due, fired at) of every fired step-1 timer."""
    query = select(Timer.incident_id, Timer.due_at, Timer.fired_at).where(
        col(Timer.key) == "c0r0s1", col(Timer.status) == "fired"
    )
    with Session(engine) as session:
        return [(int(i or 0), due, fired) for i, due, fired in session.exec(query) if fired is not None]


def delivered_pages(engine: Engine, step_key: str = "c0r0s1") -> int:
    """How many pages of a step have been delivered (their DM ts recorded)."""
    with Session(engine) as session:
        query = select(func.count()).where(col(Page.step_key) == step_key, col(Page.dm_ts).is_not(None))
        return int(session.exec(query).one())
