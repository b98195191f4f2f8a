"""A scripted incident through the real endpoints; its post-mortem draft holds every fact."""

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.harness import (
    Clock,
    block_action_body,
    post_alertmanager,
    processed,
    slack_headers,
    slash_command_body,
    wait_until,
)
from tests.test_flow_paging import dms_to

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def signed(bot, body: bytes) -> httpx.Response:
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text
    return r


def slash(bot, text: str, channel: str, user: str = "U01ALEX") -> str:
    r = signed(bot, slash_command_body("/incident", text, user=user, channel=channel))
    return r.json().get("text", "") if r.content else ""


def alert() -> dict:
    p = json.loads((FIXTURES / "alertmanager-0.25/firing-two-alerts.json").read_text())
    p = copy.deepcopy(p)
    for a in p["alerts"]:
        a["startsAt"] = "2026-11-23T09:58:00Z"
        a["annotations"]["description"] = "Error rate {{ 7*7 }} on {% raw %}api{% endraw %}"
    return p


def run_incident(bot, fake) -> tuple[object, int]:
    r = post_alertmanager(bot.url, alert())
    incident = processed(bot, r)["incident"]
    wait_until(lambda: dms_to(fake, "U01ALEX"), 15, what="page")
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None), 15
    )
    # The runbook is posted after the card; tick its first two steps.
    runbook_msgs = wait_until(
        lambda: [m for m in fake.messages(chan.id) if "runbook_step_done" in json.dumps(m.get("blocks"))],
        15,
        what="runbook posted",
    )
    buttons = [
        e
        for m in runbook_msgs
        for b in m["blocks"]
        if b.get("accessory", {}).get("type") == "button"
        for e in [b["accessory"]]
    ]
    for button in buttons[:2]:
        signed(bot, block_action_body(button["action_id"], button["value"], user="U02SARAH", channel=chan.id))
    # Nobody acks: at 15 minutes the secondary is paged; at 17 minutes they acknowledge.
    bot.clock.advance(minutes=15)
    wait_until(lambda: dms_to(fake, "U02SARAH"), 15, what="escalation")
    bot.clock.advance(minutes=2)
    signed(bot, block_action_body("incident_ack", str(incident), user="U02SARAH", channel=chan.id))
    slash(bot, "lead <@U02SARAH>", chan.id)
    slash(bot, "note Rolled back release 2026.11.23-1", chan.id, user="U02SARAH")
    slash(bot, "action Add a canary stage for the API", chan.id)
    slash(bot, "action Alert on error budget burn", chan.id)
    bot.clock.advance(minutes=22)
    slash(bot, "resolve error rate back to normal", chan.id, user="U02SARAH")
    bot.clock.advance(minutes=20)
    slash(bot, "close", chan.id)
    return chan, incident


def test_postmortem_draft_holds_the_facts_and_is_uploaded(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": "U02SARAH"})
    out = tmp_path / "postmortems"
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", postmortems_dir=out)
    chan, _ = run_incident(bot, fake)

    path = wait_until(lambda: next(iter(out.glob("*.md")), None), 20, what="post-mortem file")
    assert path.name == f"2026-11-23-{chan.name}.md"
    text = wait_until(lambda: path.read_text() if "Action Items" in path.read_text() else None, 5)
    assert "API error rate above 5%" in text and "SEV1" in text
    assert "2026-11-23 09:58:00 UTC" in text  # detected: the first alert's startsAt
    assert "2026-11-23 10:00" in text  # declared
    assert re.search(r"17m( \d+s)?", text), "time to acknowledge"
    assert re.search(r"39m( \d+s)?", text), "time to resolve"
    assert "- [ ] Add a canary stage for the API" in text and "- [ ] Alert on error budget burn" in text
    assert "Rolled back release 2026.11.23-1" in text
    assert "alex" in text and "sarah" in text  # paged people
    assert "high-error-rate" in text or "High" in text  # the runbook
    # Data, never template code (written as Markdown text: `7\*7`).
    assert "Error rate {{ 7\\*7 }} on {% raw %}api{% endraw %}" in text
    assert "Error rate 49" not in text
    assert "<@U01ALEX>" not in text  # the bot's Slack echoes are not timeline entries

    # Uploaded to the incident channel with Slack's current upload API.
    wait_until(lambda: fake.calls_to("files.completeUploadExternal"), 20, what="upload")
    assert fake.calls_to("files.getUploadURLExternal")
    uploaded = [f for f in fake.files.values()]
    assert uploaded and "Action Items" in uploaded[0].text


def test_custom_template(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": "U02SARAH"})
    template = tmp_path / "pm.md.j2"
    template.write_text(
        "# {{ title }}\nTTA={{ tta | duration }} TTR={{ ttr | duration }}\n"
        "{% for item in action_items %}* {{ item.text }}\n{% endfor %}"
    )
    out = tmp_path / "pm"
    bot = start_bot(
        clock=Clock(T0),
        rotations_dir=FIXTURES / "rotations",
        postmortems_dir=out,
        postmortem_template=template,
    )
    run_incident(bot, fake)
    path = wait_until(lambda: next(iter(out.glob("*.md")), None), 20, what="custom post-mortem")
    text = path.read_text()
    assert text.startswith("# API error rate above 5%")
    assert re.search(r"TTA=17m", text) and re.search(r"TTR=39m", text)
    assert "* Add a canary stage for the API" in text
