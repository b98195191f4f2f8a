"""A page Slack refuses for good is said out loud, shown in status, and escalates at once.

Through the real endpoints (Alertmanager webhook, signed slash commands) against the fake Slack,
whose accounts can be deactivated (`conversations.open` -> `user_disabled`), bots (`cannot_dm_bot`)
or unknown (`user_not_found`). The harness clock is never advanced by a step's delay: the next
step's DM arriving proves the early escalation.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bot.core.escalation import EarlyEscalation, EscalationStep, PageOutcome, Target, early_escalation
from bot.store.tables import Incident, Page, TimelineEntry, Timer
from tests.harness import Clock, post_alertmanager, wait_until
from tests.test_flow_commands import incident_channel, slash
from tests.test_flow_paging import dms_to, fixture

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

PEOPLE = """\
people:
  alex:  {slack: U01ALEX, email: alex@example.com}
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
  nobody: {email: ghost@example.com}
"""


def rotations(tmp_path: Path, steps: str, primary: str = "alex") -> Path:
    """A rotations dir like tests/fixtures/rotations, with these escalation steps (YAML lines)."""
    folder = tmp_path / "rotations"
    folder.mkdir()
    (folder / "people.yaml").write_text(PEOPLE)
    (folder / "routes.yaml").write_text("routes:\n  - {default: true, rotation: platform}\n")
    (folder / "platform.yaml").write_text(
        "rotation:\n  name: platform\n  timezone: UTC\n  start: 2026-11-23T00:00\n  shift: 1w\n"
        f"  layers:\n    primary: [{primary}]\n    secondary: [sarah]\n    manager: [mike]\n"
        f"escalation:\n  steps:\n{steps}  repeat: 0\n"
    )
    return folder


def entries(bot, kind: str) -> list[TimelineEntry]:
    with Session(bot.ctx.engine) as session:
        return list(
            session.exec(
                select(TimelineEntry).where(col(TimelineEntry.kind) == kind).order_by(col(TimelineEntry.id))
            )
        )


def step_2_waits_its_delay(bot) -> bool:
    """Step 2 is still pending, due 15 minutes after the incident opened (the plan, untouched)."""
    with Session(bot.ctx.engine) as session:
        timer = session.exec(
            select(Timer).where(col(Timer.status) == "pending", col(Timer.kind) == "escalation")
        ).one()
        incident = session.get(Incident, timer.incident_id)
        assert incident is not None
        return timer.key == "c0r0s1" and timer.due_at == incident.created_at + timedelta(minutes=15)


def said(fake, channel_id: str, *parts: str) -> str:
    """The message in `channel_id` that contains every one of `parts` (waits for it)."""
    return wait_until(
        lambda: next(
            (t for t in (m.get("text", "") for m in fake.messages(channel_id)) if all(p in t for p in parts)),
            None,
        ),
        15,
        what=f"a message with {parts}",
    )


@pytest.fixture
def bot(start_bot, fake_slack):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    return start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")


@pytest.mark.parametrize(
    ("account", "error"),
    [
        ({"deleted": True}, "user_disabled"),
        ({"is_bot": True}, "cannot_dm_bot"),
        ({"exists": False}, "user_not_found"),
    ],
)
def test_a_page_refused_for_good_is_said_shown_and_escalates_at_once(bot, fake_slack, account, error):
    fake = fake_slack.fake
    fake.update_user("U01ALEX", **account)
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202

    # Step 2 (sarah, 15 minutes later in the plan) is paged now: the clock was not advanced.
    wait_until(lambda: dms_to(fake, "U02SARAH"), 15, what="the secondary's page, at once")
    assert not dms_to(fake, "U01ALEX") and not dms_to(fake, "U03MIKE")
    chan = incident_channel(fake)
    line = said(fake, chan.id, "Could not page <@U01ALEX>", f"Slack answered {error}")
    assert "Nobody on step 1 could be paged" in line and "step 2" in line, line

    [failed] = entries(bot, "page_failed")
    assert failed.data["person"] == "alex" and failed.data["error"] == error
    assert failed.data["user"] == "U01ALEX" and failed.data["step"] == "c0r0s0"
    stepped = [e.text for e in entries(bot, "escalation")]
    assert any("Paging sarah (step 2: nobody on step 1 could be paged)" in t for t in stepped), stepped

    status = slash(bot, "status", channel=chan.id)
    assert f"Could not page <@U01ALEX>: {error}" in status, status
    paged = next(line for line in status.splitlines() if line.startswith("Paged:"))
    assert "U01ALEX" not in paged and "<@U02SARAH>" in paged, status
    # The rest of the plan moved up with step 2: the manager is due 15 minutes after it, not at 30.
    assert re.search(r"next escalation step in 1[45]m", status), status
    with Session(bot.ctx.engine) as session:
        page = session.exec(select(Page).where(col(Page.person) == "alex")).one()
        assert page.failed_at is not None and page.failure == error and page.dm_ts is None


def test_one_page_delivered_keeps_the_step_waiting(start_bot, fake_slack, tmp_path):
    """Step 1 pages alex (deactivated) and mike (fine): mike can still acknowledge, so no early step."""
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": "U02SARAH"})
    steps = "    - {after: 0m, notify: [primary, manager]}\n    - {after: 15m, notify: secondary}\n"
    bot = start_bot(clock=Clock(T0), rotations_dir=rotations(tmp_path, steps))
    fake.deactivate_user("U01ALEX")
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202

    wait_until(lambda: dms_to(fake, "U03MIKE"), 15, what="mike's page")
    wait_until(lambda: entries(bot, "page_failed"), 15, what="alex's page failing")
    chan = incident_channel(fake)
    line = said(fake, chan.id, "Could not page <@U01ALEX>", "Slack answered user_disabled")
    assert "Nobody on step" not in line, line
    bot.tick()
    assert step_2_waits_its_delay(bot)
    assert not dms_to(fake, "U02SARAH")
    status = slash(bot, "status", channel=chan.id)
    assert "Could not page <@U01ALEX>: user_disabled" in status and "<@U03MIKE>" in status, status


def test_the_last_step_failing_sends_the_final_notice_now(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start_bot(
        clock=Clock(T0), rotations_dir=rotations(tmp_path, "    - {after: 0m, notify: primary}\n")
    )
    fake.deactivate_user("U01ALEX")
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    chan = incident_channel(fake)
    line = said(fake, chan.id, "Could not page <@U01ALEX>", "Slack answered user_disabled")
    assert "step 1 was the last step" in line, line
    said(fake, chan.id, "<!here>", "Nobody has acknowledged this incident")
    assert len(entries(bot, "final_notice")) == 1


def test_no_slack_user_for_the_email_escalates_too(start_bot, fake_slack, tmp_path):
    """The existing "no Slack user" case is a page failed for good like the others."""
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": "U02SARAH"})
    steps = "    - {after: 0m, notify: primary}\n    - {after: 15m, notify: secondary}\n"
    bot = start_bot(clock=Clock(T0), rotations_dir=rotations(tmp_path, steps, primary="nobody"))
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    wait_until(lambda: dms_to(fake, "U02SARAH"), 15, what="the secondary's page, at once")
    chan = incident_channel(fake)
    line = said(fake, chan.id, "Could not page nobody", "no Slack user for ghost@example.com")
    assert "Nobody on step 1 could be paged" in line, line
    [failed] = entries(bot, "page_failed")
    assert failed.data["error"] == "users_not_found" and failed.data["person"] == "nobody"
    assert "Could not page nobody: users_not_found" in slash(bot, "status", channel=chan.id)


def test_a_dm_post_refused_by_slack_fails_the_page(bot, fake_slack):
    """chat.postMessage refusing the DM (a workspace preference: restricted_action) counts too."""
    fake = fake_slack.fake
    fake.add_fault(
        method="chat.postMessage",
        channel="D*",
        mode="error500",
        status=200,
        error="restricted_action",
        count=1,
    )
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    wait_until(lambda: dms_to(fake, "U02SARAH"), 15, what="the secondary's page, at once")
    chan = incident_channel(fake)
    said(fake, chan.id, "Could not page <@U01ALEX>", "Slack answered restricted_action")


def test_a_page_by_hand_that_fails_is_said_and_moves_nothing(bot, fake_slack):
    """`/incident page @someone` outside the plan: said and shown, the plan keeps its pace."""
    fake = fake_slack.fake
    fake.update_user("U0HELPER", is_bot=True)
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    wait_until(lambda: dms_to(fake, "U01ALEX"), 15, what="the primary's page")
    chan = incident_channel(fake)
    # The helper is not in people.yaml: paging them is the lead's call, so the primary takes the lead.
    refused = slash(bot, "page <@U0HELPER|helper>", channel=chan.id)
    assert refused == "Only the lead and admins may page someone who is not in people.yaml."
    assert "<@U01ALEX> leads" in slash(bot, "lead <@U01ALEX>", channel=chan.id)
    assert "Paging <@U0HELPER>" in slash(bot, "page <@U0HELPER|helper>", channel=chan.id)
    line = said(fake, chan.id, "Could not page <@U0HELPER>", "Slack answered cannot_dm_bot")
    assert "(paged by hand)" in line and "Nobody on" not in line, line
    bot.tick()
    assert step_2_waits_its_delay(bot) and not dms_to(fake, "U02SARAH")
    assert "Could not page <@U0HELPER>: cannot_dm_bot" in slash(bot, "status", channel=chan.id)


def test_transient_errors_are_retried_not_counted(bot, fake_slack):
    fake = fake_slack.fake
    fake.add_fault(method="conversations.open", mode="ratelimit", retry_after=1, count=2)
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    wait_until(lambda: dms_to(fake, "U01ALEX"), 15, what="the primary's page after the rate limit")
    chan = incident_channel(fake)
    said(fake, chan.id, "Paged <@U01ALEX>")
    bot.tick()
    assert not entries(bot, "page_failed") and not dms_to(fake, "U02SARAH")
    assert step_2_waits_its_delay(bot)


def test_without_a_channel_yet_the_announce_channel_is_told(start_bot, fake_slack):
    """The incident channel cannot be made for now (rate-limited for two minutes): the failure
    is said in the announce channel at once instead of waiting behind it."""
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": "U02SARAH"})
    announce = fake.create_channel("incidents")
    fake.add_fault(method="conversations.create", mode="ratelimit", retry_after=120, count=1)
    bot = start_bot(
        clock=Clock(T0), rotations_dir=FIXTURES / "rotations", incident_announce_channel=announce.id
    )
    fake.deactivate_user("U01ALEX")
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    line = said(fake, announce.id, "Could not page <@U01ALEX>", "Slack answered user_disabled")
    assert "#inc-" in line and "Nobody on step 1 could be paged" in line, line
    wait_until(lambda: dms_to(fake, "U02SARAH"), 15, what="the secondary's page, at once")
    assert not any(c.name.startswith("inc-") for c in fake.channels.values())


def test_a_person_deactivated_after_an_earlier_page_is_found_out(bot, fake_slack):
    """Slack accepts posts into a DM opened before the account was deactivated, so a DM channel
    remembered forever would page nobody, silently. It is looked up again after a while, and
    conversations.open says user_disabled."""
    fake = fake_slack.fake
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    wait_until(lambda: dms_to(fake, "U01ALEX"), 15, what="the first page")
    fake.deactivate_user("U01ALEX")
    bot.clock.advance(minutes=10)
    second = copy.deepcopy(fixture("firing-single-alert.json"))
    second["groupKey"] = '{}:{alertname="WeaviateDown", service="weaviate-eu"}'
    second["groupLabels"]["service"] = "weaviate-eu"
    assert post_alertmanager(bot.url, second).status_code == 202
    wait_until(lambda: entries(bot, "page_failed"), 15, what="the second page failing")
    wait_until(lambda: dms_to(fake, "U02SARAH"), 15, what="the second incident's step 2, at once")
    assert len(dms_to(fake, "U01ALEX")) == 1


# -- the rule (pure core) ---------------------------------------------------------------------------

STEP = EscalationStep(timedelta(0), (Target.layer("primary"),))


@pytest.mark.parametrize(
    ("outcomes", "step", "current", "expected"),
    [
        (["failed"], STEP, True, EarlyEscalation.NOBODY_REACHABLE),
        (["failed", "failed"], STEP, True, EarlyEscalation.NOBODY_REACHABLE),
        (["failed", "delivered"], STEP, True, EarlyEscalation.SOMEONE_PAGED),
        (["failed", "under_way"], STEP, True, EarlyEscalation.SOMEONE_PAGED),
        (["failed"], STEP, False, EarlyEscalation.NOT_WAITING),
        (["failed"], None, True, EarlyEscalation.NOT_WAITING),  # a page outside the plan
        (
            ["failed"],
            EscalationStep(timedelta(0), (Target.layer("primary"), Target.pagerduty("R0UTINGKEY"))),
            True,
            EarlyEscalation.PAGERDUTY,
        ),
        ([], STEP, True, EarlyEscalation.SOMEONE_PAGED),  # nothing known failed: never early
    ],
)
def test_early_escalation_rule(
    outcomes: list[PageOutcome], step, current: bool, expected: EarlyEscalation
) -> None:
    assert early_escalation(step, outcomes, waiting=current) is expected
