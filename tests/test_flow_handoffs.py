"""Issue 19, handoffs through the real bot (fake Slack, settable clock): at each shift change the
incoming person is told by DM, the outgoing one gets a summary, the rotation's channel one line; a
reminder goes out before; each exactly once; late ones say so. The user group follows handoffs and
overrides made from Slack, and a group edited by hand is repaired at start.

The rotation (UTC, 8h shifts from 2026-11-25 09:00): primary alex 09-17, sarah 17-01, alex 01-09...
At T0 (16:00) alex is primary; the next handoff is 17:00 (alex -> sarah), the reminder at 16:30.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, col, select

from tests.fakeslack.api_usergroups import add_usergroup, usergroup_members
from tests.harness import Clock, wait_until
from tests.test_flow_oncall import say
from tests.test_flow_paging import dms_to

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
ALEX, SARAH, DAVID, LISA = "U01ALEX", "U02SARAH", "U01DAVID", "U01LISA"
PEOPLE = """\
people:
  alex:  {slack: U01ALEX, timezone: Europe/Berlin}
  sarah: {slack: U02SARAH}
  david: {slack: U01DAVID}
  lisa:  {slack: U01LISA}
"""
PLATFORM = """\
rotation:
  name: platform
  timezone: UTC
  start: 2026-11-25T09:00
  shift: 8h
  channel: {channel}
  handoff_reminder: 30m
{extra}  layers:
    primary:   [alex, sarah]
    secondary: [david]
escalation:
  steps:
    - {{after: 0m, notify: primary}}
"""


def texts(fake, user: str) -> list[str]:
    return [c.args.get("text", "") for c in dms_to(fake, user)]


def start(start_bot, fake, tmp_path: Path, *, extra: str = "", notices: bool = True, clock=None):
    channel = fake.create_channel("oncall-platform")
    rotations = tmp_path / "rotations"
    rotations.mkdir(exist_ok=True)
    (rotations / "people.yaml").write_text(PEOPLE)
    (rotations / "platform.yaml").write_text(PLATFORM.format(channel=channel.id, extra=extra))
    bot = start_bot(clock=clock or Clock(T0), rotations_dir=rotations, handoff_notices=notices)
    bot.channel = channel.id
    return bot


def lines(fake, channel: str) -> list[str]:
    return [m["text"] for m in fake.messages(channel)]


def settle(bot, seconds: float = 1.0) -> None:
    """Let a few scheduler ticks and outbox polls pass (they run every 0.1-0.2 s in tests)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        bot.tick()
        time.sleep(0.1)


def test_each_notice_is_sent_once_at_the_handoff_and_the_reminder_before(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start(start_bot, fake, tmp_path)
    settle(bot, 0.5)
    assert not texts(fake, SARAH) and not lines(fake, bot.channel)  # nothing before its time

    bot.clock.advance(minutes=29)  # 16:29: the reminder is due at 16:30
    settle(bot, 0.5)
    assert not texts(fake, SARAH)
    bot.clock.advance(minutes=1, seconds=1)
    [reminder] = wait_until(lambda: texts(fake, SARAH), 10, what="the reminder to sarah")
    assert reminder.startswith(":alarm_clock: Reminder: you are on call for platform primary from <!date^")
    assert "late" not in reminder

    bot.clock.advance(minutes=30)  # 17:00:01
    wait_until(lambda: len(texts(fake, SARAH)) == 2, 10, what="sarah told she is on call")
    wait_until(lambda: texts(fake, ALEX), 10, what="alex's summary")
    wait_until(lambda: lines(fake, bot.channel), 10, what="the channel's line")
    settle(bot, 1.5)
    incoming = texts(fake, SARAH)[1]
    assert incoming.startswith(":pager: You are on call for platform primary from <!date^"), incoming
    assert "until <!date^" in incoming and "late" not in incoming, incoming
    [summary] = texts(fake, ALEX)
    assert "Your platform primary shift ended" in summary and "0 incident(s)" in summary, summary
    assert "Thu" not in summary and "Wed Nov 25 18:00 CET" in summary, summary  # alex's own zone
    [line] = lines(fake, bot.channel)
    assert f"<@{SARAH}> takes over from <@{ALEX}>" in line, line
    assert not texts(fake, DAVID)  # a one-member layer never hands off

    from bot.store.tables import OncallAudit, Timer

    with Session(bot.ctx.engine) as session:
        pending = session.exec(select(Timer).where(col(Timer.status) == "pending")).all()
        audit = session.exec(select(OncallAudit).where(col(OncallAudit.kind) == "handoff")).all()
    assert sorted(t.key for t in pending) == [
        "handoff:platform:primary:2026-11-26T01:00:00+00:00",
        "reminder:platform:primary:2026-11-26T01:00:00+00:00",
    ]
    assert [a.text for a in audit] == ["alex -> sarah"]


def test_a_late_handoff_says_so(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start(start_bot, fake, tmp_path)
    bot.clock.advance(hours=1, minutes=10)  # 17:10: as if the bot had been down at 17:00
    [incoming] = wait_until(lambda: texts(fake, SARAH), 10, what="sarah told, late")
    assert "late: the bot was down at the handoff" in incoming, incoming
    settle(bot, 1.0)
    assert len(texts(fake, SARAH)) == 1  # the reminder came too late to be worth sending


def test_handoff_notices_off_sends_nothing(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start(start_bot, fake, tmp_path, notices=False)
    bot.clock.advance(hours=1, minutes=1)
    settle(bot, 1.5)
    assert not texts(fake, SARAH) and not texts(fake, ALEX) and not lines(fake, bot.channel)


def test_an_override_from_slack_is_a_handoff_to_the_person_actually_on_call(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start(start_bot, fake, tmp_path)
    # lisa covers 17:00-18:00: the handoff at 17:00 goes to lisa, not sarah.
    answer = say(bot, "override <@U01LISA> platform 2026-11-25T17:00 for 1h", user=SARAH)
    assert "covers platform primary" in answer, answer
    bot.clock.advance(hours=1, seconds=1)
    wait_until(lambda: any("You are on call" in t for t in texts(fake, LISA)), 10, what="lisa told")
    settle(bot, 1.0)
    assert [t for t in texts(fake, LISA) if "(an override)" in t], texts(fake, LISA)
    assert not [t for t in texts(fake, SARAH) if "You are on call" in t]  # lisa covers her first hour
    assert f"<@{LISA}> takes over from <@{ALEX}>" in lines(fake, bot.channel)[0]


def test_the_user_group_is_repaired_at_start_and_follows_overrides_and_handoffs(
    start_bot, fake_slack, tmp_path
):
    fake = fake_slack.fake
    group = add_usergroup(fake, "platform-oncall", [LISA])  # edited by hand
    extra = f"  slack_usergroup:\n    primary: {group}\n"
    bot = start(start_bot, fake, tmp_path, extra=extra, notices=False)
    wait_until(lambda: usergroup_members(fake, group) == [ALEX], 10, what="the group repaired at start")
    assert f"<!subteam^{group}>" in say(bot, "platform")

    say(bot, "override <@U01DAVID> platform now for 30m", user=ALEX)
    wait_until(lambda: usergroup_members(fake, group) == [DAVID], 10, what="the group follows the override")
    bot.clock.advance(minutes=30, seconds=1)
    wait_until(lambda: usergroup_members(fake, group) == [ALEX], 10, what="back to alex when it ends")
    bot.clock.advance(minutes=30)
    wait_until(lambda: usergroup_members(fake, group) == [SARAH], 10, what="sarah after the handoff")
    updates = len(fake.calls_to("usergroups.users.update"))
    settle(bot, 1.0)
    sent = [c.args.get("users") for c in fake.calls_to("usergroups.users.update")]
    assert len(sent) == updates, sent  # nothing more once it holds the person on call
    # Each change once (a call repeated after a timeout on a loaded machine would be the same set).
    changes = [users for i, users in enumerate(sent) if i == 0 or sent[i - 1] != users]
    assert changes == [ALEX, DAVID, ALEX, SARAH], sent


def test_a_group_slack_does_not_know_is_logged(start_bot, fake_slack, tmp_path, caplog):
    caplog.set_level("WARNING")
    start(start_bot, fake_slack.fake, tmp_path, extra="  slack_usergroup: S0NOPE\n", notices=False)
    said = wait_until(
        lambda: [r.getMessage() for r in caplog.records if "S0NOPE" in r.getMessage()], 10, what="a warning"
    )
    assert any("slack_usergroup" in s and "Slack does not know" in s for s in said), said


def test_the_outgoing_summary_counts_the_shift_and_names_what_is_handed_over(start_bot, fake_slack, tmp_path):
    from tests.test_flow_oncall import fire

    fake = fake_slack.fake
    bot = start(start_bot, fake, tmp_path)
    fire(bot)  # routed to platform (the only rotation): alex, the primary, is paged
    wait_until(lambda: texts(fake, ALEX), 10, what="alex paged")
    bot.clock.advance(hours=1, seconds=1)
    summary = wait_until(
        lambda: [t for t in texts(fake, ALEX) if "shift ended" in t], 10, what="alex's summary"
    )[0]
    assert "1 incident(s), 1 page(s) to you, 0 acknowledged by you" in summary, summary
    assert "Handed over unresolved: #1 " in summary, summary
