"""Local fakes of the notification providers, speaking their real protocols over loopback:
an SMTP server (aiosmtpd, optional STARTTLS with a throwaway CA), an ntfy server, a webhook
receiver that checks signatures, Twilio (SMS and calls, and its signed webhooks back to the bot)
and Pushover (with emergency receipts). Each records what it received and can be told to refuse."""

from .ntfy import FakeNtfy
from .pushover import FakePushover
from .smtp import FakeSMTP, SmtpMessage
from .twilio import FakeTwilio
from .webhook import FakeWebhookReceiver

__all__ = ["FakeNtfy", "FakePushover", "FakeSMTP", "FakeTwilio", "FakeWebhookReceiver", "SmtpMessage"]
