"""Runbooks through the real endpoints: posted after the card, split within Slack's limits, steps
ticked off and undone with signed button clicks, each leaving a timeline entry."""

import copy
import json
from pathlib import Path

import httpx
import pytest

from tests.harness import (
    block_action_body,
    join_channel,
    post_alertmanager,
    slack_headers,
    slash_command_body,
    wait_until,
)

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)


def long_runbook(steps: int) -> str:
    items = "\n".join(
        f"{i}. Check shard {i} with `weaviate-cli status --shard {i}` <!channel>" for i in range(1, steps + 1)
    )
    return (
        "---\ntitle: Weaviate down (long)\nalerts: [WeaviateDown]\nowner: data-platform\n---\n"
        "# Weaviate down\n\n## Investigation\n\n" + items + "\n\n## Resolution\n\n1. Restart the pod\n\n"
        "   ```sh\n   kubectl rollout restart deploy/weaviate\n   ```\n"
    )


def signed(bot, body: bytes) -> httpx.Response:
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text
    return r


def runbook_messages(fake, chan_id):
    return [m for m in fake.messages(chan_id) if "runbook_step_done" in json.dumps(m.get("blocks"))]


def button_for(message, number: int) -> dict:
    for block in message["blocks"]:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == f"runbook_step_done:{number}":
            return accessory
    raise KeyError(number)


@pytest.fixture
def runbooks_dir(tmp_path):
    d = tmp_path / "runbooks"
    d.mkdir()
    (d / "weaviate-down.md").write_text(long_runbook(80))
    return d


def test_long_runbook_is_split_and_steps_toggle(start_bot, fake_slack, runbooks_dir):
    fake = fake_slack.fake
    bot = start_bot(runbooks_dir=runbooks_dir)
    post_alertmanager(bot.url, FIXTURE)
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-")), None), 15
    )
    messages = wait_until(
        lambda: (m := runbook_messages(fake, chan.id)) and "kubectl rollout restart" in json.dumps(m) and m,
        20,
        what="the whole runbook posted",
    )
    assert len(messages) >= 2
    assert all(len(m["blocks"]) <= 50 for m in messages)
    card_ts = float(wait_until(lambda: fake.channel(chan.id).pins, 15)[0])
    assert all(float(m["ts"]) > card_ts for m in messages)  # after the card
    assert "&lt;!channel&gt;" in json.dumps(messages) and "<!channel>" not in json.dumps(messages)
    assert "kubectl rollout restart deploy/weaviate" in json.dumps(messages)

    # Step 60 lives in a later message: Done updates exactly that message.
    holder = next(
        m
        for m in messages
        if any((b.get("accessory") or {}).get("action_id") == "runbook_step_done:60" for b in m["blocks"])
    )
    button = button_for(holder, 60)
    for person in ("U02SARAH", "U01ALEX"):  # people in the channel tick steps off (not only the paged)
        join_channel(bot, fake, chan.id, person)
    signed(bot, block_action_body(button["action_id"], button["value"], user="U02SARAH", channel=chan.id))

    def updated(marker: str):
        calls = [c for c in fake.calls_to("chat.update") if c.args.get("ts") == holder["ts"] and c.ok]
        return calls and marker in json.dumps(calls[-1].args["blocks"]) and calls[-1]

    done = wait_until(lambda: updated("done by <@U02SARAH>"), 15, what="step marked done")
    assert "✅" in json.dumps(done.args["blocks"], ensure_ascii=False)
    undo = button_for(done.args, 60)
    assert undo["value"].endswith(":undo")
    # A second click (by anyone in the channel) undoes it.
    signed(bot, block_action_body(undo["action_id"], undo["value"], user="U01ALEX", channel=chan.id))
    wait_until(
        lambda: (
            (c := updated("runbook_step_done:60"))
            and "done by" not in json.dumps([b for b in c.args["blocks"] if "60" in json.dumps(b)])
        ),
        15,
        what="step undone",
    )

    timeline = signed(bot, slash_command_body("/incident", "timeline", channel=chan.id)).json()["text"]
    assert "step 60 done" in timeline and "step 60 not done any more" in timeline

    # `/incident runbook` posts it again.
    before = len(runbook_messages(fake, chan.id))
    signed(bot, slash_command_body("/incident", "runbook", channel=chan.id))
    wait_until(lambda: len(runbook_messages(fake, chan.id)) == 2 * before, 20, what="runbook posted again")


def test_alert_without_a_runbook_names_the_file_to_create(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    empty = tmp_path / "runbooks"
    empty.mkdir()
    bot = start_bot(runbooks_dir=empty)
    payload = copy.deepcopy(FIXTURE)
    payload["alerts"][0]["annotations"]["runbook_url"] = "https://wiki.example.com/runbooks/weaviate-down"
    post_alertmanager(bot.url, payload)
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-")), None), 15
    )
    text = wait_until(
        lambda: next(
            (
                json.dumps(m.get("blocks"))
                for m in fake.messages(chan.id)
                if "No runbook" in json.dumps(m.get("blocks")) or "No runbook" in m.get("text", "")
            ),
            None,
        ),
        15,
        what="no-runbook message",
    )
    assert "runbooks/weaviate-down.md" in text
    assert "https://wiki.example.com/runbooks/weaviate-down" in text
