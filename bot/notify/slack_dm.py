"""Slack DMs as a notifier, for test pages only: real pages keep the `page` operation (the DM
with the Acknowledge and Escalate buttons, crash-safe posting, Do Not Disturb)."""

from __future__ import annotations

from bot.core.text import escape, link
from bot.notify.port import Outgoing, Sent
from bot.slack.api import SlackAPI


class SlackDMNotifier:
    method = "slack"

    def __init__(self, slack: SlackAPI) -> None:
        self.slack = slack

    async def send(self, message: Outgoing) -> Sent:
        user = message.address
        if "@" in user:  # people without `slack:` are found by email, as pages find them
            user = str((await self.slack.call("users.lookupByEmail", email=user))["user"]["id"])
        channel = (await self.slack.call("conversations.open", users=user))["channel"]["id"]
        text = escape(message.text) + (
            f"\n{link(message.ack_url, 'Acknowledge this test')}" if message.ack_url else ""
        )
        posted = await self.slack.call("chat.postMessage", channel=channel, text=text)
        return Sent(str(posted.get("ts", "")), "Slack posted the DM")

    async def aclose(self) -> None:
        return None
