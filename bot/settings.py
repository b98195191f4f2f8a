"""All settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The password in `scheme://user:password@host/db`.
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@]*:)([^@]*)(?=@)")
# A SQLite URL with a file path: `sqlite[+driver]:///<path>[?query]` (absolute paths start with /).
_SQLITE_PATH = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?$")


def under_data_dir(database_url: str, data_dir: Path) -> str:
    """`database_url` with a relative SQLite file path moved under `data_dir`; every other URL
    (PostgreSQL, in-memory, absolute or `file:` paths) as given."""
    found = _SQLITE_PATH.match(database_url)
    if not found:
        return database_url
    prefix, path, query = found.group(1), found.group(2), found.group(3) or ""
    if not path or path.startswith(("/", ":memory:", "file:")):
        return database_url
    return f"{prefix}{(data_dir / path).as_posix()}{query}"


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

    # Card silences (issue 16): while one is active, how often the bot asks Alertmanager whether
    # the group's alerts still fire (it sends no resolved notification for silenced alerts).
    silence_check_interval: str = "1m"  # at least 1s (checked at start, see bot.wiring)

    # Pages that wake people up (issue 18): notifiers beside the Slack DM, and acknowledge links.
    # PUBLIC_URL: where people reach the bot (ack links are PUBLIC_URL/ack/<token>); SECRET_KEY
    # signs ack links and webhook notifications (without both, pages carry no ack link and the
    # webhook notifier is off). SMTP_URL: smtp://[user:pass@]host:port (STARTTLS when offered)
    # or smtps://... (TLS from the start); SMTP_CA_FILE trusts a relay's own CA.
    public_url: str | None = None
    secret_key: SecretStr | None = None
    smtp_url: SecretStr | None = None
    smtp_from: str = ""
    smtp_ca_file: Path | None = None
    ntfy_url: str = "https://ntfy.sh"
    ntfy_token: SecretStr | None = None
    notify_timeout_seconds: float = Field(default=10.0, gt=0)

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
    log_level: str = "INFO"
    log_format: str = "json"

    # First run (issue 17): where the bot writes. A relative SQLite path in DATABASE_URL and a
    # relative POSTMORTEMS_DIR resolve under DATA_DIR; absolute ones are taken as given. The Docker
    # image sets DATA_DIR=/data, so a .env copied from .env.example (sqlite:///./incidentbot.db,
    # ./postmortems) still writes to the volume and not to the read-only /app. RUNBOOKS_DIR and
    # ROTATIONS_DIR stay relative to the working directory: they ship with the app.
    data_dir: Path = Path(".")

    @model_validator(mode="after")
    def _resolve_under_data_dir(self) -> Settings:
        if self.data_dir != Path("."):
            self.database_url = under_data_dir(self.database_url, self.data_dir)
            if not self.postmortems_dir.is_absolute():
                self.postmortems_dir = self.data_dir / self.postmortems_dir
        return self

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def database_password(self) -> str | None:
        found = _URL_PASSWORD.search(self.database_url)
        return found.group(2) if found and found.group(2) else None

    @property
    def smtp_password(self) -> str | None:
        found = _URL_PASSWORD.search(self.smtp_url.get_secret_value()) if self.smtp_url else None
        return found.group(2) if found and found.group(2) else None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Every other secret is a SecretStr; the database URL stays a str (SQLAlchemy takes it as is).
        for name, value in super().__repr_args__():
            if name == "database_url":
                value = _URL_PASSWORD.sub(r"\1**********", value)
            yield name, value
