"""All settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.permissions import parse_rate
from bot.settings_values import URL_PASSWORD as _URL_PASSWORD
from bot.settings_values import database_url, duration, existing_file, http_url, one_of

# Typed settings (issue 17): each checks its value at load, and `bot.settings_values.describe` turns
# a problem into one line naming the variable (`HEARTBEAT_TIMEOUT=10: a duration needs a unit, ...`).
Duration = Annotated[str, AfterValidator(duration())]
PositiveDuration = Annotated[str, AfterValidator(duration(positive=True))]
SilenceInterval = Annotated[str, AfterValidator(duration(timedelta(seconds=1), example="1m"))]
SlackURL = Annotated[str, BeforeValidator(http_url("https://slack.com/api/"))]
PagerDutyURL = Annotated[str, BeforeValidator(http_url("https://api.pagerduty.com"))]
AlertmanagerURL = Annotated[str, BeforeValidator(http_url("http://alertmanager:9093"))]
TwilioURL = Annotated[str, BeforeValidator(http_url("https://api.twilio.com"))]
PushoverURL = Annotated[str, BeforeValidator(http_url("https://api.pushover.net/1/"))]
LogLevel = Annotated[str, BeforeValidator(one_of("DEBUG", "INFO", "WARNING", "ERROR", upper=True))]
LogFormat = Annotated[str, BeforeValidator(one_of("json", "text", sentence="json or text"))]
DatabaseURL = Annotated[str, BeforeValidator(database_url)]

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


# Fail closed (issue 16): the placeholder credentials `.env.example` ships are refused at start, in
# every credential setting, with what to put there instead.
PLACEHOLDERS = frozenset({"change-me", "your-signing-secret", "xoxb-your-bot-token", "xapp-your-app-token"})
_PLACEHOLDER_HINTS = {
    "slack_bot_token": "set the app's Bot User OAuth Token (xoxb-...)",
    "slack_signing_secret": "set the app's signing secret",
    "alertmanager_token": "set the bearer token Alertmanager sends",
    "slack_app_token": "set the app-level token (xapp-...) or leave it empty",
    "pagerduty_api_token": "set a PagerDuty REST API key or leave it empty",
    "pagerduty_webhook_secret": "set the webhook subscription's signing secret or leave it empty",
    "calendar_token": "set a long random token for the calendar feeds or leave it empty",
}

_ADMIN_ID = re.compile(r"[UWS][A-Z0-9]{2,}")


def admin_ids(value: str) -> list[str]:
    """INCIDENT_ADMINS as a list: `U01ALEX, S0ONCALL` -> ["U01ALEX", "S0ONCALL"]."""
    return [v.strip() for v in value.split(",") if v.strip()]


class Settings(BaseSettings):
    # Empty values mean "not set", so a copied .env.example with blanks behaves like the defaults.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
        hide_input_in_errors=True,  # a settings error must not print the secrets it was given
    )

    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    slack_api_url: SlackURL = "https://slack.com/api/"
    database_url: DatabaseURL = "sqlite:///./incidentbot.db"
    runbooks_dir: Path = Path("./runbooks")
    rotations_dir: Path = Path("./rotations")
    alertmanager_token: SecretStr | None = None
    # Without a token every Alertmanager request is refused, unless "none" says so on purpose.
    alertmanager_auth: Literal["bearer", "none"] = "bearer"
    incident_announce_channel: str | None = None
    port: int = Field(default=8080, ge=1, le=65535)
    host: str = "0.0.0.0"

    # PagerDuty (issue: both ways). Secrets may list several, comma separated, for rotation.
    pagerduty_api_token: SecretStr | None = None
    pagerduty_from_email: str = ""
    pagerduty_api_url: PagerDutyURL = "https://api.pagerduty.com"
    pagerduty_webhook_secret: SecretStr | None = None
    pagerduty_events_url: PagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

    # Alertmanager API v2, for silences from the incident card.
    alertmanager_url: AlertmanagerURL | None = None

    # Card silences (issue 16): while one is active, how often the bot asks Alertmanager whether
    # the group's alerts still fire (it sends no resolved notification for silenced alerts).
    silence_check_interval: SilenceInterval = "1m"

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

    # SMS, voice calls and Pushover (issue 18, part 2). Twilio: the account SID (AC...), its auth
    # token (it also signs Twilio's webhooks, /webhooks/twilio/sms and /voice, checked against
    # PUBLIC_URL) and the E.164 number pages come from. Pushover: the application's API token.
    # The API URLs point the adapters elsewhere (a local fake in tests).
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str = ""
    twilio_api_url: TwilioURL = "https://api.twilio.com"
    pushover_app_token: SecretStr | None = None
    pushover_api_url: PushoverURL = "https://api.pushover.net/1/"

    # Post-mortems and channel lifecycle.
    postmortems_dir: Path = Path("./postmortems")
    postmortem_template: Annotated[Path, AfterValidator(existing_file)] | None = None
    archive_after: Duration = "24h"  # "0" never archives

    # Socket Mode: with an app-level token the bot also connects out to Slack.
    slack_app_token: SecretStr | None = None

    # Dead man's switch and alert storms.
    heartbeat_alertname: str = "Watchdog"
    heartbeat_timeout: PositiveDuration = "10m"
    storm_threshold: int = Field(default=10, ge=1)
    storm_window: PositiveDuration = "5m"
    # Multiplies the Slack rate-limit tiers the outbox paces to (workspaces with raised limits).
    slack_rate_scale: float = Field(default=1.0, gt=0)

    # Tuning knobs (documented in .env.example); the defaults suit one workspace.
    channel_prefix: str = "inc"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    outbox_poll_seconds: float = Field(default=2.0, gt=0)
    # Processed inbox rows (every webhook received) are kept this long for debugging.
    inbox_retention: PositiveDuration = "7d"
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
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"

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

    # The HTTP edge (issue 16: large groups, slow clients). Alertmanager drops a 413, and a group of
    # ~1,600 alerts is more than 1 MiB: its endpoint has its own, larger cap.
    alertmanager_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # A client must send its request line and headers within this (from connecting, or from the first
    # byte of a later request on a kept-alive connection), then its body within HTTP_BODY_TIMEOUT.
    http_header_timeout: float = Field(default=10.0, gt=0)
    http_body_timeout: float = Field(default=30.0, gt=0)
    # An idle kept-alive connection is closed after this.
    http_keepalive_timeout: float = Field(default=5.0, gt=0)
    # Open connections (and requests in progress) beyond which requests get 503.
    http_max_connections: int = Field(default=1000, ge=1)

    # On-call from Slack (issue 19): INCIDENT_ADMINS (above) may also change any rotation's on-call,
    # and may name people keys there too. The calendar feeds (/calendar/*.ics) are off unless
    # CALENDAR_TOKEN is set.
    calendar_token: SecretStr | None = None
    # Handoff notices: DMs to the incoming and outgoing person, a line in the rotation's `channel:`,
    # and the `handoff_reminder:` DM. User-group sync (`slack_usergroup:`) runs either way.
    handoff_notices: bool = True

    @model_validator(mode="after")
    def _no_placeholders(self) -> Settings:
        problems = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                parts = value.get_secret_value().split(",")
                if any(part.strip().lower() in PLACEHOLDERS for part in parts):
                    hint = _PLACEHOLDER_HINTS.get(name, "set the real value")
                    problems.append(f"{name.upper()} is still the placeholder from .env.example; {hint}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

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
