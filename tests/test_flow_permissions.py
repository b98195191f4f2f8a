"""Only the right people act (issue 16, section 2), through the real endpoints.

Observed on a running bot: any workspace member could resolve, close, reopen, re-severity, page,
escalate and silence any incident; a forged click in someone else's page DM acknowledged it; and 30
`/incident declare ... sev1` in under a second opened 30 incidents and paged 30 times. Each refusal
is an ephemeral sentence saying who may, and changes nothing.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, func, select

from bot.store.tables import Incident, Page, TimelineEntry
from tests.harness import (
    Clock,
    block_action_body,
    join_channel,
    post_alertmanager,
    processed,
    slack_event,
    slack_headers,
    slash_command_body,
    wait_until,
)
from tests.test_flow_commands import incident_channel, slash
from tests.test_flow_paging import dms_to

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
AM_FIRING = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
STRANGER = "U0STRANGER"
COMMANDERS = "Only the lead, people paged for this incident, members of the platform rotation and admins may"
RESPONDERS = (
    "Only the lead, people paged for this incident, members of the incident channel, members of the "
    "platform rotation and admins may"
)


@pytest.fixture
def bot(start_bot, fake_slack):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    return start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")


def click(bot, action_id: str, value: str, user: str, channel: str) -> None:
    body = block_action_body(action_id, value, user=user, channel=channel)
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text


def answers(fake, channel_id: str, user: str) -> list[str]:
    """The ephemeral answers `user` got in a channel (a click's answer)."""
    return [m["text"] for m in fake.channel(channel_id).ephemeral if m.get("ephemeral_user") == user]


def answer_to_click(bot, fake, action_id: str, value: str, user: str, channel: str) -> str:
    before = len(answers(fake, channel, user))
    click(bot, action_id, value, user, channel)
    got = wait_until(lambda: answers(fake, channel, user)[before:], 10, what=f"answer to {action_id}")
    return got[0]


def state(bot, incident_id: int) -> tuple:
    """What a refused request must not change: status, severity, lead, pages, entries by the stranger."""
    with Session(bot.ctx.engine) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        pages = session.exec(select(func.count()).select_from(Page)).one()
        by_stranger = session.exec(
            select(func.count()).where(col(TimelineEntry.actor) == f"slack:{STRANGER}")
        ).one()
        return incident.status, incident.severity, incident.lead, pages, by_stranger


def declared(bot, fake) -> tuple[int, str]:
    assert "declared (SEV1)" in slash(bot, "declare Checkout is failing sev1")
    chan = incident_channel(fake)
    wait_until(lambda: dms_to(fake, "U01ALEX"), 10, what="page to the primary")
    with Session(bot.ctx.engine) as session:
        incident_id = session.exec(select(Incident.id)).one()
    return incident_id, chan.id


COMMANDER_COMMANDS = {
    "resolve": "resolve it",
    "close": "close it",
    "reopen": "reopen it",
    "sev 3": "change its severity",
    f"lead <@{STRANGER}>": "name its lead",
    "escalate": "escalate it",
    "page platform": "page people for it",
    "postmortem": "write its post-mortem",
}
RESPONDER_COMMANDS = {
    "ack": "acknowledge it",
    "note I restarted it": "add notes to it",
    "action add an alert": "add action items to it",
    "runbook": "post its runbook again",
}


def test_strangers_are_refused_every_command_with_who_may(bot, fake_slack):
    fake = fake_slack.fake
    incident_id, channel = declared(bot, fake)
    before = state(bot, incident_id)
    for text, verb in COMMANDER_COMMANDS.items():
        assert slash(bot, text, channel=channel, user=STRANGER) == f"{COMMANDERS} {verb}.", text
    for text, verb in RESPONDER_COMMANDS.items():
        assert slash(bot, text, channel=channel, user=STRANGER) == f"{RESPONDERS} {verb}.", text
    assert state(bot, incident_id) == before
    # Anyone may look.
    assert "State: *triggered*" in slash(bot, "status", channel=channel, user=STRANGER)
    assert "Incident opened" in slash(bot, "timeline", channel=channel, user=STRANGER)
    assert "1 open incident" in slash(bot, "list", user=STRANGER)
    assert "primary" in slash(bot, "", command="/oncall", user=STRANGER)


def test_channel_members_may_work_the_incident_but_not_command_it(bot, fake_slack):
    fake = fake_slack.fake
    _incident_id, channel = declared(bot, fake)
    join_channel(bot, fake, channel, STRANGER)
    assert slash(bot, "note I restarted it", channel=channel, user=STRANGER) == "Note added to the timeline."
    assert "added to the timeline" in slash(bot, "action add an alert", channel=channel, user=STRANGER)
    assert "You acknowledged" in slash(bot, "ack", channel=channel, user=STRANGER)
    assert slash(bot, "resolve", channel=channel, user=STRANGER) == f"{COMMANDERS} resolve it."
    # Leaving the channel ends it.
    slack_event(bot, {"type": "member_left_channel", "user": STRANGER, "channel": channel})
    fake.channel(channel).members.remove(STRANGER)
    assert slash(bot, "note back", channel=channel, user=STRANGER) == f"{RESPONDERS} add notes to it."


def test_the_lead_the_paged_and_the_rotation_may_command(bot, fake_slack):
    fake = fake_slack.fake
    _incident_id, channel = declared(bot, fake)  # alex declares (so leads) and is paged as primary
    assert "Severity is now SEV2" in slash(bot, "sev 2", channel=channel, user="U03MIKE")  # rotation
    assert "<@U0OUTSIDE> leads" in slash(bot, "lead <@U0OUTSIDE>", channel=channel, user="U01ALEX")
    assert "Severity is now SEV3" in slash(bot, "sev 3", channel=channel, user="U0OUTSIDE")  # the new lead
    assert "Escalated" in slash(bot, "escalate", channel=channel, user="U01ALEX")  # paged
    wait_until(lambda: dms_to(fake, "U02SARAH"), 10, what="page to the secondary")
    assert "You resolved" in slash(bot, "resolve", channel=channel, user="U02SARAH")  # paged
    # Sarah is in people.yaml by email only: since a page found her Slack ID, she counts as a member
    # of the rotation on incidents she was not paged for.
    assert "declared" in slash(bot, "declare Second outage sev3", user="U03MIKE")
    second = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.endswith("second-outage")), None), 10
    )
    assert "You resolved" in slash(bot, "resolve", channel=second.id, user="U02SARAH")


def test_strangers_clicks_on_the_card_are_refused(bot, fake_slack):
    fake = fake_slack.fake
    r = post_alertmanager(bot.url, AM_FIRING)
    incident_id = processed(bot, r)["incident"]
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-")), None), 10
    )
    wait_until(lambda: dms_to(fake, "U01ALEX"), 10, what="page to the primary")
    before = state(bot, incident_id)
    for action_id, value, verb in (
        ("incident_ack", str(incident_id), f"{RESPONDERS} acknowledge it."),
        ("incident_escalate", str(incident_id), f"{COMMANDERS} escalate it."),
        ("incident_resolve", str(incident_id), f"{COMMANDERS} resolve it."),
        ("incident_silence_1h", f"{incident_id}:3600", f"{COMMANDERS} silence its alerts."),
    ):
        assert answer_to_click(bot, fake, action_id, value, STRANGER, chan.id) == verb, action_id
    runbook = wait_until(
        lambda: next(
            (m for m in fake.messages(chan.id) if "runbook_step_done" in json.dumps(m.get("blocks"))), None
        ),
        15,
        what="the runbook posted",
    )
    done = next(
        b["accessory"] for b in runbook["blocks"] if "runbook_step_done" in json.dumps(b.get("accessory"))
    )
    said = answer_to_click(bot, fake, done["action_id"], done["value"], STRANGER, chan.id)
    assert said == f"{RESPONDERS} tick off its runbook steps."
    assert state(bot, incident_id) == before  # nothing changed, no timeline entry by the stranger
    # The primary (paged) may.
    assert "You resolved" in answer_to_click(
        bot, fake, "incident_resolve", str(incident_id), "U01ALEX", chan.id
    )


def test_a_page_dm_button_acts_only_for_the_person_it_was_sent_to(bot, fake_slack):
    fake = fake_slack.fake
    incident_id, _channel = declared(bot, fake)
    page = dms_to(fake, "U01ALEX")[0]
    buttons = {
        e["action_id"]: e["value"]
        for b in page.args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }
    dm = page.args["channel"]
    before = state(bot, incident_id)
    # Mike may escalate and acknowledge from the card (rotation), but not from Alex's page.
    for action_id in ("incident_ack", "incident_escalate"):
        said = answer_to_click(bot, fake, action_id, buttons[action_id], "U03MIKE", dm)
        assert said == "This page was sent to <@U01ALEX>; only they can act on it. Use the incident channel."
    assert state(bot, incident_id) == before
    said = answer_to_click(bot, fake, "incident_ack", buttons["incident_ack"], "U01ALEX", dm)
    assert "You acknowledged" in said


def test_admins_by_user_id_and_by_user_group_may_do_everything(start_bot, fake_slack):
    fake = fake_slack.fake
    fake.set_usergroup("S0INCIDENT", ["U0GROUPIE"])
    bot = start_bot(
        clock=Clock(T0), rotations_dir=FIXTURES / "rotations", incident_admins="U0ADMIN, S0INCIDENT"
    )
    fake.wait_for_call("usergroups.users.list", timeout=10)
    _incident_id, channel = declared(bot, fake)
    assert "Severity is now SEV2" in slash(bot, "sev 2", channel=channel, user="U0ADMIN")
    assert "Paging <@U0NOTLISTED>" in slash(bot, "page <@U0NOTLISTED>", channel=channel, user="U0ADMIN")
    assert "You acknowledged" in slash(bot, "ack", channel=channel, user="U0GROUPIE")
    assert "You resolved" in slash(bot, "resolve", channel=channel, user="U0GROUPIE")
    assert slash(bot, "reopen", channel=channel, user=STRANGER) == f"{COMMANDERS} reopen it."


def test_paging_someone_not_in_people_yaml_needs_the_lead_or_an_admin(bot, fake_slack):
    fake = fake_slack.fake
    _incident_id, channel = declared(bot, fake)  # alex leads
    said = slash(bot, "page <@U0NOTLISTED>", channel=channel, user="U03MIKE")
    assert said == "Only the lead and admins may page someone who is not in people.yaml."
    # Mike (rotation) may page someone people.yaml lists. Alex was paged as primary: once Alex has
    # acknowledged, paging Alex again is a new call for help (unanswered pages are not repeated).
    assert "You acknowledged" in slash(bot, "ack", channel=channel, user="U01ALEX")
    assert "Paging <@U01ALEX>" in slash(bot, "page <@U01ALEX>", channel=channel, user="U03MIKE")
    said = slash(bot, "page <@U0NOTLISTED>", channel=channel, user="U03MIKE")
    assert said == "Only the lead and admins may page someone who is not in people.yaml."
    assert "Paging <@U0NOTLISTED>" in slash(bot, "page <@U0NOTLISTED>", channel=channel, user="U01ALEX")
    wait_until(lambda: dms_to(fake, "U0NOTLISTED"), 10, what="the lead's page")


def post_slash(bot, text: str, user: str) -> httpx.Response:
    body = slash_command_body("/incident", text, user=user)
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=30)


def counts(bot) -> tuple[int, int]:
    with Session(bot.ctx.engine) as session:
        incidents = session.exec(select(func.count()).select_from(Incident)).one()
        pages = session.exec(select(func.count()).select_from(Page)).one()
        return incidents, pages


def test_thirty_declarations_at_once_open_five_incidents(bot):
    with ThreadPoolExecutor(max_workers=30) as pool:
        answers_ = list(
            pool.map(lambda i: post_slash(bot, f"declare Outage {i} sev1", "U0NEWBIE"), range(30))
        )
    texts = [r.json().get("text", "") for r in answers_ if r.content]
    assert sum("declared (SEV1)" in t for t in texts) == 5, texts
    refused = [t for t in texts if "declared (SEV1)" not in t]
    assert len(refused) == 25
    assert all(
        t.startswith("You declared 5 incidents in the last 10m, as many as one person may") for t in refused
    )
    assert counts(bot) == (5, 5)  # five incidents, five pages
    # Someone else may still declare; and the same person again once the window has passed.
    assert "declared" in slash(bot, "declare Another outage sev2", user="U03MIKE")
    assert "You declared 5 incidents" in slash(bot, "declare One more sev2", user="U0NEWBIE")
    bot.clock.advance(minutes=10)
    assert "declared" in slash(bot, "declare One more sev2", user="U0NEWBIE")


def test_the_declare_form_says_why_it_refuses(start_bot, fake_slack):
    from tests.test_flow_commands import declare_form_body

    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", declare_rate="1/1h")
    assert "declared" in slash(bot, "declare First sev3")
    body = declare_form_body("Second", user="U01ALEX")
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200
    assert r.json()["response_action"] == "errors"
    assert r.json()["errors"]["title"].startswith("You declared 1 incident in the last 1h")
    assert counts(bot)[0] == 1


def test_members_the_bot_heard_nothing_about_are_asked_of_slack(bot, fake_slack):
    """Member events lost (the bot was down, or the app lacks the event): a refusal that membership
    would lift asks Slack who is in the channel, once, and goes on."""
    fake = fake_slack.fake
    _, channel = declared(bot, fake)
    fake.channel(channel).members.append(STRANGER)  # no member_joined_channel reaches the bot
    assert "You acknowledged" in slash(bot, "ack", channel=channel, user=STRANGER)
    assert [c.args["channel"] for c in fake.calls_to("conversations.members")] == [channel]
    assert slash(bot, "resolve", channel=channel, user=STRANGER) == f"{COMMANDERS} resolve it."


def test_acknowledging_works_while_slack_is_down(bot, fake_slack):
    """The facts come from the database: while every Slack call fails, the paged person and known
    channel members still act, and a stranger is still refused."""
    fake = fake_slack.fake
    incident_id, channel = declared(bot, fake)
    join_channel(bot, fake, channel, "U0MEMBER")
    fake.add_fault(method="*", mode="error500")
    assert (
        slash(bot, "note Slack is down too", channel=channel, user="U0MEMBER")
        == "Note added to the timeline."
    )
    assert slash(bot, "note me too", channel=channel, user=STRANGER) == f"{RESPONDERS} add notes to it."
    assert "You acknowledged" in slash(bot, "ack", channel=channel, user="U01ALEX")
    with Session(bot.ctx.engine) as session:
        assert session.get(Incident, incident_id).status == "acknowledged"
