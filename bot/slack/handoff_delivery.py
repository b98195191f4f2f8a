"""Outbox operations for handoffs and user groups (DMs go through `oncall_dm`, see oncall_delivery):

* `handoff_post`: one line in the rotation's `channel:` (posted once per row, marked like every
  post); a channel Slack refuses for good is logged and dropped (the DMs still went out).
* `usergroup_sync`: make the user group hold whoever is on call now in the layers it follows
  (read at delivery, so a late or coalesced row still sets the latest state). Idempotent: Slack is
  asked for the members first (`usergroups.users.list`) and `usergroups.users.update` is called
  only when they differ. Both are tier 2 methods, paced by `Pacer`; a 429 retries the row. A group
  Slack does not know (`no_such_subteam`) or may not change is logged and dropped; nobody with a
  Slack user on call leaves the group as it is (Slack refuses to empty a group).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from anyio import to_thread

from bot.core.rotations import on_call_all
from bot.service.context import Context
from bot.service.handoffs import POST_OP, SYNC_OP
from bot.service.oncall_schedule import effective_rotation
from bot.slack.api import SlackCallError
from bot.slack.delivery import Completion, Handler, SlackDelivery
from bot.slack.oncall_delivery import OncallDelivery
from bot.store.db import reading
from bot.store.tables import Outbox

log = logging.getLogger(__name__)


class HandoffDelivery:
    def __init__(self, base: SlackDelivery, ctx: Context, people: OncallDelivery) -> None:
        self.base = base
        self.ctx = ctx
        self.people = people

    def handlers(self) -> dict[str, Handler]:
        return {POST_OP: self.post, SYNC_OP: self.sync}

    async def post(self, row: Outbox) -> Completion | None:
        channel = str(row.payload.get("channel", ""))
        try:
            await self.base.post_once(row, channel, text=str(row.payload.get("text", "")))
        except SlackCallError as exc:
            if exc.recoverable:
                raise
            log.warning("handoff line could not be posted in %s: %s", channel, exc.error)
        return None

    def _on_call(self, rotation: str, group: str) -> list[str] | None:
        """Who the group should hold now (people keys, in layer order); None: nothing to sync."""
        catalog = self.ctx.rotations
        if catalog is None or rotation not in catalog.rotations:
            return None
        layers = catalog.rotations[rotation].slack_usergroups.get(group)
        if not layers:
            return None
        now = self.ctx.clock()
        with reading(self.base.engine) as session:
            current = effective_rotation(self.ctx, session, rotation, now - timedelta(days=1))
        shifts = on_call_all(current, now)
        return list(dict.fromkeys(shifts[layer].person for layer in layers if layer in shifts))

    async def sync(self, row: Outbox) -> Completion | None:
        group, rotation = str(row.payload.get("group", "")), str(row.payload.get("rotation", ""))
        people = await to_thread.run_sync(self._on_call, rotation, group)
        if people is None:
            return None
        users = []
        for person in people:
            user = await self.people.slack_user(person)
            if user is None:
                log.warning("user group %s: no Slack user for %s, left out", group, person)
            else:
                users.append(user)
        if not users:
            log.warning(
                "user group %s of rotation %s: nobody on call has a Slack user; left as it is",
                group,
                rotation,
            )
            return None
        try:
            current = await self.base.slack.call("usergroups.users.list", usergroup=group)
            if set(current.get("users") or ()) == set(users):
                return None
            await self.base.slack.call("usergroups.users.update", usergroup=group, users=",".join(users))
        except SlackCallError as exc:
            if exc.recoverable:
                raise
            log.warning(
                "user group %s of rotation %s could not be synced: %s%s",
                group,
                rotation,
                exc.error,
                " (Slack does not know this group: check `slack_usergroup`)"
                if exc.error == "no_such_subteam"
                else "",
            )
            return None
        log.info("user group %s of rotation %s now holds %s", group, rotation, ", ".join(people))
        return None
