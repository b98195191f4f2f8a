"""Which notifiers exist and which are configured: one entry per provider.

A new vendor is one `Provider` here (and its module): `incidentbot check` then knows which
settings it needs, and the outbox operation `notify` dispatches to it by method name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.core.errors import ConfigError, ConfigProblem
from bot.core.notify_rules import METHODS
from bot.notify.email import EmailNotifier, SmtpConfig
from bot.notify.ntfy import NtfyNotifier
from bot.notify.port import Notifier
from bot.notify.pushover import PushoverNotifier
from bot.notify.twilio import TwilioConfig, TwilioSmsNotifier, TwilioVoiceNotifier
from bot.notify.webhook import WebhookNotifier
from bot.settings import Settings


def _secret(value: object) -> str:
    get = getattr(value, "get_secret_value", None)
    return str(get()) if get else ""


@dataclass(frozen=True)
class Provider:
    method: str
    needs: str  # the settings it needs, as people write them
    configured: Callable[[Settings], bool]
    build: Callable[[Settings], Notifier]


TWILIO_NEEDS = "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER"


def _twilio_configured(s: Settings) -> bool:
    return bool(s.twilio_account_sid and _secret(s.twilio_auth_token) and s.twilio_from_number)


def _twilio(s: Settings) -> TwilioConfig:
    return TwilioConfig(
        s.twilio_account_sid, _secret(s.twilio_auth_token), s.twilio_from_number, s.twilio_api_url
    )


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "email",
        "SMTP_URL and SMTP_FROM",
        lambda s: bool(_secret(s.smtp_url) and s.smtp_from),
        lambda s: EmailNotifier(
            SmtpConfig(_secret(s.smtp_url), s.smtp_from, s.smtp_ca_file), s.notify_timeout_seconds
        ),
    ),
    Provider(
        "ntfy",
        "NTFY_URL",
        lambda s: bool(s.ntfy_url),
        lambda s: NtfyNotifier(s.ntfy_url, _secret(s.ntfy_token) or None, s.notify_timeout_seconds),
    ),
    Provider(
        "webhook",
        "SECRET_KEY (it signs webhook notifications)",
        lambda s: bool(_secret(s.secret_key)),
        lambda s: WebhookNotifier(_secret(s.secret_key), s.notify_timeout_seconds),
    ),
    Provider(
        "sms",
        TWILIO_NEEDS,
        _twilio_configured,
        lambda s: TwilioSmsNotifier(_twilio(s), s.public_url, s.notify_timeout_seconds),
    ),
    Provider(
        "voice",
        TWILIO_NEEDS,
        _twilio_configured,
        lambda s: TwilioVoiceNotifier(_twilio(s), s.public_url, s.notify_timeout_seconds),
    ),
    Provider(
        "pushover",
        "PUSHOVER_APP_TOKEN",
        lambda s: bool(_secret(s.pushover_app_token)),
        lambda s: PushoverNotifier(
            _secret(s.pushover_app_token), s.pushover_api_url, s.notify_timeout_seconds
        ),
    ),
)

# Methods people may name whose providers are not part of this version yet (none left).
NOT_YET: dict[str, str] = {}


def missing(settings: Settings) -> dict[str, str]:
    """Method -> the settings it still needs (configured methods and Slack are not listed)."""
    out = dict(NOT_YET)
    for provider in PROVIDERS:
        if not provider.configured(settings):
            out[provider.method] = provider.needs
        else:
            out.pop(provider.method, None)
    return {m: needs for m, needs in out.items() if m in METHODS and m != "slack"}


def setting_problems(settings: Settings) -> list[ConfigProblem]:
    """Provider settings that are set but cannot work (a malformed SMTP_URL, say)."""
    problems: dict[str, ConfigProblem] = {}  # SMS and voice share Twilio's settings: said once
    for provider in PROVIDERS:
        if provider.configured(settings):
            try:
                provider.build(settings)
            except ValueError as exc:
                setting = str(exc).split()[0] if str(exc).split()[0].isupper() else provider.needs.split()[0]
                problems.setdefault(str(exc), ConfigProblem(setting.rstrip(","), 0, str(exc)))
    return list(problems.values())


def build(settings: Settings) -> dict[str, Notifier]:
    """The configured notifiers by method; ConfigError names a setting that cannot work."""
    problems = setting_problems(settings)
    if problems:
        raise ConfigError(problems)
    return {p.method: p.build(settings) for p in PROVIDERS if p.configured(settings)}
