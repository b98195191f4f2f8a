"""Local fakes of the notification providers, speaking their real protocols over loopback:
an SMTP server (aiosmtpd, optional STARTTLS with a throwaway CA), an ntfy server and a webhook
receiver that checks signatures. Each records what it received and can be told to refuse."""

from .ntfy import FakeNtfy
from .smtp import FakeSMTP, SmtpMessage
from .webhook import FakeWebhookReceiver

__all__ = ["FakeNtfy", "FakeSMTP", "FakeWebhookReceiver", "SmtpMessage"]
