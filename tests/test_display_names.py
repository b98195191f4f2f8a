"""People by their names, and times in each reader's zone (issue 17, item 10).

Found by an on-call responder: people.yaml's `display_name` and `timezone` were documented and
unused. Post-mortems said "olga", the timeline "Paging olga", reports counted "david" and
"<@U01DAVID>" as two people, `/oncall` said "until" in the rotation's zone whoever read it, and
PagerDuty actors showed as "pagerduty:Jane". Now text names people by display name; Slack times are
`<!date^...>` (each reader sees their own zone, checked with the fake's reader and the viewer's
profile `tz`); the CLI and post-mortems use the rotation's zone and, where it matters (being paged,
handing over), the person's own.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli import main
from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import (
    ROOT,
    Clock,
    block_action_body,
    join_channel,
    paged_user,
    post_alertmanager,
    processed,
    settle,
    slack_headers,
    wait_until,
)
from tests.test_flow_commands import incident_channel, slash
from tests.test_flow_paging import dms_to

FIXTURES = Path(__file__).parent / "fixtures"
# data-platform (America/Chicago, 12h shifts from 08:00): olga, in Berlin, is primary at this time.
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
USERS = {
    "olga@example.com": {"id": "U01OLGA", "tz": "Europe/Berlin", "name": "olga"},
    "david@example.com": {"id": "U01DAVID", "tz": "America/Chicago", "name": "david"},
    "sarah@example.com": {"id": "U02SARAH", "tz": "America/New_York", "name": "sarah"},
}


def weaviate_down() -> dict[str, Any]:
    return json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())


def click(bot, action_id: str, value: str, user: str, channel: str) -> None:
    body = block_action_body(action_id, value, user=user, channel=channel)
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text


def bare(name: str, text: str) -> list[str]:
    """Places where text names someone by their people.yaml key instead of their display name."""
    return re.findall(rf"(?<![\w@.:/-]){name}(?![\w@.-])", text)


@sqlite_only
def test_timeline_and_postmortem_name_people_by_display_name(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    fake.set_users(USERS)
    out = tmp_path / "postmortems"
    bot = start_bot(clock=Clock(T0), postmortems_dir=out)
    incident = processed(bot, post_alertmanager(bot.url, weaviate_down()))["incident"]
    chan = incident_channel(fake)
    wait_until(lambda: dms_to(fake, "U01OLGA"), 10, what="olga paged")
    # olga (paged) names alex lead, and the lead pages david by hand: paging needs one of them.
    assert "leads" in slash(bot, "lead <@U01ALEX|alex>", channel=chan.id, user="U01OLGA")
    assert "Paging" in slash(bot, "page <@U01DAVID|david>", channel=chan.id)
    wait_until(lambda: dms_to(fake, "U01DAVID"), 10, what="david paged by hand")
    timeline = wait_until(
        lambda: (t := slash(bot, "timeline", channel=chan.id)) and t.count("by DM") == 2 and t,
        10,
        what="both pages delivered",
    )
    assert "Paging Olga Novak (step 1: first page)" in timeline, timeline
    assert "Paged Olga Novak by DM" in timeline and "Paged David Kim by DM" in timeline, timeline
    assert not bare("olga", timeline) and not bare("david", timeline), timeline

    click(bot, "incident_ack", str(incident), "U01OLGA", chan.id)
    note = "asked <@U01DAVID|david> to check <https://grafana.example.com/d/x|the dashboard>"
    slash(bot, f"note {note}", channel=chan.id, user="U01OLGA")
    bot.clock.advance(minutes=10)
    slash(bot, "resolve", channel=chan.id, user="U01OLGA")
    slash(bot, "close", channel=chan.id, user="U01OLGA")
    path = wait_until(lambda: next(iter(out.glob("*.md")), None), 20, what="post-mortem")
    text = wait_until(lambda: (t := path.read_text()) and "Action Items" in t and t, 5)
    assert "**Acknowledged by:** Olga Novak" in text and "**Resolved by:** Olga Novak" in text, text
    paged = next(line for line in text.splitlines() if line.startswith("- **Paged:**"))
    # Paged at 12:00 UTC: 06:00 in the rotation's Chicago, 13:00 where olga was woken.
    # (the clock flows: on a busy machine the page may leave a second or two after 12:00:00)
    assert re.search(
        r"Olga Novak \(step 1, primary, 2026-11-23 12:00:0\d UTC, 13:00 CET for them\)", paged
    ), paged
    assert re.search(r"David Kim \(manual, 2026-11-23 12:00:0\d UTC, 06:00 CST for them\)", paged), paged
    participants = next(line for line in text.splitlines() if line.startswith("- **Participants:**"))
    assert participants == "- **Participants:** Olga Novak, David Kim, Alex Chen", participants
    assert "Olga Novak: asked @David Kim to check [the dashboard](https://grafana.example.com/d/x)" in text
    assert "Paging Olga Novak" in text
    for key in ("olga", "david"):
        assert not bare(key, text), (key, bare(key, text))
    assert "slack:U" not in text and "<@U" not in text


@sqlite_only
def test_report_counts_a_person_once_however_they_were_paged(
    start_bot, fake_slack, database_url, monkeypatch, capsys
):
    fake = fake_slack.fake
    fake.set_users(USERS)
    bot = start_bot(clock=Clock(T0))
    incident = processed(bot, post_alertmanager(bot.url, weaviate_down()))["incident"]
    chan = incident_channel(fake)
    # olga, paged as the primary, works the incident.
    assert paged_user(bot, incident) == "U01OLGA"
    # Step 2 pages the secondary, david, by his people.yaml key; once acknowledged he is paged
    # again by mention.
    assert "Escalated" in slash(bot, "escalate", channel=chan.id, user="U01OLGA")
    wait_until(lambda: dms_to(fake, "U01DAVID"), 10, what="david paged by the rotation")
    click(bot, "incident_ack", str(incident), "U01OLGA", chan.id)
    assert "Paging" in slash(bot, "page <@U01DAVID|david>", channel=chan.id, user="U01OLGA")
    wait_until(lambda: len(dms_to(fake, "U01DAVID")) == 2, 10, what="david paged by mention")

    for name, value in {
        "DATABASE_URL": database_url,
        "ROTATIONS_DIR": str(ROOT / "rotations"),
        "RUNBOOKS_DIR": str(ROOT / "runbooks"),
    }.items():
        monkeypatch.setenv(name, value)
    since = f"{(datetime.now(UTC) - T0 + timedelta(days=1)).days}d"
    capsys.readouterr()
    assert main(["report", "--since", since]) == 0
    table = capsys.readouterr().out
    rows = [line.split() for line in table.splitlines()]
    assert ["David", "Kim", "2", "1"] in rows, table
    assert "U01DAVID" not in table and not bare("david", table), table
    assert main(["report", "--since", since, "--format", "json"]) == 0
    people = json.loads(capsys.readouterr().out)["people"]
    assert {"person": "david", "name": "David Kim", "pages": 2, "escalations": 1} in people, people


@sqlite_only
def test_oncall_until_is_shown_in_each_readers_own_zone(start_bot, fake_slack, capsys):
    fake = fake_slack.fake
    fake.set_users(USERS)
    # Week 2 of platform (America/Los_Angeles): sarah (email only, in New York) is primary until
    # Mon Nov 16 09:00 PST, which is 12:00 in New York and 18:00 in Berlin.
    at = datetime(2026, 11, 10, 18, 0, tzinfo=UTC)
    bot = start_bot(clock=Clock(at))
    for viewer, shown in (("U02SARAH", "Nov 16, 2026 12:00"), ("U01OLGA", "Nov 16, 2026 18:00")):
        answer = slash(bot, "platform", command="/oncall", user=viewer)
        primary = next(line for line in answer.splitlines() if "primary" in line)
        assert "Sarah Johnson" in primary and not bare("sarah", primary), primary
        assert fake.read(primary, viewer=viewer).dates == [shown], (viewer, primary)
        assert all("<!date^" in line for line in answer.splitlines() if "until" in line), answer
    capsys.readouterr()
    assert main(["oncall", "platform", "--at", "2026-11-10T18:00"]) == 0
    cli = capsys.readouterr().out
    primary = next(line for line in cli.splitlines() if "primary" in line)
    assert "Sarah Johnson until Mon Nov 16 09:00 PST (12:00 EST for them)" in primary, primary


@sqlite_only
def test_status_times_are_each_readers_and_runbook_done_at_too(start_bot, fake_slack):
    fake = fake_slack.fake
    fake.set_users(USERS)
    bot = start_bot(clock=Clock(T0))
    post_alertmanager(bot.url, weaviate_down())
    chan = incident_channel(fake)
    wait_until(lambda: dms_to(fake, "U01OLGA"), 10, what="olga paged")
    status = slash(bot, "status", channel=chan.id, user="U01OLGA")
    reading = fake.read(status, viewer="U01OLGA")
    # Opened 12:00 UTC = 13:00 in Berlin; the next step is due 5 minutes later (SEV1 ack timeout).
    assert "Nov 23, 2026 13:00" in reading.dates and "Nov 23, 2026 13:05" in reading.dates, status
    assert "Olga Novak" in reading.text or "@olga" in reading.text, reading.text

    message = wait_until(
        lambda: next(
            (m for m in fake.messages(chan.id) if "runbook_step_done" in json.dumps(m.get("blocks"))), None
        ),
        15,
        what="runbook",
    )
    button = next(
        b["accessory"] for b in message["blocks"] if (b.get("accessory") or {}).get("type") == "button"
    )
    click(bot, button["action_id"], button["value"], "U01OLGA", chan.id)
    done = wait_until(
        lambda: next(
            (
                e["text"]
                for c in fake.calls_to("chat.update")
                if c.ok and c.args.get("ts") == message["ts"]
                for b in c.args["blocks"]
                if b.get("type") == "context"
                for e in b["elements"]
                if "done by" in e.get("text", "")
            ),
            None,
        ),
        15,
        what="step marked done",
    )
    assert fake.read(done, viewer="U01OLGA").dates == ["13:00"], done
    assert fake.read(done, viewer="U01DAVID").dates == ["06:00"], done


def post_pagerduty(bot, kind: str, event_id: str, **data: Any) -> None:
    payload = json.loads((FIXTURES / "pagerduty-v3" / "events" / f"{kind}.json").read_text())
    payload["event"]["id"] = event_id
    payload["event"]["agent"] = {"id": "PJANE", "type": "user_reference", "summary": "Jane Doe"}
    payload["event"]["data"].update(data)
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign_webhook(body, PD_WEBHOOK_SECRETS[0]),
    }
    r = settle(
        bot.url, httpx.post(f"{bot.url}/webhooks/pagerduty", content=body, headers=headers, timeout=10)
    )
    assert r.status_code == 202, r.text


@sqlite_only
def test_pagerduty_people_are_named_without_a_prefix(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    out = tmp_path / "postmortems"
    bot = start_bot(clock=Clock(T0), postmortems_dir=out)
    post_pagerduty(bot, "incident.triggered", "E1")
    chan = incident_channel(fake)
    post_pagerduty(bot, "incident.acknowledged", "E2")
    status = slash(bot, "status", channel=chan.id)
    assert "Acknowledged by Jane Doe (PagerDuty)" in status, status
    timeline = slash(bot, "timeline", channel=chan.id)
    assert "Jane Doe (PagerDuty)" in timeline and "pagerduty:" not in timeline, timeline
    post_pagerduty(bot, "incident.resolved", "E3")
    # PagerDuty runs the paging, so the incident channel's members command the incident.
    join_channel(bot, fake, chan.id, "U01ALEX")
    assert "closed" in slash(bot, "close", channel=chan.id, user="U01ALEX")
    path = wait_until(lambda: next(iter(out.glob("*.md")), None), 20, what="post-mortem")
    text = wait_until(lambda: (t := path.read_text()) and "Action Items" in t and t, 5)
    assert "Jane Doe (PagerDuty)" in text and "pagerduty:" not in text, text


def test_one_person_however_referred_to() -> None:
    from bot.catalog.rotations import load_rotations
    from bot.core.people import People

    catalog, _ = load_rotations(ROOT / "rotations")
    assert catalog is not None
    people = People(catalog.people).learn([("U02SARAH", "sarah"), ("U0BOT", "<@U0BOT>")])
    for ref in ("david", "slack:U01DAVID", "<@U01DAVID>", "<@U01DAVID|david>", "David@Example.com"):
        assert people.key(ref) == "david" and people.name(ref) == "David Kim", ref
    # sarah has no Slack ID in people.yaml: a delivered page taught it.
    assert people.key("<@U02SARAH>") == "sarah" and people.name("slack:U02SARAH") == "Sarah Johnson"
    assert people.slack_id("sarah") == "U02SARAH" and people.zone("<@U02SARAH>") == "America/New_York"
    assert people.key("<@U0BOT>") is None  # a mention is never learned as a person's name
    assert people.name("pagerduty:Jane Doe") == "Jane Doe (PagerDuty)"
    assert people.name("pagerduty:PagerDuty") == "PagerDuty"
    assert people.name("pagerduty:level2") == "PagerDuty's on-call at level 2"
    assert people.name("slack:U0STRANGER") == "@U0STRANGER" and people.name("alertmanager") == "alertmanager"
