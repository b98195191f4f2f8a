"""The fake Slack's dnd.info answers like Slack: the schedule for other users, snooze fields only
for the calling user (here the bot), user_not_found for an unknown ID, missing_scope without dnd:read."""

from __future__ import annotations

import time

from tests.fakeslack import BOT_USER_ID, FakeSlack


def test_dnd_info_shapes() -> None:
    fake = FakeSlack()
    assert fake.api("dnd.info", user="U01ALEX") == {
        "ok": True, "dnd_enabled": False, "next_dnd_start_ts": 1, "next_dnd_end_ts": 1,
    }  # fmt: skip
    now = time.time()
    fake.set_dnd("U01ALEX", start=now - 60, end=now + 60, snooze_until=now + 600)
    other = fake.api("dnd.info", user="U01ALEX")
    assert other["dnd_enabled"] is True and other["next_dnd_start_ts"] == int(now - 60)
    assert "snooze_enabled" not in other  # snooze is visible to the user alone
    fake.set_dnd(BOT_USER_ID, enabled=False, snooze_until=now + 600)
    own = fake.api("dnd.info")
    assert (
        own["snooze_enabled"] is True
        and own["snooze_endtime"] == int(now + 600)
        and own["snooze_remaining"] > 0
    )
    fake.update_user("U0GONE", exists=False)
    assert fake.api("dnd.info", user="U0GONE")["error"] == "user_not_found"
    fake.grant_scopes({"chat:write"})
    assert fake.api("dnd.info", user="U01ALEX")["error"] == "missing_scope"
