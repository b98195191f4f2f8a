"""Which Slack workspace and app this bot is installed as, and who its admins are right now.

Both are learned from Slack's Web API in the background, so a start while Slack is down is not held
up: the workspace (`auth.test`'s `team_id`) and app (`bots.info`'s `app_id` for `auth.test`'s
`bot_id`) are retried with backoff until Slack answers; INCIDENT_ADMINS' user groups are expanded
with `usergroups.users.list` (scope `usergroups:read`) every few minutes, keeping the last answer
while Slack cannot give a new one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.api import CREDENTIAL_ERRORS

log = logging.getLogger(__name__)

ADMIN_GROUPS_REFRESH_SECONDS = 300.0
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


class Installation:
    """The installed workspace and app. Until Slack has said which they are, requests are not
    refused for their team or app: the signature already proves they were signed with this app's
    secret, and refusing every click while Slack's API is unreachable at start would stop people
    acknowledging during the very outage they are working."""

    def __init__(self) -> None:
        self.team_id: str | None = None
        self.app_id: str | None = None

    @property
    def known(self) -> bool:
        return self.team_id is not None and self.app_id is not None

    def foreign(self, team_id: str | None, app_id: str | None) -> bool:
        """A request from another workspace or app than this installation's."""
        return (self.team_id is not None and team_id is not None and team_id != self.team_id) or (
            self.app_id is not None and app_id is not None and app_id != self.app_id
        )

    async def learn(self, client: AsyncWebClient) -> None:
        """Ask Slack until it answers (backoff up to a minute; a refused token is asked about once
        a minute, like the outbox's credentials re-check, not probed every few seconds)."""
        delay = RETRY_FIRST_SECONDS
        while not self.known:
            try:
                me = await client.auth_test()
                app_id = me.get("app_id")  # not in auth.test's documented bot answer: bots.info has it
                if not app_id:
                    app_id = (await client.bots_info(bot=str(me["bot_id"])))["bot"]["app_id"]
                self.team_id, self.app_id = str(me["team_id"]), str(app_id)
                log.info("installed in Slack team %s as app %s", self.team_id, self.app_id)
            except Exception as exc:
                if isinstance(exc, SlackApiError) and exc.response.get("error") in CREDENTIAL_ERRORS:
                    delay = RETRY_MAX_SECONDS
                log.warning("could not learn the Slack team and app yet (retrying in %.0fs): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)


class Admins:
    """INCIDENT_ADMINS as Slack user IDs: users as listed, user groups (S…) by their members.
    Called from use-case threads: it only reads one frozenset that `refresh` swaps whole."""

    def __init__(self, ids: list[str]) -> None:
        self.users = frozenset(i for i in ids if not i.startswith("S"))
        self.groups = tuple(dict.fromkeys(i for i in ids if i.startswith("S")))
        self._members: dict[str, frozenset[str]] = {}
        self._all = self.users

    def __call__(self) -> frozenset[str]:
        return self._all

    async def refresh(self, client: AsyncWebClient) -> bool:
        """Read every group again; True when each answered."""
        answered = True
        for group in self.groups:
            try:
                found: Any = await client.usergroups_users_list(usergroup=group)
                self._members[group] = frozenset(str(u) for u in found.get("users") or ())
            except Exception as exc:
                answered = False
                log.warning("could not read admin user group %s (keeping what was known): %s", group, exc)
        self._all = self.users.union(*self._members.values())
        return answered


async def watch(installation: Installation, admins: Admins, client: AsyncWebClient) -> None:
    """The background task of the web process: learn the installation, keep admin groups fresh."""
    learning = asyncio.create_task(installation.learn(client))
    try:
        while admins.groups:
            answered = await admins.refresh(client)
            await asyncio.sleep(ADMIN_GROUPS_REFRESH_SECONDS if answered else RETRY_MAX_SECONDS)
        await learning
    finally:
        learning.cancel()
