"""Who people are, between Slack and people.yaml: the person a Slack user is (by the `slack:` ID
in people.yaml, else by the email Slack has for them, asked once with `users.info` and cached), and
whether a Slack user is in a user group (for rotation `admins:` and INCIDENT_ADMINS naming `S…`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.rotations import Catalog
from bot.core.errors import ConfigProblem
from bot.core.oncall_changes import USER_GROUP

log = logging.getLogger(__name__)

PERSON_TTL = 3600.0  # a user's email rarely changes; people.yaml only changes with a restart
GROUP_TTL = 300.0  # group membership changes more often: asked again after five minutes


class SlackPeople:
    def __init__(self, catalog: Catalog | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.catalog = catalog
        self.clock = clock
        self._by_user = {
            p.slack_id: p.name for p in (catalog.people.values() if catalog else ()) if p.slack_id
        }
        self._by_email = {
            p.email.lower(): p.name for p in (catalog.people.values() if catalog else ()) if p.email
        }
        self._looked_up: dict[str, tuple[str | None, float]] = {}

    async def person_of(self, client: AsyncWebClient, user: str) -> str | None:
        """The people.yaml key of Slack user `user`, or None (not listed, or Slack cannot say)."""
        if user in self._by_user:
            return self._by_user[user]
        if not self._by_email:
            return None
        cached = self._looked_up.get(user)
        if cached is not None and self.clock() - cached[1] < PERSON_TTL:
            return cached[0]
        try:
            found = await client.users_info(user=user)
        except Exception as exc:  # unknown user, Slack down: not a person we know, for now
            log.info("could not look up Slack user %s: %s", user, type(exc).__name__)
            return None
        email = str(((found.get("user") or {}).get("profile") or {}).get("email") or "").lower()
        person = self._by_email.get(email)
        self._looked_up[user] = (person, self.clock())
        return person


class UserGroupMembers:
    """`(user, group) -> bool` for the use cases (they run in worker threads, hence a sync client).
    A group Slack cannot list counts as empty: nobody gets a permission from a lookup that failed."""

    def __init__(self, client: WebClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self._members: dict[str, tuple[frozenset[str], float]] = {}

    def __call__(self, user: str, group: str) -> bool:
        return user in self.members(group)

    def members(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached is not None and self.clock() - cached[1] < GROUP_TTL:
            return cached[0]
        try:
            found = self.client.usergroups_users_list(usergroup=group)
            members = frozenset(str(u) for u in found.get("users") or ())
        except Exception as exc:
            error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error")
            log.warning("could not list user group %s: %s", group, error or type(exc).__name__)
            return frozenset()
        self._members[group] = (members, self.clock())
        return members


def user_groups_named(
    catalog: Catalog, incident_admins: Sequence[str] = ()
) -> dict[str, list[ConfigProblem]]:
    """Each user group (`S…`) the configuration names, and where: (file, line, what it is for)."""
    named: dict[str, list[ConfigProblem]] = {}
    for name, rotation in catalog.rotations.items():
        file, line = catalog.admins_at.get(name, (name, 0))
        for entry in rotation.admins:
            if USER_GROUP.fullmatch(entry):
                why = f"`admins`: Slack does not know user group {entry} (usergroups.list), so it makes "
                named.setdefault(entry, []).append(
                    ConfigProblem(file, line, why + f"nobody an admin of rotation {name}")
                )
        file, line = catalog.usergroups_at.get(name, (name, 0))
        for group in rotation.slack_usergroups:
            why = (
                f"`slack_usergroup`: Slack does not know user group {group} (usergroups.list, or "
                f"no_such_subteam), so the on-call of rotation {name} cannot be kept in it"
            )
            named.setdefault(group, []).append(ConfigProblem(file, line, why))
    for entry in incident_admins:
        if USER_GROUP.fullmatch(entry):
            why = f"`admins`: Slack does not know user group {entry} (usergroups.list), so it makes "
            named.setdefault(entry, []).append(
                ConfigProblem("INCIDENT_ADMINS", 0, why + "nobody an incident admin")
            )
    return named


def unknown_user_groups(
    named: dict[str, list[ConfigProblem]], known: Iterable[dict[str, Any]]
) -> list[ConfigProblem]:
    """A problem (said as a warning) for each place naming a group `usergroups.list` does not list."""
    ids = {str(group.get("id")) for group in known}
    return [where for group, places in named.items() if group not in ids for where in places]


async def say_unknown_user_groups(
    client: AsyncWebClient, catalog: Catalog, incident_admins: Sequence[str]
) -> None:
    """At start, in the background: log each user group (admins, on-call) Slack does not know."""
    named = user_groups_named(catalog, incident_admins)
    if not named:
        return
    try:
        found = await client.usergroups_list()
    except Exception as exc:
        log.info("could not check the user groups with Slack: %s", type(exc).__name__)
        return
    for problem in unknown_user_groups(named, found.get("usergroups") or ()):
        log.warning("%s", problem)
