"""Issue 19 through the real bot: overrides and swaps from Slack (signed slash commands and button
clicks against the fake Slack), and what they change: who the next escalation step pages, `/oncall`,
`/oncall me`, the swap message and the DMs.

The rotation (America/Los_Angeles, weekly from Mon 2026-11-02 09:00): at T0 (Wed Nov 25, 12:00 PST)
alex is primary and sarah secondary; mike and the user group of priya are the rotation's admins; lisa
is nobody's concern here.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from tests.fakeslack.api_usergroups import add_usergroup
from tests.harness import Clock, post_alertmanager, slack_headers, slash_command_body, wait_until
from tests.test_flow_paging import click, dms_to

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # Wed 12:00 PST
ALEX, SARAH, DAVID, MIKE, LISA, PRIYA = "U01ALEX", "U02SARAH", "U01DAVID", "U01MIKE", "U01LISA", "U01PRIYA"
PEOPLE = """\
people:
  alex:  {slack: U01ALEX}
  sarah: {email: sarah@example.com}
  david: {slack: U01DAVID}
  mike:  {slack: U01MIKE}
  lisa:  {slack: U01LISA}
  priya: {slack: U01PRIYA}
"""
PLATFORM = """\
rotation:
  name: platform
  timezone: America/Los_Angeles
  start: 2026-11-02T09:00
  shift: 1w
  admins: [mike, {leads}]
  channel: {channel}
  layers:
    primary:   [alex, sarah, david]
    secondary: [sarah, david, alex]
escalation:
  steps:
    - {{after: 0m,  notify: primary}}
    - {{after: 15m, notify: primary}}
    - {{after: 30m, notify: secondary}}
"""


def oncall(bot, text: str, user: str = ALEX, channel: str = "C0GENERAL") -> dict[str, Any]:
    """`/oncall <text>` as `user`: the whole answer (text and blocks)."""
    body = slash_command_body("/oncall", text, user=user, channel=channel)
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text
    return r.json() if r.content else {}


def say(bot, text: str, user: str = ALEX) -> str:
    return oncall(bot, text, user).get("text", "")


def answers(fake, user: str) -> list[str]:
    """What `user` was told after a click: ephemerals anywhere, or the DM fallback."""
    found = [
        e.get("text", "")
        for c in fake.channels.values()
        for e in c.ephemeral
        if e.get("ephemeral_user") == user
    ]
    return found + [c.args.get("text", "") for c in dms_to(fake, user)]


@pytest.fixture
def oncall_bot(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": SARAH})
    channel = fake.create_channel("oncall-platform")
    leads = add_usergroup(fake, "oncall-leads", [PRIYA])
    rotations = tmp_path / "rotations"
    rotations.mkdir()
    (rotations / "people.yaml").write_text(PEOPLE)
    (rotations / "platform.yaml").write_text(PLATFORM.format(channel=channel.id, leads=leads))
    bot = start_bot(clock=Clock(T0), rotations_dir=rotations)
    bot.channel = channel.id
    return bot


def fire(bot) -> None:
    payload = json.loads((FIXTURES / "alertmanager-0.25" / "firing-single-alert.json").read_text())
    assert post_alertmanager(bot.url, payload).status_code == 202


def overrides(bot) -> list:
    from bot.store.tables import OncallOverride

    with Session(bot.ctx.engine) as session:
        return list(session.exec(select(OncallOverride).order_by(OncallOverride.id)))


def test_an_override_from_slack_changes_who_the_next_escalation_step_pages(oncall_bot, fake_slack):
    bot, fake = oncall_bot, fake_slack.fake
    fire(bot)
    wait_until(lambda: dms_to(fake, ALEX), 10, what="first page to alex, the primary")

    answer = say(bot, "override <@U01DAVID|david> platform now for 4h")
    assert "<@U01DAVID> covers platform primary" in answer, answer
    assert answer.count("<!date^") == 2, answer
    assert "primary: <@U01DAVID> (override" in say(bot, "platform")

    bot.clock.advance(minutes=15)
    wait_until(lambda: dms_to(fake, DAVID), 10, what="step 2 pages david, who took over primary")
    assert len(dms_to(fake, ALEX)) == 1  # alex's page stays: nothing is taken back
    assert not fake.calls_to("chat.delete")


def test_a_swap_is_posted_taken_by_a_second_user_and_a_third_is_refused(oncall_bot, fake_slack):
    bot, fake = oncall_bot, fake_slack.fake
    answer = say(bot, "swap platform now for 8h kid is sick")
    assert f"<#{bot.channel}>" in answer, answer
    post = wait_until(lambda: fake.messages(bot.channel), 10, what="swap request in the rotation's channel")[
        0
    ]
    assert "needs cover" in post["text"] and "kid is sick" in post["text"]
    take = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in take] == ["oncall_swap_take"]

    click(bot, "oncall_swap_take", take[0]["value"], SARAH, channel=bot.channel)
    wait_until(
        lambda: any("cover" in a for a in answers(fake, SARAH)),
        10,
        what=f"sarah told she took it: {answers(fake, SARAH)}",
    )
    [made] = overrides(bot)
    assert (made.who, made.layer) == ("sarah", "primary")
    # The span had begun: sarah covers from the click to its end (the clock flows meanwhile).
    assert timedelta(hours=7, minutes=59) < made.ends_at - made.starts_at <= timedelta(hours=8)
    assert "primary: sarah (override" in say(bot, "platform", user=LISA)  # email only: no mention
    wait_until(
        lambda: any(
            "covers" in c.args.get("text", "")
            for c in fake.calls_to("chat.update")
            if c.args.get("channel") == bot.channel
        ),
        10,
        what="the swap message says who took it",
    )
    updated = [c for c in fake.calls_to("chat.update") if c.args.get("channel") == bot.channel][-1]
    assert "actions" not in json.dumps(updated.args.get("blocks"))  # no Take button any more
    wait_until(
        lambda: any(
            "sarah" in c.args.get("text", "").lower() or SARAH in c.args.get("text", "")
            for c in dms_to(fake, ALEX)
        ),
        10,
        what="alex told by DM",
    )
    wait_until(lambda: dms_to(fake, SARAH), 10, what="sarah told by DM")

    click(bot, "oncall_swap_take", take[0]["value"], DAVID, channel=bot.channel)
    wait_until(lambda: any("already" in a.lower() for a in answers(fake, DAVID)), 10, what="david refused")
    assert len(overrides(bot)) == 1


def test_two_people_taking_at_once_one_wins(oncall_bot, fake_slack):
    bot, fake = oncall_bot, fake_slack.fake
    say(bot, "swap platform now for 8h")
    post = wait_until(lambda: fake.messages(bot.channel), 10, what="swap request")[0]
    value = next(e["value"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"])
    clicks = [
        threading.Thread(target=click, args=(bot, "oncall_swap_take", value, u, bot.channel))
        for u in (SARAH, DAVID)
    ]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    wait_until(lambda: answers(fake, SARAH) and answers(fake, DAVID), 10, what="both answered")
    assert len(overrides(bot)) == 1
    winner = overrides(bot)[0].who
    loser = DAVID if winner == "sarah" else SARAH
    assert any("already" in a.lower() for a in answers(fake, loser)), answers(fake, loser)


def test_who_may_override(oncall_bot):
    bot = oncall_bot
    refused = say(bot, "override <@U01DAVID> platform now for 4h", user=LISA)
    assert "Only the people concerned" in refused and "admins of platform" in refused, refused
    assert overrides(bot) == []
    assert "covers platform primary" in say(
        bot, "override <@U01DAVID> platform now for 4h", user=MIKE
    )  # admin
    assert "covers platform secondary" in say(
        bot, "override <@U01LISA> platform secondary now for 1h", user=LISA
    )
    # priya is in the rotation's admin user group (asked of Slack: usergroups.users.list).
    answer = say(bot, "override <@U01LISA> platform 2026-12-01T09:00 for 1h", user=PRIYA)
    assert "covers platform primary" in answer, answer


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("override <@U01DAVID> payments now for 4h", "There is no rotation named"),
        ("override <@U01DAVID> platform tertiary now for 4h", "has no layer 'tertiary'"),
        ("override <@U09NOBODY> platform now for 4h", "is not in people.yaml"),
        ("override <@U01DAVID> platform 2026-11-20T09:00 to 2026-11-26T09:00", "That starts in the past"),
        ("override <@U01DAVID> platform 2026-11-28T09:00 to 2026-11-27T09:00", "is not after the start"),
        ("override <@U01DAVID> platform now for 91d", "at most 90 days"),
        ("override <@U01DAVID> platform whenever", "Say when as"),
        ("override platform now for 4h", "Say who takes the shift"),
    ],
)
def test_bad_input_gets_one_sentence(oncall_bot, text: str, says: str):
    answer = say(oncall_bot, text)
    assert says in answer, answer
    assert overrides(oncall_bot) == []


def test_overlaps_are_refused_naming_the_other_unless_the_same_person_asks_again(oncall_bot):
    bot = oncall_bot
    say(bot, "override <@U01DAVID> platform now for 4h", user=DAVID)
    refused = say(bot, "override <@U01LISA> platform now for 2h", user=MIKE)
    assert "overlaps" in refused and "david" in refused, refused
    again = say(bot, "override <@U01DAVID> platform now for 6h", user=DAVID)
    assert "replaces" in again, again
    live = [o for o in overrides(bot) if o.removed_at is None]
    assert [(o.who, (o.ends_at - o.starts_at).total_seconds()) for o in live] == [("david", 6 * 3600)]


def test_overrides_are_listed_with_remove_buttons_that_obey_the_same_rule(oncall_bot, fake_slack):
    bot, fake = oncall_bot, fake_slack.fake
    say(bot, "override <@U01DAVID> platform now for 4h", user=DAVID)
    listing = oncall(bot, "overrides platform", user=LISA)
    assert "david" in json.dumps(listing) or "U01DAVID" in json.dumps(listing), listing
    [remove] = [e for b in listing["blocks"] if b.get("accessory") for e in [b["accessory"]]]
    assert remove["action_id"] == "oncall_override_remove"

    click(bot, "oncall_override_remove", remove["value"], LISA, channel=bot.channel)
    wait_until(
        lambda: any("Only the people concerned" in a for a in answers(fake, LISA)), 10, what="lisa refused"
    )
    assert overrides(bot)[0].removed_at is None

    click(bot, "oncall_override_remove", remove["value"], ALEX, channel=bot.channel)  # alex was covered
    wait_until(lambda: any("removed" in a.lower() for a in answers(fake, ALEX)), 10, what="alex removed it")
    assert overrides(bot)[0].removed_by == f"slack:{ALEX}"
    assert "primary: <@U01ALEX> until" in say(bot, "platform")


def test_an_expired_swap_says_so(oncall_bot, fake_slack):
    bot, fake = oncall_bot, fake_slack.fake
    say(bot, "swap platform now for 2h")
    post = wait_until(lambda: fake.messages(bot.channel), 10, what="swap request")[0]
    value = next(e["value"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"])
    bot.clock.advance(hours=2, minutes=1)
    bot.tick()
    wait_until(
        lambda: any(
            "expired" in c.args.get("text", "").lower()
            for c in fake.calls_to("chat.update")
            if c.args.get("channel") == bot.channel
        ),
        10,
        what="the message says the request expired",
    )
    click(bot, "oncall_swap_take", value, SARAH, channel=bot.channel)
    wait_until(
        lambda: any("expired" in a.lower() for a in answers(fake, SARAH)), 10, what="sarah told it expired"
    )
    assert overrides(bot) == []


def test_oncall_me_lists_my_next_shifts_overrides_included(oncall_bot):
    bot = oncall_bot
    say(bot, "override <@U01DAVID> platform 2026-11-27T09:00 to 2026-11-28T09:00", user=DAVID)
    mine = say(bot, "me", user=DAVID)
    # david: the override on Nov 27, primary Dec 7-14 (week 6 = index 5 % 3 = 2), secondary Nov 30-Dec 7.
    assert "override" in mine and mine.count("<!date^") >= 6, mine
    assert "platform primary" in mine and "platform secondary" in mine, mine
    assert "No shifts" in say(bot, "me", user="U0STRANGER") or "not in people.yaml" in say(
        bot, "me", user="U0STRANGER"
    )


def test_a_swap_slack_will_not_post_is_said_to_the_requester(start_bot, fake_slack, tmp_path):
    # The rotation's channel is private and the bot is not in it: chat.postMessage answers
    # channel_not_found for good. Nobody could click Take, so alex is told by DM at once.
    fake = fake_slack.fake
    hidden = fake.create_channel("oncall-hidden", is_private=True, bot_member=False)
    rotations = tmp_path / "rotations"
    rotations.mkdir()
    (rotations / "people.yaml").write_text(PEOPLE)
    (rotations / "platform.yaml").write_text(PLATFORM.format(channel=hidden.id, leads="S0LEADS"))
    bot = start_bot(clock=Clock(T0), rotations_dir=rotations)
    assert "Asked for cover" in say(bot, "swap platform now for 8h")
    told = wait_until(
        lambda: [
            c.args.get("text", "")
            for c in dms_to(fake, ALEX)
            if "could not be posted" in c.args.get("text", "")
        ],
        10,
        what="alex told the request could not be posted",
    )
    assert "channel_not_found" in told[0] and "/oncall override" in told[0], told
    from bot.store.tables import OncallAudit, SwapRequest

    with Session(bot.ctx.engine) as session:
        assert [s.status for s in session.exec(select(SwapRequest))] == ["unposted"]
        kinds = [a.kind for a in session.exec(select(OncallAudit).order_by(OncallAudit.id))]
    assert kinds == ["swap_requested", "swap_unposted"]


def test_incident_admins_may_change_any_rotation(start_bot, fake_slack, tmp_path):
    rotations = tmp_path / "rotations"
    rotations.mkdir()
    (rotations / "people.yaml").write_text(PEOPLE)
    (rotations / "platform.yaml").write_text(PLATFORM.format(channel="C0NONE", leads="S0LEADS"))
    bot = start_bot(clock=Clock(T0), rotations_dir=rotations, incident_admins="U01LISA, S0OTHER")
    assert "covers platform primary" in say(bot, "override <@U01DAVID> platform now for 4h", user=LISA)
    assert "Only the people concerned" in say(bot, "override <@U01DAVID> platform now for 8h", user=PRIYA)


def test_only_the_person_on_call_asks_for_cover(oncall_bot):
    refused = say(oncall_bot, "swap platform now for 4h", user=LISA)
    assert "only the person on call can ask for cover" in refused, refused
    assert "not in people.yaml" in say(oncall_bot, "swap platform now for 4h", user="U0STRANGER")
