"""Runbook messages as a responder works through them (issue 17, item 11).

Found by an on-call responder: the alert's `runbook_url` was not linked although runbooks/README.md
says "the link is shown either way"; nothing said how far the team had got; a step whose code the
timeline leaves out ended on a colon ("check the Weaviate pods:"); Done still changed a closed
incident; and a manual incident could not get a runbook at all ("No runbook was linked yet").
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Clock, join_channel, paged_user, post_alertmanager, processed, wait_until
from tests.test_display_names import T0, click
from tests.test_flow_commands import incident_channel, slash
from tests.test_flow_runbooks import long_runbook

FIXTURES = Path(__file__).parent / "fixtures"
WIKI = "https://wiki.example.com/runbooks/weaviate-down"
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def weaviate_down(runbook_url: str | None = WIKI) -> dict[str, Any]:
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    payload = copy.deepcopy(payload)
    if runbook_url:
        payload["alerts"][0]["annotations"]["runbook_url"] = runbook_url
        payload["commonAnnotations"]["runbook_url"] = runbook_url
    return payload


def runbook_messages(fake, channel: str) -> list[dict[str, Any]]:
    return [m for m in fake.messages(channel) if "runbook_step_done" in json.dumps(m.get("blocks"))]


def intro(message: dict[str, Any]) -> str:
    return next(b["elements"][0]["text"] for b in message["blocks"] if b.get("block_id") == "rb-intro")


def button(messages: list[dict[str, Any]], number: int) -> dict[str, Any]:
    for message in messages:
        for block in message["blocks"]:
            accessory = block.get("accessory") or {}
            if accessory.get("action_id") == f"runbook_step_done:{number}":
                return accessory
    raise KeyError(number)


def latest(fake, channel: str, ts: str) -> dict[str, Any]:
    return next(m for m in fake.messages(channel) if m["ts"] == ts)


@sqlite_only
def test_the_alerts_runbook_url_is_linked_and_the_header_counts_done_steps(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0))
    post_alertmanager(bot.url, weaviate_down())
    chan = incident_channel(fake)
    (message,) = wait_until(lambda: runbook_messages(fake, chan.id), 15, what="runbook posted")
    reading = fake.read(intro(message))
    assert (WIKI, "runbooks/weaviate-down.md") in reading.links, reading
    assert "0 of 9 steps done" in reading.text, reading.text
    for number in (1, 2, 4):
        b = button([latest(fake, chan.id, message["ts"])], number)
        click(bot, b["action_id"], b["value"], "U01OLGA", chan.id)
    shown = wait_until(
        lambda: (t := intro(latest(fake, chan.id, message["ts"]))) and "3 of 9 steps done" in t and t,
        15,
        what="the header counting 3 done steps",
    )
    assert (WIKI, "runbooks/weaviate-down.md") in fake.read(shown).links, shown  # still linked
    # The timeline names the step without the colon that introduced its (unshown) code.
    timeline = slash(bot, "timeline", channel=chan.id)
    line = next(x for x in timeline.splitlines() if "step 2 done" in x)
    assert line.endswith("step 2 done: Acknowledge the alert and check the Weaviate pods"), line


@sqlite_only
def test_a_step_done_in_a_later_message_updates_the_header_too(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "weaviate-down.md").write_text(long_runbook(80))
    bot = start_bot(clock=Clock(T0), runbooks_dir=runbooks)
    post_alertmanager(bot.url, weaviate_down(runbook_url=None))
    chan = incident_channel(fake)
    messages = wait_until(
        lambda: (m := runbook_messages(fake, chan.id)) and "kubectl rollout restart" in json.dumps(m) and m,
        20,
        what="the whole runbook",
    )
    assert len(messages) >= 2 and "0 of 81 steps done" in intro(messages[0])
    b = button(messages, 81)
    assert b not in [x.get("accessory") for x in messages[0]["blocks"]]  # step 81 is in a later message
    click(bot, b["action_id"], b["value"], "U01OLGA", chan.id)
    wait_until(
        lambda: "1 of 81 steps done" in intro(latest(fake, chan.id, messages[0]["ts"])),
        15,
        what="the first message's header updated",
    )


@sqlite_only
def test_done_on_a_closed_incident_is_refused(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0))
    incident = processed(bot, post_alertmanager(bot.url, weaviate_down()))["incident"]
    chan = incident_channel(fake)
    (message,) = wait_until(lambda: runbook_messages(fake, chan.id), 15, what="runbook posted")
    paged = paged_user(bot, incident)  # the person paged for it resolves and closes it
    assert "resolved" in slash(bot, "resolve", channel=chan.id, user=paged).lower()
    assert "closed" in slash(bot, "close", channel=chan.id, user=paged)
    # U01OLGA is in the data-platform rotation it routed to: she may tick off steps, but not once closed.
    before = len(fake.calls_to("chat.update"))
    b = button([message], 1)
    click(bot, b["action_id"], b["value"], "U01OLGA", chan.id)
    refusal = wait_until(
        lambda: next(
            (c for c in fake.calls_to("chat.postEphemeral") if c.args.get("user") == "U01OLGA"), None
        ),
        10,
        what="an answer to the click",
    )
    assert "closed" in refusal.args["text"], refusal.args
    assert "step 1 done" not in slash(bot, "timeline", channel=chan.id)  # nothing recorded
    assert not [
        c for c in fake.calls_to("chat.update")[before:] if c.args.get("ts") == message["ts"]
    ]  # nor shown as done
    assert "✅" not in json.dumps(latest(fake, chan.id, message["ts"]), ensure_ascii=False)


@sqlite_only
def test_a_chosen_runbook_can_be_posted_to_a_manual_incident(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0))
    slash(bot, "declare Vector search is failing sev2")
    chan = incident_channel(fake)
    answer = slash(bot, "runbook", channel=chan.id)
    assert "/incident runbook <slug>" in answer and "weaviate-down" in answer, answer
    unknown = slash(bot, "runbook <!here> nope", channel=chan.id)
    assert "There is no runbook" in unknown and "weaviate-down" in unknown and "<!here>" not in unknown, (
        unknown
    )
    assert "Posting runbook" in slash(bot, "runbook weaviate-down", channel=chan.id)
    (message,) = wait_until(lambda: runbook_messages(fake, chan.id), 15, what="the chosen runbook posted")
    assert "Weaviate down" in json.dumps(message["blocks"])
    # Once posted, it works like a linked runbook: Done (by someone who joined the incident
    # channel), and `/incident runbook` posts it again.
    join_channel(bot, fake, chan.id, "U01OLGA")
    b = button([message], 1)
    click(bot, b["action_id"], b["value"], "U01OLGA", chan.id)
    wait_until(lambda: "1 of 9 steps done" in intro(latest(fake, chan.id, message["ts"])), 15)
    assert "again" in slash(bot, "runbook", channel=chan.id)
    wait_until(lambda: len(runbook_messages(fake, chan.id)) == 2, 15, what="posted again")
