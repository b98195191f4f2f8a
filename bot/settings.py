"""All settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.permissions import parse_rate

# The password in `scheme://user:password@host/db`.
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@]*:)([^@]*)(?=@)")
_ADMIN_ID = re.compile(r"[UWS][A-Z0-9]{2,}")


def admin_ids(value: str) -> list[str]:
    """INCIDENT_ADMINS as a list: `U01ALEX, S0ONCALL` -> ["U01ALEX", "S0ONCALL"]."""
    return [v.strip() for v in value.split(",") if v.strip()]


class Settings(BaseSettings):
    # Empty values mean "not set", so a copied .env.example with blanks behaves like the defaults.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///./incidentbot.db"
    runbooks_dir: Path = Path("./runbooks")
    rotations_dir: Path = Path("./rotations")
    alertmanager_token: SecretStr | None = None
    incident_announce_channel: str | None = None
    port: int = 8080
    host: str = "0.0.0.0"

    # PagerDuty (issue: both ways). Secrets may list several, comma separated, for rotation.
    pagerduty_api_token: SecretStr | None = None
    pagerduty_from_email: str = ""
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_webhook_secret: SecretStr | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"

    # Alertmanager API v2, for silences from the incident card.
    alertmanager_url: str | None = None

    # Post-mortems and channel lifecycle.
    postmortems_dir: Path = Path("./postmortems")
    postmortem_template: Path | None = None
    archive_after: str = "24h"  # "0" never archives

    # Socket Mode: with an app-level token the bot also connects out to Slack.
    slack_app_token: SecretStr | None = None

    # Dead man's switch and alert storms.
    heartbeat_alertname: str = "Watchdog"
    heartbeat_timeout: str = "10m"
    storm_threshold: int = Field(default=10, ge=1)
    storm_window: str = "5m"
    # Multiplies the Slack rate-limit tiers the outbox paces to (workspaces with raised limits).
    slack_rate_scale: float = Field(default=1.0, gt=0)

    # Tuning knobs (documented in .env.example); the defaults suit one workspace.
    channel_prefix: str = "inc"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    outbox_poll_seconds: float = Field(default=2.0, gt=0)
    scheduler_tick_seconds: float = Field(default=1.0, gt=0)
    # `serve` runs the outbox worker and the scheduler in a child process (the second core).
    worker_process: bool = True
    # ... at this niceness: under load the web process gets the CPU first (see .env.example).
    worker_nice: int = Field(default=5, ge=0, le=19)
    slack_timeout_seconds: float = Field(default=10.0, gt=0)

    # Permissions and Slack request replay (issue 16, sections 2 and 3; see core/permissions.py).
    # Slack user IDs (U…/W…) and user-group IDs (S…), comma separated: they may do everything.
    incident_admins: str = ""
    # How many incidents one person may declare per window (`<count>/<duration>`).
    declare_rate: str = "5/10m"
    log_level: str = "INFO"
    log_format: str = "json"

    @field_validator("declare_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("incident_admins")
    @classmethod
    def _admins(cls, value: str) -> str:
        bad = [v for v in admin_ids(value) if not _ADMIN_ID.fullmatch(v)]
        if bad:
            raise ValueError(f"not Slack user (U…/W…) or user-group (S…) IDs: {', '.join(bad)}")
        return value

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def database_password(self) -> str | None:
        found = _URL_PASSWORD.search(self.database_url)
        return found.group(2) if found and found.group(2) else None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Every other secret is a SecretStr; the database URL stays a str (SQLAlchemy takes it as is).
        for name, value in super().__repr_args__():
            if name == "database_url":
                value = _URL_PASSWORD.sub(r"\1**********", value)
            yield name, value
