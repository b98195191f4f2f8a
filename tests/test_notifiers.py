"""Each notifier against its local fake, speaking the real protocol: what it sends, and how every
failure is classified (final, or worth retrying)."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.notify.email import EmailNotifier, SmtpConfig
from bot.notify.ntfy import NtfyNotifier
from bot.notify.port import NotifyError, Outgoing
from bot.notify.webhook import WebhookNotifier
from tests.fakenotify import FakeNtfy, FakeSMTP, FakeWebhookReceiver
from tests.harness import free_port

SECRET = "webhook-secret"


def message(method: str, address: str, severity: str = "SEV1", **kw) -> Outgoing:
    fields = {
        "notification_id": 17,
        "method": method,
        "address": address,
        "person": "alex",
        "subject": f"[{severity}] Incident #42: Checkout <down> & out",
        "severity": severity,
        "text": "Checkout is down\nAcknowledge: https://bot.example.com/ack/t0k3n\n",
        "incident_id": 42,
        "title": "Checkout <down> & out",
        "summary": "5xx above 50% <script>alert(1)</script>",
        "ack_url": "https://bot.example.com/ack/t0k3n",
        "open_url": "https://slack.com/app_redirect?channel=C1",
        "idempotency_key": "incidentbot-abc-n17",
    }
    fields.update(kw)
    return Outgoing(**fields)


def send(notifier, msg: Outgoing):
    async def go():
        try:
            return await notifier.send(msg)
        finally:
            await notifier.aclose()

    return asyncio.run(go())


@pytest.fixture
def ntfy():
    with FakeNtfy() as fake:
        yield fake


@pytest.mark.parametrize(("severity", "priority"), [("SEV1", 5), ("SEV2", 4), ("SEV3", 3)])
def test_ntfy_publishes_json_with_priority_by_severity_and_two_buttons(ntfy, severity, priority) -> None:
    sent = send(NtfyNotifier(ntfy.url, None, 5), message("ntfy", "alex-pages", severity))
    body = ntfy.accepted()[0]
    assert body["topic"] == "alex-pages" and body["priority"] == priority
    assert body["actions"] == [
        {
            "action": "http",
            "label": "Acknowledge",
            "url": "https://bot.example.com/ack/t0k3n",
            "method": "POST",
            "clear": True,
        },
        {"action": "view", "label": "Open", "url": "https://slack.com/app_redirect?channel=C1"},
    ]
    assert sent.receipt and sent.receipt in sent.answer


def test_ntfy_token_goes_only_to_our_own_server(ntfy) -> None:
    ntfy.protect("alex-pages", "tk_ours")
    send(NtfyNotifier(ntfy.url, "tk_ours", 5), message("ntfy", "alex-pages"))
    assert ntfy.publishes[-1].authorization == "Bearer tk_ours"
    # A full topic URL on another server (here: the same fake under another name) gets no token.
    other = ntfy.url.replace("127.0.0.1", "localhost") + "/alex-elsewhere"
    send(NtfyNotifier(ntfy.url, "tk_ours", 5), message("ntfy", other))
    assert ntfy.publishes[-1].authorization is None and ntfy.publishes[-1].body["topic"] == "alex-elsewhere"


@pytest.mark.parametrize(
    ("status", "recoverable", "text"),
    [
        (403, False, "HTTP 403: forbidden (code 40301)"),
        (400, False, "HTTP 400"),
        (429, True, "HTTP 429"),
        (500, True, "HTTP 500"),
        (503, True, "HTTP 503"),
    ],
)
def test_ntfy_failures_are_classified(ntfy, status, recoverable, text) -> None:
    ntfy.fail(status)
    with pytest.raises(NotifyError) as failed:
        send(NtfyNotifier(ntfy.url, None, 5), message("ntfy", "alex-pages"))
    assert failed.value.recoverable is recoverable and failed.value.error.startswith(text)
    if status == 429:
        assert failed.value.retry_after == 1.0


def test_ntfy_unreachable_is_a_network_error_worth_retrying() -> None:
    with pytest.raises(NotifyError) as failed:
        send(NtfyNotifier(f"http://127.0.0.1:{free_port()}", None, 2), message("ntfy", "alex-pages"))
    assert failed.value.recoverable and failed.value.maybe_done


def test_webhook_is_signed_and_carries_the_same_idempotency_key_on_a_retry() -> None:
    with FakeWebhookReceiver(SECRET) as hook:
        hook.answer(503)
        with pytest.raises(NotifyError) as failed:
            send(WebhookNotifier(SECRET, 5), message("webhook", hook.url()))
        assert failed.value.recoverable
        send(WebhookNotifier(SECRET, 5), message("webhook", hook.url()))
        first, second = hook.deliveries
        assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "incidentbot-abc-n17"
        assert second.signed and second.status == 200
        body = second.body
        assert body["type"] == "page" and body["person"] == "alex" and body["ack_url"].endswith("/ack/t0k3n")
        assert body["incident"] == {
            "id": 42,
            "title": "Checkout <down> & out",
            "severity": "SEV1",
            "summary": "5xx above 50% <script>alert(1)</script>",
            "url": "https://slack.com/app_redirect?channel=C1",
        }
        assert list(hook.unique()) == ["incidentbot-abc-n17"]


def test_webhook_signed_with_another_key_is_refused_and_that_is_final() -> None:
    with FakeWebhookReceiver(SECRET) as hook:
        with pytest.raises(NotifyError) as failed:
            send(WebhookNotifier("not-the-key", 5), message("webhook", hook.url()))
        assert not failed.value.recoverable and failed.value.error.startswith("HTTP 401")
        assert not hook.deliveries[0].signed


def test_email_over_starttls_with_login_plain_and_html(tmp_path) -> None:
    with FakeSMTP(tmp_path, tls=True, login=("bot", "p@ss word")) as smtp:
        config = SmtpConfig(
            smtp.url(userinfo="bot:p%40ss%20word"), "Incidentbot <bot@example.com>", smtp.ca_file
        )
        assert "p@ss" not in repr(config)
        sent = send(EmailNotifier(config, 5), message("email", "alex@example.com"))
        mail = smtp.wait_for(1)[0]
    assert mail.tls and smtp.logins == ["bot"]
    assert mail.message["Message-ID"] == "<incidentbot-abc-n17@example.com>" == sent.receipt
    assert mail.message["Subject"] == "[SEV1] Incident #42: Checkout <down> & out"
    assert "Acknowledge: https://bot.example.com/ack/t0k3n" in mail.part("plain")
    html = mail.part("html")
    assert '<a href="https://bot.example.com/ack/t0k3n"' in html
    assert "&lt;script&gt;" in html and "<script>" not in html  # alert text is escaped
    assert "accepted it" in sent.answer


def test_email_with_implicit_tls(tmp_path) -> None:
    import ssl

    import trustme
    from aiosmtpd.controller import Controller

    from tests.fakenotify.smtp import _Handler

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with FakeSMTP(tmp_path) as smtp:  # its handler, behind a TLS-from-the-start listener
        port = free_port()
        controller = Controller(_Handler(smtp), hostname="127.0.0.1", port=port, ssl_context=context)
        controller.start()
        try:
            config = SmtpConfig(f"smtps://127.0.0.1:{port}", "bot@example.com", tmp_path / "ca.pem")
            send(EmailNotifier(config, 5), message("email", "alex@example.com"))
        finally:
            controller.stop()
    assert smtp.messages[0].recipients == ["alex@example.com"]


@pytest.mark.parametrize(("code", "recoverable"), [(550, False), (553, False), (452, True), (421, True)])
def test_email_refusals_are_classified_by_reply_code(tmp_path, code, recoverable) -> None:
    with FakeSMTP(tmp_path) as smtp:
        smtp.refuse(code, "4.2.2 mailbox full" if recoverable else "5.1.1 no such user")
        with pytest.raises(NotifyError) as failed:
            send(
                EmailNotifier(SmtpConfig(smtp.url(), "bot@example.com"), 5), message("email", "x@example.com")
            )
    assert failed.value.recoverable is recoverable and failed.value.error.startswith(f"SMTP {code}")


def test_email_server_down_is_worth_retrying() -> None:
    config = SmtpConfig(f"smtp://127.0.0.1:{free_port()}", "bot@example.com")
    with pytest.raises(NotifyError) as failed:
        send(EmailNotifier(config, 2), message("email", "x@example.com"))
    assert failed.value.recoverable


def test_smtp_url_is_checked() -> None:
    for bad in ("mail.example.com", "http://mail.example.com", "smtp://"):
        with pytest.raises(ValueError, match="SMTP_URL"):
            SmtpConfig(bad, "bot@example.com")
    assert SmtpConfig("smtp://m.example.com", "b@example.com").port == 587
    assert SmtpConfig("smtps://m.example.com", "b@example.com").port == 465


def test_test_messages_say_so(ntfy) -> None:
    send(NtfyNotifier(ntfy.url, None, 5), message("ntfy", "alex-pages", "SEV3", test=True, incident_id=None))
    assert ntfy.accepted()[0]["tags"] == ["test_tube"]
    assert json.dumps(ntfy.accepted()[0])
