"""The pinned incident card tells a responder everything (issue 17, items 6, 7 and 14).

Observed by an on-call responder: the card said nothing about the rotation, who was paged, who
acknowledged when, the lead or what the escalation would do next; `/incident lead` left it as it
was; a resolved alert read "resolved since <its start>"; the description typed in the declare form
came as a separate message instead of being on the card. Everything here goes through the real
endpoints (Alertmanager webhook, signed slash commands and form submissions) against the fake Slack.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlmodel import Session, col, select

from bot.store.tables import Alert, Timer
from tests.harness import Clock, post_alertmanager, processed, slack_headers, wait_until
from tests.test_flow_commands import incident_channel, slash
from tests.test_flow_paging import click, dms_to, fixture

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

PEOPLE = """\
people:
  alex:  {slack: U01ALEX, email: alex@example.com, display_name: Alex Chen}
  sarah: {email: sarah@example.com, display_name: Sarah Johnson}
  mike:  {slack: U03MIKE, display_name: Mike Rodriguez}
  tom:   {email: tom@example.com, display_name: Tom Becker}
"""


def rotations(tmp_path: Path, primary: str = "alex") -> Path:
    folder = tmp_path / "rotations"
    folder.mkdir()
    (folder / "people.yaml").write_text(PEOPLE)
    (folder / "routes.yaml").write_text("routes:\n  - {default: true, rotation: platform}\n")
    (folder / "platform.yaml").write_text(
        "rotation:\n  name: platform\n  timezone: UTC\n  start: 2026-11-23T00:00\n  shift: 1w\n"
        f"  layers:\n    primary: [{primary}]\n    secondary: [sarah]\n    manager: [mike]\n"
        "escalation:\n  steps:\n"
        "    - {after: 0m, notify: primary}\n"
        "    - {after: 15m, notify: secondary}\n"
        "    - {after: 30m, notify: manager, channel_mention: here}\n"
        "  repeat: 0\n"
    )
    return folder


@pytest.fixture
def bot(start_bot, fake_slack, tmp_path):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    return start_bot(clock=Clock(T0), rotations_dir=rotations(tmp_path))


def card(fake, chan) -> dict[str, Any]:
    return next(m for m in fake.messages(chan.id) if m["ts"] == chan.pins[-1])


def card_text(fake, chan) -> str:
    """The card's blocks as JSON text, mrkdwn as Slack received it (`\\n` kept as is)."""
    return json.dumps(card(fake, chan).get("blocks", []), ensure_ascii=False)


def card_shows(fake, chan, *parts: str, absent: tuple[str, ...] = (), what: str = "") -> str:
    def shown() -> str | None:
        text = card_text(fake, chan)
        return text if all(p in text for p in parts) and not any(a in text for a in absent) else None

    try:
        return wait_until(shown, 15, what=what or f"the card showing {parts}")
    except AssertionError:
        raise AssertionError(
            f"the card never showed {parts} without {absent}:\n{card_text(fake, chan)}"
        ) from None


def pending_timer(bot) -> Timer:
    with Session(bot.ctx.engine) as session:
        return session.exec(select(Timer).where(col(Timer.status) == "pending")).one()


def date(when: datetime) -> str:
    return f"<!date^{int(when.timestamp())}^"


def test_card_says_rotation_who_is_paged_what_comes_next_lead_and_who_acknowledged(bot, fake_slack):
    fake = fake_slack.fake
    r = post_alertmanager(bot.url, fixture("firing-single-alert.json"))
    incident = processed(bot, r)["incident"]
    chan = incident_channel(fake)
    step_2 = pending_timer(bot)
    card_shows(
        fake,
        chan,
        "*Rotation*\\nplatform",
        "*Paged:* <@U01ALEX> (primary, step 1)",
        f"*Next:* step 2 (secondary: Sarah Johnson) at {date(step_2.due_at)}",
        "*Lead*\\nnobody yet",
    )

    # Step 2 fires: Sarah is paged (by her display name, or a mention once her DM found her Slack
    # ID), and the next step is the manager with the @here it will post.
    bot.clock.advance(minutes=15)
    bot.tick()
    wait_until(lambda: dms_to(fake, "U02SARAH"), 10, what="step 2 paged")
    step_3 = pending_timer(bot)
    text = card_shows(
        fake,
        chan,
        "*Paged:* <@U01ALEX> (primary, step 1) · ",
        " (secondary, step 2)",
        f"*Next:* step 3 (manager: <@U03MIKE>) with @here at {date(step_3.due_at)}",
        absent=("*Next:* step 2",),
    )
    assert "· Sarah Johnson (secondary" in text or "· <@U02SARAH> (secondary" in text, text
    assert "<!here>" not in card_text(fake, chan)  # the card announces the mention, never makes it

    # `/incident lead` visibly changes the card: the lead is a mention (Slack shows their name).
    slash(bot, "lead <@U01OLGA|olga>", channel=chan.id)
    card_shows(fake, chan, "*Lead*\\n<@U01OLGA>", absent=("nobody yet",), what="the lead on the card")

    # Acknowledged: who and when (a Slack date), and nothing is "next" any more.
    bot.clock.advance(minutes=2)
    click(bot, "incident_ack", str(incident), "U01ALEX", channel=chan.id)
    with Session(bot.ctx.engine) as session:
        from bot.store.tables import Incident

        acked = session.get(Incident, incident)
        assert acked is not None and acked.acknowledged_at is not None
        acked_at = acked.acknowledged_at
    card_shows(
        fake,
        chan,
        f"*Acknowledged* by <@U01ALEX> {date(acked_at)}",
        "(after 17m",
        absent=("*Next:*",),
        what="who acknowledged when",
    )


def test_a_page_that_failed_is_shown_apart_on_the_card(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake  # tom has no Slack account: users.lookupByEmail answers users_not_found
    fake.set_users({"sarah@example.com": "U02SARAH"})
    bot = start_bot(clock=Clock(T0), rotations_dir=rotations(tmp_path, primary="tom"))
    post_alertmanager(bot.url, fixture("firing-single-alert.json"))
    chan = incident_channel(fake)
    text = card_shows(fake, chan, ":warning: *Could not page:* Tom Becker (primary, step 1): no Slack user")
    assert "*Paged:* Tom Becker" not in text


def test_resolved_alerts_say_when_they_resolved(bot, fake_slack):
    fake = fake_slack.fake
    post_alertmanager(bot.url, fixture("firing-two-alerts.json"))
    chan = incident_channel(fake)
    partly = fixture("partially-resolved.json")
    assert processed(bot, post_alertmanager(bot.url, partly))["decision"] == "alerts changed"
    ended = datetime(2026, 11, 22, 23, 45, 39, tzinfo=UTC)  # api-1's endsAt
    text = card_shows(fake, chan, f"1 resolved, the last {date(ended)}", what="the resolved alert's end")
    assert "resolved since" not in text

    # A resolved alert Alertmanager sent without an end time ends when the bot heard of it.
    both = copy.deepcopy(partly)
    both["alerts"][1].update(status="resolved", endsAt="0001-01-01T00:00:00Z")
    post_alertmanager(bot.url, both)
    with Session(bot.ctx.engine) as session:
        wait_until(lambda: all(a.ends_at for a in session.exec(select(Alert)).all()), 10, what="ends stored")
        latest = max(a.ends_at for a in session.exec(select(Alert)).all() if a.ends_at)
    card_shows(fake, chan, f"all resolved, the last {date(latest)}", absent=("resolved since",))


def declare_form(description: str, title: str = "Payments API 500s") -> bytes:
    payload = {
        "type": "view_submission",
        "team": {"id": "T0TEAM"},
        "user": {"id": "U01ALEX", "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "x",
        "trigger_id": "1.2.3",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "declare_incident",
            "team_id": "T0TEAM",
            "state": {
                "values": {
                    "title": {"title": {"type": "plain_text_input", "value": title}},
                    "severity": {"severity": {"type": "static_select", "selected_option": {"value": "SEV2"}}},
                    "description": {"description": {"type": "plain_text_input", "value": description}},
                }
            },
        },
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_declared_description_is_on_the_pinned_card_not_a_separate_message(bot, fake_slack):
    fake = fake_slack.fake
    description = "EU customers get 500s at checkout since 11:58; <!channel> rollback under way"
    body = declare_form(description)
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200
    chan = incident_channel(fake)
    escaped = "EU customers get 500s at checkout since 11:58; &lt;!channel&gt; rollback under way"
    blocks = card_shows(fake, chan, escaped, what="the description on the card")
    header = json.loads(blocks)[0]
    assert header["type"] == "header" and json.loads(blocks)[1]["text"]["text"] == escaped
    wait_until(lambda: any("Declared by" in m.get("text", "") for m in fake.messages(chan.id)), 10)
    others = [m for m in fake.messages(chan.id) if m["ts"] not in chan.pins]
    assert not [m for m in others if "EU customers" in json.dumps(m)], "the description was posted apart"
