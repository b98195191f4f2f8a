"""Untrusted text reaches Slack as text: never as a mention, a broadcast or a disguised link.

Alert labels and annotations, PagerDuty titles and notes, runbook steps and everything people type
(`/incident declare`, `note`, `action`, `resolve`, the declare form, pinned messages) carry Slack
control sequences here: `<!channel>`, `<!here>`, `<!everyone>`, `<@U123ABC>`, `<#C0SECRET>`,
`<!subteam^S0TEAM>` and `<http://evil.example|click here>`. After each flow, EVERY call recorded by
the fake Slack (text, blocks, attachments, topic, DM text, modal views: every string anywhere in the
arguments) and every ephemeral answer the bot returned is searched for them raw. The escaped forms
(`&lt;!channel&gt;`) are what Slack shows as text, and are fine. Mentions the bot makes itself
(`<@U01WEI>` for the person it pages) are legitimate and are not among the injected strings.

The rule changed on purpose (issue 17, item 9): what a person types in Slack as a note, an action
item, a resolve summary or a pinned message keeps its safe markup (`<@U123ABC>`, `<#C0SECRET>`,
http(s) and mailto links: `SAFE_WHEN_TYPED`) in the lines that show that text, and only there.
Broadcasts (`<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^...>`), `<!date...>` and other
schemes (`<javascript:...>`) are neutralised everywhere; alert, label, annotation and PagerDuty text
stays fully escaped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlmodel import Session, col, select

from bot.store.tables import Outbox
from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import (
    Clock,
    block_action_body,
    post_alertmanager,
    processed,
    settle,
    slack_event,
    slack_headers,
    slash_command_body,
    wait_until,
)

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

NEVER = ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S0TEAM>", "<!date^1^", "<javascript:")
SAFE_WHEN_TYPED = ("<@U123ABC>", "<#C0SECRET>", "<http://evil.example|", "<mailto:boss@example.com|")
INJECTED = NEVER + SAFE_WHEN_TYPED
# Escaping does not depend on the database: the long alert flow runs on both, the rest on SQLite.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HOSTILE = "<!channel> <!here> <@U123ABC> <http://evil.example|click here> & <!everyone>"
HOSTILE_2 = (
    "<#C0SECRET> <!subteam^S0TEAM> <mailto:boss@example.com|click me> &amp; done "
    "<!date^1^{date}|soon> <javascript:alert(1)|js>"
)


# -- inspection ----------------------------------------------------------------------------------------


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a call's arguments, with its path; JSON-encoded fields are opened too."""
    if isinstance(value, str):
        yield where, value
        stripped = value.strip()
        if stripped[:1] in "[{":
            try:
                decoded = json.loads(stripped)
            except ValueError:
                return
            yield from strings(decoded, where + "(json)")
    elif isinstance(value, dict):
        kind = f"<{value['type']}>" if isinstance(value.get("type"), str) else ""
        for key, item in value.items():
            yield from strings(item, f"{where}{kind}.{key}")
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            yield from strings(item, f"{where}[{n}]")


def raw_injections(texts: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{where}: {text[:300]!r}" for where, text in texts for bad in INJECTED if bad in text]


# Places where raw sequences used to reach Slack (fixed after these tests found them); each has its
# own focused test below, and the flow tests allow none of them.
LEAK_SITES = {
    # bot/slack/views.py: the incident card's HeaderBlock (plain_text: it cannot ping, but showed raw).
    "card header": lambda where, text: (
        "<header>.text<plain_text>.text" in where and where.startswith(("chat.postMessage", "chat.update"))
    ),
    # bot/slack/runbook_delivery.py: text=f"Runbook: {runbook.title}" (the message's top-level,
    # mrkdwn-parsed notification text).
    "runbook fallback text": lambda where, text: (
        where in ("chat.postMessage.text", "chat.update.text") and text.startswith("Runbook: ")
    ),
    # bot/slack/postmortem_delivery.py: title=f"Post-mortem: {draft.incident.title}" (file title).
    "post-mortem file title": lambda where, text: (
        where.startswith("files.completeUploadExternal") and where.endswith(".title")
    ),
    # Ephemeral answers echoing what was typed: bot/core/commands.py help_text ("Unknown subcommand
    # `...`") and bot/service/oncall.py ("There is no rotation named ...").
    "unknown subcommand echo": lambda where, text: (
        where.startswith("answer") and text.startswith("Unknown subcommand")
    ),
    "oncall rotation echo": lambda where, text: (
        where.startswith("answer") and text.startswith("There is no rotation named")
    ),
}


def leaks(fake, answers: list[str]) -> list[tuple[str, str]]:
    found = []
    for call in fake.calls:
        found += [
            (where, text)
            for where, text in strings(call.args, call.method)
            if raw_injections([(where, text)])
        ]
    found += [(f"answer {n}", text) for n, text in enumerate(answers) if raw_injections([("", text)])]
    return found


# Lines that show what a person typed (see the module docstring): the channel echoes of notes, action
# items and resolve summaries, and `/incident timeline` lines of typed entries.
TYPED_LINES = re.compile(
    r"^(?::memo: Note from|:ballot_box_with_check: Action item from|:white_check_mark: Resolved by)"
    r"|^`[0-9:]+` \S+ · (?::memo:|:ballot_box_with_check:|:pushpin:) "
)


def typed_markup(found: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Split leaks into real ones and safe markup kept in lines that show typed text."""
    real, kept = [], []
    for where, text in found:
        for line in text.splitlines():
            bad = [b for b in INJECTED if b in line]
            if not bad:
                continue
            if TYPED_LINES.match(line) and all(b in SAFE_WHEN_TYPED for b in bad):
                kept.append(line)
            else:
                real.append((where, line))
    return real, kept


def assert_nothing_injected(fake, answers: list[str], *, typed: bool = False) -> None:
    """`typed`: the flow typed hostile notes, action items or summaries, whose safe markup stays."""
    assert fake.calls, "the flow made no Slack calls at all"
    found = leaks(fake, answers)
    if typed:
        found, kept = typed_markup(found)
        assert kept, "typed mentions and links were not kept anywhere"
    unique = sorted({f"{where}: {text[:300]!r}" for where, text in found})
    assert not unique, "raw Slack control sequences reached Slack:\n" + "\n".join(unique[:40])
    # And the escaped forms did arrive: the text was shown, not dropped.
    shown = [text for call in fake.calls for _, text in strings(call.args)] + answers
    assert any("&lt;!channel&gt;" in text for text in shown)


def drained(bot) -> None:
    def done() -> bool:
        with Session(bot.ctx.engine) as session:
            rows = session.exec(select(Outbox).where(col(Outbox.status) == "pending")).all()
            return not [r for r in rows if r.not_before <= bot.clock()]

    wait_until(done, 20, what="outbox drained")


def slash(
    bot, text: str, channel: str = "C0GENERAL", command: str = "/incident", user: str = "U01ALEX"
) -> str:
    body = slash_command_body(command, text, user=user, channel=channel)
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text
    return r.json().get("text", "") if r.content else ""


def click(bot, action_id: str, value: str, channel: str, user: str = "U01WEI") -> None:
    body = block_action_body(action_id, value, user=user, channel=channel)
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text


def incident_channel(fake, prefix: str = "inc-"):
    return wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith(prefix) and c.pins), None),
        15,
        what="incident channel with its card",
    )


# -- flows ---------------------------------------------------------------------------------------------


@pytest.fixture
def start(start_bot, tmp_path):
    """The bot at T0, writing post-mortem drafts into a tmp dir (not the repository's)."""

    def go(**settings: Any):
        return start_bot(clock=Clock(T0), postmortems_dir=tmp_path / "postmortems", **settings)

    return go


RUNBOOK = f"""---
title: Hostile {HOSTILE}
alerts: [HostileAlert]
owner: {HOSTILE_2}
severity: critical
---
# Hostile runbook

Prose for readers: {HOSTILE}

## Investigation {HOSTILE_2}

1. Tell {HOSTILE} that it is down.
2. Check the pods of {HOSTILE_2}:
   ```bash
   echo "{HOSTILE}"
   ```
   - nested: {HOSTILE}
- [ ] Task: {HOSTILE}

## Resolution

1. Inline code `{HOSTILE}` and **bold {HOSTILE_2}**.
"""


@pytest.fixture
def runbooks_dir(tmp_path) -> Path:
    path = tmp_path / "runbooks"
    path.mkdir()
    (path / "hostile-runbook.md").write_text(RUNBOOK)
    return path


def hostile_alert() -> dict[str, Any]:
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    labels = {
        "alertname": f"HostileAlert {HOSTILE}",
        "team": "data-platform",
        "severity": "critical",
        "service": HOSTILE,
        "instance": HOSTILE_2,
        "runbook": "hostile-runbook",
    }
    annotations = {
        "summary": f"Summary {HOSTILE}",
        "description": f"Description {HOSTILE_2} {HOSTILE}",
        "runbook_url": f"https://runbooks.example/{HOSTILE}",
        "dashboard": HOSTILE,
    }
    alert = payload["alerts"][0]
    alert.update(
        labels=labels, annotations=annotations, generatorURL=f"http://prom.example/graph?g0.expr={HOSTILE}"
    )
    second = json.loads(json.dumps(alert)) | {"fingerprint": "f00dfeedbeef0002"}
    second["labels"] = labels | {"instance": f"second {HOSTILE}"}
    payload.update(
        alerts=[alert, second],
        groupLabels={"alertname": labels["alertname"], "service": HOSTILE},
        commonLabels={k: v for k, v in labels.items() if k != "instance"},
        commonAnnotations=annotations,
        externalURL=f"http://am.example/{HOSTILE}",
        groupKey=f"{{}}:{{alertname={HOSTILE!r}}}",
    )
    return payload


def test_alert_labels_annotations_and_runbook_are_escaped(start, fake_slack, runbooks_dir):
    fake = fake_slack.fake
    bot = start(runbooks_dir=runbooks_dir)
    payload = hostile_alert()
    r = post_alertmanager(bot.url, payload)
    assert r.status_code == 202, r.text
    incident = processed(bot, r)["incident"]
    chan = incident_channel(fake)
    # The runbook is posted (proving the label linked it), and the primary was paged by DM.
    wait_until(
        lambda: any("Tell" in t for _, t in strings([m for m in fake.messages(chan.id)])), 15, what="runbook"
    )
    wait_until(
        lambda: [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel", "").startswith("D")],
        15,
    )

    answers = [slash(bot, sub, channel=chan.id) for sub in ("status", "timeline", "runbook")]
    answers.append(slash(bot, "list"))
    # A button and an escalation re-render the card and post updates with the same text.
    click(bot, "incident_escalate", str(incident), chan.id)
    click(bot, "incident_ack", str(incident), chan.id)
    # Half the group resolves, then all of it: "resolved" messages quote the alerts again.
    resolved = json.loads(json.dumps(payload))
    resolved["alerts"][1]["status"] = "resolved"
    resolved["alerts"][1]["endsAt"] = "2026-11-23T12:05:00Z"
    assert post_alertmanager(bot.url, resolved).status_code == 202
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert.update(status="resolved", endsAt="2026-11-23T12:06:00Z")
    assert post_alertmanager(bot.url, resolved).status_code == 202
    answers.append(slash(bot, "close", channel=chan.id))
    drained(bot)
    assert_nothing_injected(fake, answers)


@sqlite_only
def test_user_text_from_commands_forms_and_pins_is_escaped(start, fake_slack):
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": "U02SARAH"})
    bot = start(rotations_dir=FIXTURES / "rotations")
    answers = [slash(bot, f"declare {HOSTILE} sev1")]
    chan = incident_channel(fake)
    c = chan.id
    for sub in (
        f"note {HOSTILE}",
        f"note {HOSTILE_2}",
        f"action {HOSTILE}",
        f"sev {HOSTILE}",
        f"page {HOSTILE_2}",  # no mention: looked up as a rotation name, and echoed in the error
        f"lead {HOSTILE_2}",
        f"{HOSTILE}",  # unknown subcommand, echoed back
        f"help {HOSTILE}",
        f"resolve {HOSTILE}",
        f"reopen {HOSTILE}",
        "timeline",
        "status",
    ):
        answers.append(slash(bot, sub, channel=c))
    answers.append(slash(bot, HOSTILE, command="/oncall"))
    answers.append(slash(bot, f"ack {HOSTILE}", channel="C0GENERAL"))

    # A pinned message and a :pushpin: reaction: the message text joins the timeline and is shown again.
    later = T0.timestamp() + 600  # message times after everything else: among the last 20 entries
    msg = fake.add_message(c, f"pinned {HOSTILE}", user="U02SARAH", ts=f"{later:.6f}")
    slack_event(
        bot,
        {
            "type": "pin_added",
            "user": "U01ALEX",
            "channel_id": c,
            "item": {"type": "message", "channel": c, "message": {**msg, "text": f"pinned {HOSTILE}"}},
            "event_ts": str(time.time()),
        },
    )
    other = fake.add_message(c, f"reacted {HOSTILE_2}", user="U02SARAH", ts=f"{later + 1:.6f}")
    slack_event(
        bot,
        {
            "type": "reaction_added",
            "user": "U01ALEX",
            "reaction": "pushpin",
            "item_user": "U02SARAH",
            "item": {"type": "message", "channel": c, "ts": other["ts"]},
            "event_ts": str(time.time()),
        },
    )
    wait_until(lambda: "reacted" in slash(bot, "timeline", channel=c), 10, what="pins in the timeline")
    answers.append(slash(bot, "timeline", channel=c))

    # The declare form, with a hostile title and description.
    view = {
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
                    "title": {"title": {"type": "plain_text_input", "value": f"Form {HOSTILE_2}"}},
                    "severity": {"severity": {"type": "static_select", "selected_option": {"value": "SEV2"}}},
                    "description": {"description": {"type": "plain_text_input", "value": HOSTILE}},
                }
            },
        },
    }
    body = urlencode({"payload": json.dumps(view)}).encode()
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200
    wait_until(lambda: len([ch for ch in fake.channels.values() if ch.name.startswith("inc-")]) == 2, 15)
    answers.append(slash(bot, "list"))
    answers.append(slash(bot, "resolve", channel=c))
    answers.append(slash(bot, "close", channel=c))
    drained(bot)
    assert_nothing_injected(fake, answers, typed=True)


@sqlite_only
def test_pagerduty_titles_notes_and_names_are_escaped(start, fake_slack):
    fake = fake_slack.fake
    bot = start()
    events = FIXTURES / "pagerduty-v3" / "events"

    def post(kind: str, event_id: str, **data: Any) -> None:
        payload = json.loads((events / f"{kind}.json").read_text())
        payload["event"]["id"] = event_id
        payload["event"]["agent"] = {"id": "PAGENT", "type": "user_reference", "summary": HOSTILE_2}
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

    post(
        "incident.triggered",
        "E1",
        title=f"PD {HOSTILE}",
        service={"id": "PSVC", "type": "service_reference", "summary": HOSTILE_2},
        assignees=[{"id": "PUSER", "type": "user_reference", "summary": HOSTILE}],
        escalation_policy={"id": "PEP", "type": "escalation_policy_reference", "summary": HOSTILE},
        priority={"id": "PPRIO", "type": "priority", "summary": f"P1 {HOSTILE_2}"},
    )
    chan = incident_channel(fake)
    note = json.loads((events / "incident.annotated.json").read_text())["event"]["data"]
    post("incident.annotated", "E2", content=f"note {HOSTILE}", incident=note["incident"])
    post("incident.reassigned", "E3", assignees=[{"id": "PU2", "type": "user_reference", "summary": HOSTILE}])
    post("incident.escalated", "E4")
    post("incident.acknowledged", "E5")
    post("incident.resolved", "E6")
    answers = [slash(bot, "timeline", channel=chan.id), slash(bot, "status", channel=chan.id)]
    drained(bot)
    assert_nothing_injected(fake, answers)


def test_the_check_itself_catches_a_raw_mention():
    # Guard against a vacuous test: the same walk finds a raw sequence nested in blocks and in JSON.
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi <!here>"}}]
    assert raw_injections(strings({"blocks": blocks}))
    assert raw_injections(strings({"blocks": json.dumps(blocks)}))
    assert raw_injections(strings({"topic": "x <http://evil.example|click here>"}))
    assert not raw_injections(strings({"text": "&lt;!channel&gt; &lt;@U123ABC&gt; <@U01WEI>"}))
    # Typed markup is allowed only in lines showing typed text, and never a broadcast.
    note = ":memo: Note from <@U01ALEX>: ask <@U123ABC>"
    assert typed_markup([("x", note)]) == ([], [note])
    assert typed_markup([("x", "*#1 ask <@U123ABC>*")])[0]  # a title is not typed text
    assert typed_markup([("x", ":memo: Note from <@U01ALEX>: <!here>")])[0]
    line = "`12:00:00` <@U01ALEX> · :memo: see <http://evil.example|x>"
    assert typed_markup([("answer", f"*Last 2:*\n{line}")]) == ([], [line])


# -- the places that leaked once, one by one -------------------------------------------------------------


def only(name: str, fake, answers: list[str]) -> list[str]:
    return [f"{w}: {t[:200]!r}" for w, t in leaks(fake, answers) if LEAK_SITES[name](w, t)]


@sqlite_only
def test_incident_card_header_escapes_the_title(start, fake_slack):
    bot = start()
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    payload["commonAnnotations"]["summary"] = f"Summary {HOSTILE}"
    assert post_alertmanager(bot.url, payload).status_code == 202
    incident_channel(fake_slack.fake)
    drained(bot)
    assert not only("card header", fake_slack.fake, [])


@sqlite_only
def test_runbook_message_text_escapes_the_title(start, fake_slack, runbooks_dir):
    bot = start(runbooks_dir=runbooks_dir)
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    payload["commonLabels"]["runbook"] = payload["alerts"][0]["labels"]["runbook"] = "hostile-runbook"
    assert post_alertmanager(bot.url, payload).status_code == 202
    wait_until(lambda: any(c.args.get("text", "").startswith("Runbook") for c in fake_slack.fake.calls), 15)
    drained(bot)
    assert not only("runbook fallback text", fake_slack.fake, [])


@sqlite_only
def test_postmortem_file_title_escapes_the_incident_title(start, fake_slack):
    bot = start()
    slash(bot, f"declare {HOSTILE} sev3")
    chan = incident_channel(fake_slack.fake)
    slash(bot, "resolve", channel=chan.id)
    slash(bot, "close", channel=chan.id)  # closing writes and uploads the post-mortem draft
    wait_until(
        lambda: fake_slack.fake.calls_to("files.completeUploadExternal"), 15, what="post-mortem upload"
    )
    drained(bot)
    assert not only("post-mortem file title", fake_slack.fake, [])


@sqlite_only
def test_unknown_subcommand_echo_is_escaped(start, fake_slack):
    bot = start()
    answer = slash(bot, "<!channel> <http://evil.example|click here>")
    assert "Unknown subcommand" in answer
    assert not raw_injections([("answer", answer)]), answer


@sqlite_only
def test_oncall_unknown_rotation_echo_is_escaped(start, fake_slack):
    bot = start()
    answer = slash(bot, "<!channel> <http://evil.example|click here>", command="/oncall")
    assert "There is no rotation named" in answer
    assert not raw_injections([("answer", answer)]), answer


@sqlite_only
def test_timeline_escapes_each_entry_exactly_once(start, fake_slack):
    bot = start()
    slash(bot, "declare Disk full sev3")
    chan = incident_channel(fake_slack.fake)
    slash(bot, "note <!channel> rolled back", channel=chan.id)
    drained(bot)
    timeline = slash(bot, "timeline", channel=chan.id)
    assert "&lt;!channel&gt; rolled back" in timeline  # the note, escaped once
    assert "&amp;lt;" not in timeline and "&amp;gt;" not in timeline, timeline
    assert "&lt;@U01ALEX&gt;" not in timeline, timeline
