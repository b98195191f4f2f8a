"""PagerDuty incidents on the card and in the post-mortem (issue 17, item 13).

Observed: the card of a PagerDuty incident never said whom PagerDuty had assigned it to nor its
conference bridge (both are in every V3 incident payload), linked "Source graph" to the PagerDuty
incident itself, and its post-mortem named nobody as paged and printed every time twice, in a
"Time (UTC)" and a "Time (UTC)" column. Signed V3 webhooks in, the fake Slack out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import Clock, join_channel, processed, wait_until
from tests.test_card_content import T0, card_shows
from tests.test_escaping import HOSTILE, HOSTILE_2, assert_nothing_injected, drained
from tests.test_flow_commands import incident_channel, slash
from tests.test_flow_pagerduty import PD_URL, pd_event, post_pd

BRIDGE_URL = "https://meet.example.com/checkout"  # in the recorded incident.triggered delivery
BRIDGE_NUMBER = "+1 415-555-0100,,123456#"


@pytest.fixture
def bot(start_bot, tmp_path):
    return start_bot(clock=Clock(T0), postmortems_dir=tmp_path / "postmortems")


def test_card_shows_assignees_and_bridge_and_no_source_graph(bot, fake_slack):
    fake = fake_slack.fake
    assert processed(bot, post_pd(bot, pd_event("incident.triggered")))["decision"] == "opened"
    chan = incident_channel(fake)
    text = card_shows(
        fake,
        chan,
        "*Assigned in PagerDuty:* Alice Ops",
        f":telephone_receiver: *Conference bridge:* <{BRIDGE_URL}|Join the bridge> · {BRIDGE_NUMBER}",
        f"<{PD_URL}|Open in PagerDuty>",
    )
    assert "Source graph" not in text and "*Paged:* nobody yet" not in text

    # Reassigned in PagerDuty: the card follows. Resolved (PagerDuty empties the assignees then):
    # the card keeps who had it, and its alert says when it resolved.
    post_pd(bot, pd_event("incident.reassigned", "E-REASSIGN"))
    card_shows(fake, chan, "*Assigned in PagerDuty:* Alice Ops, Bob Builder")
    post_pd(bot, pd_event("incident.resolved", "E-RESOLVE"))
    card_shows(
        fake,
        chan,
        "*Assigned in PagerDuty:* Alice Ops, Bob Builder",
        "· resolved <!date^",
        absent=("resolved since",),
    )


def test_postmortem_names_who_pagerduty_paged_with_one_utc_column(bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    post_pd(bot, pd_event("incident.triggered"))
    chan = incident_channel(fake)
    post_pd(bot, pd_event("incident.escalated", "E-ESC", assignees=[_user("PBOB", "Bob Builder")]))
    post_pd(bot, pd_event("incident.resolved", "E-RESOLVE"))
    wait_until(lambda: "resolved" in fake.channel(chan.id).topic, 10, what="resolved")
    # PagerDuty runs the paging, so the incident channel's members command the incident.
    join_channel(bot, fake, chan.id, "U01ALEX")
    assert "closed" in slash(bot, "close", channel=chan.id, user="U01ALEX")
    out = tmp_path / "postmortems"
    path = wait_until(lambda: next(iter(out.glob("*.md")), None), 20, what="post-mortem file")
    text = wait_until(lambda: path.read_text() if "Action Items" in path.read_text() else None, 5)
    paged = next(line for line in text.splitlines() if "**Paged" in line)
    assert paged.startswith("- **Paged (by PagerDuty):** Alice Ops (2026-11-23 12:00:"), paged
    assert ", Bob Builder (2026-11-23 12:00:" in paged, paged
    assert "| Time (UTC) | Who | Event |" in text
    assert "Time (UTC) | Time (UTC)" not in text
    row = next(line for line in text.splitlines() if "Mirrors PagerDuty incident" in line)
    assert row.count(" UTC") == 1, row


def _user(user_id: str, name: str) -> dict[str, Any]:
    return {"id": user_id, "type": "user_reference", "summary": name}


def test_assignees_and_bridge_reach_slack_as_text(bot, fake_slack):
    fake = fake_slack.fake
    hostile = pd_event(
        "incident.triggered",
        "E-HOSTILE",
        assignees=[_user("PX", HOSTILE), _user("PY", HOSTILE_2)],
        conference_bridge={"conference_number": HOSTILE, "conference_url": f"javascript:{HOSTILE}"},
    )
    post_pd(bot, hostile)
    chan = incident_channel(fake)
    text = card_shows(fake, chan, "*Assigned in PagerDuty:* &lt;!channel&gt;")
    assert "&lt;!channel&gt; &lt;!here&gt;" in json.loads(text)[2]["text"]["text"]
    drained(bot)
    assert_nothing_injected(fake, [])


@pytest.mark.parametrize("bridge", ["bogus", {"conference_number": 42, "conference_url": ["x"]}, None, {}])
def test_a_malformed_bridge_never_refuses_the_event(bridge: Any) -> None:
    from bot.webhooks.pagerduty_models import WebhookIn

    event = WebhookIn.model_validate(pd_event("incident.triggered", conference_bridge=bridge)).to_core()
    assert event is not None and event.conference_url is None and event.conference_number is None
    assert event.assignees == ("Alice Ops",)
