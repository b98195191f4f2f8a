"""`incidentbot inbox list` and `incidentbot inbox retry <id>`: the webhooks the drain could not
apply (parked after 5 attempts), or still waiting, and trying a parked one again."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from bot.settings import Settings


def inbox(settings: Settings, action: str, row_id: int | None, status: str | None) -> int:
    from bot.store import inbox as rows
    from bot.store.db import make_engine, upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    if action == "retry":
        if row_id is None:
            print("incidentbot: inbox retry needs the id of a parked row", file=sys.stderr)
            return 2
        if not rows.retry(engine, row_id, datetime.now(UTC)):
            row = rows.get(engine, row_id)
            said = "no such inbox row" if row is None else f"inbox row {row_id} is {row.status}, not parked"
            print(f"incidentbot: {said}", file=sys.stderr)
            return 1
        print(f"inbox row {row_id} will be processed again")
        return 0
    listed = rows.listing(engine, None if status == "unprocessed" else status)
    if not listed:
        print("no inbox rows" + (f" {status}" if status else " parked or waiting"))
        return 0
    print(f"{'id':>8}  {'status':<8} {'source':<12} {'attempts':>8}  {'received':<20} group / last error")
    for row in listed:
        received = row.received_at.strftime("%Y-%m-%d %H:%M:%S")
        said = row.last_error or row.decision or ""
        line = f"{row.id:>8}  {row.status:<8} {row.source:<12} {row.attempts:>8}  {received:<20}"
        print(f"{line} {row.group_key}")
        if said:
            print(f"{'':>10}{said}")
    return 0
