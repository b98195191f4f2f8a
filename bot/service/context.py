"""What every use case needs: the database, a clock and a way to wake the outbox worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from bot.catalog.rotations import Catalog
from bot.core.permissions import Rate
from bot.core.runbook_links import RunbookCatalog


@dataclass(frozen=True)
class StormPolicy:
    """Past `threshold` new incidents from one route within `window`, fold further ones."""

    threshold: int = 10
    window: timedelta = timedelta(minutes=5)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    engine: Engine
    clock: Callable[[], datetime] = utcnow
    channel_prefix: str = "inc"
    announce_channel: str | None = None
    rotations: Catalog | None = None
    runbooks: RunbookCatalog = field(default_factory=lambda: RunbookCatalog({}, {}))
    postmortems_dir: Path = Path("./postmortems")
    storm: StormPolicy = field(default_factory=lambda: StormPolicy())
    heartbeat_alertname: str = "Watchdog"
    heartbeat_timeout: timedelta = timedelta(minutes=10)
    postmortem_template: str | None = None  # the custom template's text; None: the default
    # While a card silence is active, ask Alertmanager this often whether its alerts still fire.
    silence_check_interval: timedelta = timedelta(minutes=1)
    # PAGERDUTY_API_TOKEN is set: acknowledging or resolving here updates PagerDuty's incident.
    pagerduty_api: bool = False
    # Acknowledge links (issue 18): PUBLIC_URL and SECRET_KEY; either empty: pages carry none.
    public_url: str = ""
    secret_key: str = ""
    # Called after a commit that enqueued outbox rows, so delivery starts without polling delay.
    wake: Callable[[], None] = field(default=lambda: None)
    # Called after a webhook was stored in the inbox, so the drain applies it at once.
    wake_inbox: Callable[[], None] = field(default=lambda: None)
    # Permissions: the Slack user IDs of admins now (the Slack adapter expands user groups), and
    # how many incidents one person may declare per window.
    admins: Callable[[], frozenset[str]] = field(default=lambda: frozenset())
    declare_rate: Rate = field(default_factory=lambda: Rate(5, timedelta(minutes=10)))
    # On-call from Slack (issue 19): INCIDENT_ADMINS entries (people keys, Slack user IDs, user
    # groups) and "is Slack user U in user group S?" (cached; asked outside write transactions).
    incident_admins: tuple[str, ...] = ()
    in_user_group: Callable[[str, str], bool] = field(default=lambda user, group: False)
    # Handoff notices (HANDOFF_NOTICES); user groups (`slack_usergroup:`) are synced either way.
    handoff_notices: bool = False
