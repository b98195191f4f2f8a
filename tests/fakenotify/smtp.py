"""A real SMTP server (aiosmtpd) that keeps what it receives.

`FakeSMTP(tls=True)` offers STARTTLS with a certificate from a throwaway CA (trustme); its
`ca_file` is what the bot must trust (SMTP_CA_FILE). `refuse(code, text)` refuses recipients, as a
server answers an unknown mailbox (550) or a full one (452). `require_auth` checks a login (only
after STARTTLS, as aiosmtpd insists by default).
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.harness import free_port


@dataclass
class SmtpMessage:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool  # the session had switched to TLS (STARTTLS) before DATA
    at: float = 0.0  # time.time() when the message was accepted

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""


class _Handler:
    def __init__(self, fake: FakeSMTP) -> None:
        self.fake = fake

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        refusal = self.fake.refusal
        if refusal is not None:
            return f"{refusal[0]} {refusal[1]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        tls = session.ssl is not None
        got = SmtpMessage(envelope.mail_from, list(envelope.rcpt_tos), parsed, tls, time.time())  # type: ignore[arg-type]
        with self.fake.lock:
            self.fake.messages.append(got)
            self.fake.received.notify_all()
        return f"250 Message accepted for delivery (queued as Q{len(self.fake.messages)})"


class FakeSMTP:
    def __init__(self, tmp: Path, *, tls: bool = False, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.received = threading.Condition(self.lock)
        self.messages: list[SmtpMessage] = []
        self.refusal: tuple[int, str] | None = None
        self.logins: list[str] = []
        self.ca_file: Path | None = None
        kwargs: dict[str, Any] = {}
        if tls:
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            self.ca_file = tmp / "smtp-ca.pem"
            ca.cert_pem.write_to_path(str(self.ca_file))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            kwargs["tls_context"] = context
        if login is not None:
            kwargs["authenticator"] = self._authenticator(login)
            kwargs["auth_required"] = True
        # A generous ready timeout: on a loaded machine the server thread may take seconds to answer.
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=30, **kwargs
        )

    def _authenticator(self, login: tuple[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            if isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == login:
                self.logins.append(data.login.decode())
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False)

        return check

    def url(self, scheme: str = "smtp", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def refuse(self, code: int = 550, text: str = "5.1.1 No such user here") -> None:
        self.refusal = (code, text)

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[SmtpMessage]:
        with self.lock:
            if not self.received.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} mail(s), got {len(self.messages)}")
            return list(self.messages)

    def __enter__(self) -> FakeSMTP:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
