"""`incidentbot oncall`: who is on call now (the effective schedule: the files with the overrides
made from Slack), every shift for `--weeks N` (the rows the calendar feeds export), or the audit of
on-call changes (`--history`). When the database cannot be read, the files alone are shown and the
command says so: knowing the base schedule beats knowing nothing during an outage."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core.errors import BadInput, ConfigProblem
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.catalog.rotations import Catalog
    from bot.core.rotations import Rotation
    from bot.service.context import Context


def oncall(
    settings: Settings,
    rotation: str | None,
    at: datetime | None,
    weeks: int | None,
    history: bool,
    since: timedelta,
) -> int:
    from bot.service.context import Context
    from bot.store.db import make_engine, upgrade
    from bot.wiring import load_config

    catalog, _ = load_config(settings)
    if rotation is not None and rotation not in catalog.rotations:
        known = ", ".join(sorted(catalog.rotations))
        raise BadInput(f"There is no rotation named {rotation!r}. Rotations: {known}.")
    when = _instant(at)
    engine = make_engine(settings.database_url)
    ctx = Context(engine=engine, clock=lambda: when, rotations=catalog)
    try:
        try:
            upgrade(engine)
            database = True
        except Exception as exc:  # the database is down: the files still say who is on call
            if history:
                raise BadInput(
                    f"the database cannot be read ({type(exc).__name__}): no history to show"
                ) from exc
            print(
                f"(overrides from Slack not shown: the database cannot be read: {type(exc).__name__})",
                file=sys.stderr,
            )
            database = False
        if history:
            _history(ctx, rotation, when - since)
        elif weeks is not None:
            _weeks(ctx, rotation, when, weeks, database)
        else:
            _now(settings, ctx, rotation, when, database)
    finally:
        engine.dispose()
    return 0


def _instant(at: datetime | None) -> datetime:
    return (at or datetime.now(UTC)).astimezone(UTC)


def _rotations(
    ctx: Context, names: list[str] | None, since: datetime, until: datetime | None, database: bool
) -> dict[str, Rotation]:
    from bot.service.oncall_schedule import effective
    from bot.store.db import reading

    assert ctx.rotations is not None
    if not database:
        return {n: r for n, r in ctx.rotations.rotations.items() if names is None or n in names}
    with reading(ctx.engine) as session:
        return effective(ctx, session, names, since, until)


def _now(settings: Settings, ctx: Context, rotation: str | None, when: datetime, database: bool) -> None:
    from bot.service.oncall import describe
    from bot.wiring import oncall_cache, pagerduty_client

    client = pagerduty_client(settings) if settings.pagerduty_api_token else None
    try:
        lookup = oncall_cache(client, lambda: datetime.now(UTC)).get if client else None
        rotations = _rotations(ctx, [rotation] if rotation else None, when, None, database)
        print(describe(ctx.rotations, rotation, when, slack=False, pagerduty=lookup, rotations=rotations))
    finally:
        if client is not None:
            client.close()


def _weeks(ctx: Context, rotation: str | None, when: datetime, weeks: int, database: bool) -> None:
    from bot.service.oncall_calendar import rows

    if not 0 < weeks <= 52:
        raise BadInput("--weeks must be from 1 to 52")
    end = when + timedelta(weeks=weeks)
    rotations = _rotations(ctx, [rotation] if rotation else None, when, end, database)
    table = [("ROTATION", "LAYER", "FROM", "UNTIL", "WHO", "")]
    for row in sorted(rows(rotations, when, end), key=lambda r: (r.rotation, r.layer, r.shift.start)):
        table.append(
            (
                row.rotation,
                row.layer,
                _local(row.shift.start, row.zone),
                _local(row.shift.end, row.zone),
                row.shift.person,
                "override" if row.shift.override else "",
            )
        )
    _print(table)


def _history(ctx: Context, rotation: str | None, since: datetime) -> None:
    from bot.store.db import reading
    from bot.store.oncall import history

    with reading(ctx.engine) as session:
        entries = history(session, rotation, since)
    table = [("AT (UTC)", "ROTATION", "LAYER", "WHO", "WHAT", "")]
    table += [
        (f"{e.at:%Y-%m-%d %H:%M}", e.rotation, e.layer or "", e.actor, e.kind, e.text.replace("\n", " "))
        for e in entries
    ]
    if len(table) == 1:
        print(f"No on-call changes since {since:%Y-%m-%d %H:%M} UTC.")
        return
    _print(table)


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%a %b %d %H:%M %Z")


def _print(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def user_group_warnings(settings: Settings, catalog: Catalog) -> list[ConfigProblem]:
    """`incidentbot check`: admin user groups Slack does not know (asked with usergroups.list)."""
    from slack_sdk import WebClient

    from bot.settings import admin_ids
    from bot.slack.oncall_people import unknown_user_groups, user_groups_named

    named = user_groups_named(catalog, tuple(admin_ids(settings.incident_admins)))
    if not named:
        return []
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=int(settings.slack_timeout_seconds),
    )
    try:
        found = client.usergroups_list()
    except Exception as exc:
        error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error") or type(exc).__name__
        return [ConfigProblem("SLACK_BOT_TOKEN", 0, f"could not ask Slack about the user groups: {error}")]
    return unknown_user_groups(named, found.get("usergroups") or ())
