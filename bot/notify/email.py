"""Email through an SMTP relay (aiosmtplib).

`SMTP_URL`: `smtp://[user:pass@]host[:port]` (port 587 by default; STARTTLS whenever the server
offers it, before any password is sent) or `smtps://...` (TLS from the first byte, port 465).
`SMTP_FROM` is the sender. Each page is a plain-text and an HTML part with the incident, severity,
summary, links and the acknowledge link. The Message-ID is derived from the notification, so a
retry after a lost answer carries the same Message-ID (mail systems that deduplicate drop it).

Failures: a 5xx reply (unknown mailbox, refused sender, relaying denied, bad login) is final; 4xx
replies, timeouts and dropped connections are retried inside the rule's window.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, select_autoescape

from bot.notify.port import NotifyError, Outgoing, Sent, network_error

_HTML = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string(
    """<!doctype html>
<html><body style="font-family: sans-serif">
<h2>{% if m.test %}TEST: {% endif %}{{ m.subject }}</h2>
{% if m.summary %}<p>{{ m.summary }}</p>{% endif %}
<p>Severity: <b>{{ m.severity }}</b>{% if m.incident_id %} · Incident #{{ m.incident_id }}{% endif %}</p>
{% if m.ack_url %}<p><a href="{{ m.ack_url }}" style="font-size: 1.2em; font-weight: bold">Acknowledge</a>
(opens a page with an Acknowledge button)</p>{% endif %}
{% if m.open_url %}<p><a href="{{ m.open_url }}">Open the incident</a></p>{% endif %}
<pre style="color: #555">{{ m.text }}</pre>
</body></html>
"""
)


class SmtpConfig:
    """SMTP_URL taken apart; `str()` never shows the password."""

    def __init__(self, url: str, sender: str, ca_file: Path | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must be smtp://[user:pass@]host[:port] or smtps://...")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.ca_file = ca_file

    def __repr__(self) -> str:
        return f"SmtpConfig({'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port})"

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context


def build_message(config: SmtpConfig, message: Outgoing) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = config.sender
    mail["To"] = message.address
    mail["Subject"] = ("[TEST] " if message.test else "") + message.subject
    mail["Date"] = formatdate(localtime=False)
    domain = config.sender.rpartition("@")[2].strip(">") or "incidentbot"
    mail["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
    mail["X-Priority"] = "1" if message.severity == "SEV1" else "3"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text)
    mail.add_alternative(_HTML.render(m=message), subtype="html")
    return mail


class EmailNotifier:
    method = "email"

    def __init__(self, config: SmtpConfig, timeout: float) -> None:
        self.config = config
        self.timeout = timeout

    async def send(self, message: Outgoing) -> Sent:
        config = self.config
        mail = build_message(config, message)
        try:
            refused, reply = await aiosmtplib.send(
                mail,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.implicit_tls,
                start_tls=None if not config.implicit_tls else False,  # None: STARTTLS when offered
                tls_context=config.tls_context(),
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            code = first.code if first else 550
            raise _refused(code, first.message if first else "recipient refused") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _refused(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected) as exc:
            raise network_error(self.method, exc) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise NotifyError(self.method, f"SMTP: {type(exc).__name__}", recoverable=True) from exc
        if refused:
            code, text = next(iter(refused.values()))
            raise _refused(code, text)
        return Sent(mail["Message-ID"], f"the mail server accepted it ({reply.strip()[:120]})")

    async def aclose(self) -> None:
        return None


def _refused(code: int, text: str) -> NotifyError:
    return NotifyError("email", f"SMTP {code}: {text.strip()[:160]}", recoverable=400 <= code < 500)
