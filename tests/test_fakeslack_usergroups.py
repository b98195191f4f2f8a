"""The fake Slack's usergroups.* methods answer like Slack (docs.slack.dev/reference/methods/usergroups.*)."""

from __future__ import annotations

import httpx
import pytest

from tests.fakeslack.api_usergroups import add_usergroup, restrict_usergroup_changes, usergroup_members


def call(fake_slack, method: str, **args) -> dict:
    r = httpx.post(f"{fake_slack.url}{method}", data=args, headers={"Authorization": "Bearer xoxb-test"})
    assert r.status_code == 200
    return r.json()


def test_list_members_and_replace_them(fake_slack) -> None:
    group = add_usergroup(fake_slack.fake, "oncall-platform", ["U01ALEX"])
    assert call(fake_slack, "usergroups.users.list", usergroup=group) == {"ok": True, "users": ["U01ALEX"]}
    updated = call(fake_slack, "usergroups.users.update", usergroup=group, users="U01DAVID, U01SARAH")
    assert updated["ok"] and updated["usergroup"]["users"] == ["U01DAVID", "U01SARAH"]
    assert updated["usergroup"]["user_count"] == 2
    assert usergroup_members(fake_slack.fake, group) == ["U01DAVID", "U01SARAH"]
    listed = call(fake_slack, "usergroups.list")["usergroups"]
    assert [g["handle"] for g in listed] == ["oncall-platform"] and "users" not in listed[0]
    assert call(fake_slack, "usergroups.list", include_users="true")["usergroups"][0]["users"] == [
        "U01DAVID",
        "U01SARAH",
    ]


def test_disabled_groups_are_hidden_unless_asked_for(fake_slack) -> None:
    group = add_usergroup(fake_slack.fake, "old-team", ["U01ALEX"], disabled=True)
    assert call(fake_slack, "usergroups.list")["usergroups"] == []
    assert call(fake_slack, "usergroups.users.list", usergroup=group)["error"] == "no_such_subteam"
    assert call(fake_slack, "usergroups.users.list", usergroup=group, include_disabled="true")["users"] == [
        "U01ALEX"
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"usergroup": "S0NOPE", "users": "U01ALEX"}, "no_such_subteam"),
        ({"users": "U01ALEX"}, "missing_argument"),
        ({"usergroup": "<group>"}, "no_users_provided"),
        ({"usergroup": "<group>", "users": ""}, "no_users_provided"),
        ({"usergroup": "<group>", "users": "alex"}, "invalid_users"),
        ({"usergroup": "<group>", "users": "U01ALEX,U0BOT"}, "invalid_user"),
        ({"usergroup": "<group>", "users": "U0GONE"}, "failed_for_some_users"),
    ],
)
def test_update_refuses_like_slack(fake_slack, args: dict, error: str) -> None:
    group = add_usergroup(fake_slack.fake, "oncall", ["U01ALEX"])
    fake_slack.fake.update_user("U0GONE", exists=False)
    args = {k: (group if v == "<group>" else v) for k, v in args.items()}
    answer = call(fake_slack, "usergroups.users.update", **args)
    assert answer == {"ok": False, "error": error}
    assert usergroup_members(fake_slack.fake, group) == ["U01ALEX"]


def test_a_workspace_that_lets_only_admins_change_groups(fake_slack) -> None:
    group = add_usergroup(fake_slack.fake, "oncall", ["U01ALEX"])
    restrict_usergroup_changes(fake_slack.fake)
    answer = call(fake_slack, "usergroups.users.update", usergroup=group, users="U01DAVID")
    assert answer["error"] == "permission_denied"
