"""Block Kit rendering of runbooks: limits, splitting, done/undo, and the no-runbook message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.catalog.runbooks import load_runbooks
from bot.core.runbook_links import RunbookCatalog, link_runbook
from bot.core.runbooks import CodeBlock, Runbook, Step, parse_runbook
from bot.slack.runbook_blocks import (
    STEP_ACTION_RE,
    StepAction,
    no_runbook_blocks,
    parse_step_action,
    runbook_message,
    runbook_messages,
    step_message_index,
)

RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"
# `<...>` sequences we write ourselves: links and validated user mentions. Anything else is a leak.
ALLOWED_CONTROL = re.compile(r"<(?:https?://|mailto:)[^<>]*>|<@[UW][A-Z0-9]+>")


def check_limits(messages: list[list[Block]]) -> list[dict[str, Any]]:
    """Every Slack limit the bot relies on; returns all blocks as dicts."""
    everything: list[dict[str, Any]] = []
    for blocks in messages:
        assert 1 <= len(blocks) <= 50
        dicts = [b.to_dict() for b in blocks]  # slack_sdk validates lengths here too
        block_ids = [d["block_id"] for d in dicts]
        assert len(set(block_ids)) == len(block_ids)
        assert all(len(i) <= 255 for i in block_ids)
        action_ids = [d["accessory"]["action_id"] for d in dicts if "accessory" in d]
        assert len(set(action_ids)) == len(action_ids)
        for d in dicts:
            if d["type"] == "section":
                text = d["text"]["text"]
                assert 0 < len(text) <= 3000 and text.strip()
                assert not ALLOWED_CONTROL.sub("", text).count("<")
            elif d["type"] == "header":
                assert 0 < len(d["text"]["text"]) <= 150 and d["text"]["text"].strip()
            elif d["type"] == "context":
                assert all(0 < len(e["text"]) <= 3000 and e["text"].strip() for e in d["elements"])
            if "accessory" in d:
                button = d["accessory"]
                assert len(button["text"]["text"]) <= 75
                assert len(button["value"]) <= 2000
                assert STEP_ACTION_RE.match(button["action_id"])
        everything += dicts
    return everything


def runbook_with(steps: list[Step], slug: str = "rb") -> Runbook:
    return Runbook(
        slug=slug,
        title="A runbook",
        alerts=("A",),
        owner="platform",
        severity="critical",
        steps=tuple(steps),
        source_file=f"runbooks/{slug}.md",
    )


def steps_of(dicts: list[dict[str, Any]]) -> list[int]:
    values = [parse_step_action(d["accessory"]["value"]) for d in dicts if "accessory" in d]
    return [v.number for v in values if v]


def test_every_shipped_runbook_renders_within_limits() -> None:
    catalog, problems = load_runbooks(RUNBOOKS)
    assert problems == [] and len(catalog) >= 11
    for runbook in catalog:
        done = {1: ("U0123ABC", "14:03 UTC")}
        dicts = check_limits(runbook_messages(runbook, 7, done, source_url="https://git.example/rb.md"))
        assert steps_of(dicts) == [s.number for s in runbook.steps]


def test_intro_and_sections() -> None:
    runbook = parse_runbook(
        "demo",
        "---\ntitle: Demo <!channel>\nowner: ops & co\n---\n"
        "## Investigation\n1. a\n2. b\n## Resolution\n1. c\n",
    )[0]
    assert runbook is not None
    (message,) = runbook_messages(runbook, 1, {}, source_url="https://git.example/runbooks/demo.md")
    dicts = check_limits([message])
    assert dicts[0]["type"] == "header" and dicts[0]["text"]["text"] == "📘 Runbook: Demo &lt;!channel&gt;"
    intro = dicts[1]["elements"][0]["text"]
    assert "ops &amp; co" in intro and "<https://git.example/runbooks/demo.md|runbooks/demo.md>" in intro
    headers = [d["text"]["text"] for d in dicts[2:] if d["type"] == "header"]
    assert headers == ["Investigation", "Resolution"]
    assert [d["text"]["text"] for d in dicts if d["type"] == "section"] == ["*1.* a", "*2.* b", "*3.* c"]


def test_eighty_steps_span_several_messages() -> None:
    sections = ["Symptoms", "Investigation", "Resolution", "Escalation"]
    steps = [Step(n, sections[(n - 1) // 20], f"step **{n}** with `code`") for n in range(1, 81)]
    runbook = runbook_with(steps)
    messages = runbook_messages(runbook, 3, {})
    assert len(messages) >= 3
    dicts = check_limits(messages)
    assert steps_of(dicts) == list(range(1, 81))
    index = step_message_index(runbook)
    for i, blocks in enumerate(messages):
        in_message = steps_of([b.to_dict() for b in blocks])
        assert in_message and all(index[n] == i for n in in_message)
    # a message that starts mid-section repeats the section header
    assert messages[1][0].to_dict()["text"]["text"].endswith("(continued)")


def test_layout_does_not_move_when_steps_are_done() -> None:
    steps = [Step(n, "Resolution", "x" * (n * 37 % 2500)) for n in range(1, 120)]
    runbook = runbook_with(steps)
    index = step_message_index(runbook)
    none_done = runbook_messages(runbook, 1, {})
    all_done = runbook_messages(runbook, 1, {n: ("U1", "09:00 UTC") for n in range(1, 120)})
    assert len(none_done) == len(all_done)
    check_limits(all_done)
    for i, blocks in enumerate(all_done):
        assert {index[n] for n in steps_of([b.to_dict() for b in blocks])} == {i}
    # re-rendering one message gives exactly that message
    target = index[100]
    again = runbook_message(runbook, 1, {n: ("U1", "09:00 UTC") for n in range(1, 120)}, target)
    assert [b.to_dict() for b in again] == [b.to_dict() for b in all_done[target]]


def test_long_step_is_split_and_only_the_last_part_has_the_button() -> None:
    text = " ".join(f"word{i} <@U999> &" for i in range(600))  # > 7000 chars once escaped
    code = CodeBlock("bash", "\n".join(f"echo line {i}" for i in range(400)))
    runbook = runbook_with([Step(1, "Investigation", text, (code,)), Step(2, "Investigation", "next")])
    (message,) = runbook_messages(runbook, 9, {1: ("U42", "14:03 UTC")})
    dicts = check_limits([message])
    parts = [d for d in dicts if d["type"] == "section" and d["block_id"].startswith("rb-step-1")]
    assert len(parts) >= 3
    assert all(len(p["text"]["text"]) <= 3000 for p in parts)
    assert ["accessory" in p for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[0]["text"]["text"].startswith("✅ *1.* word0")
    joined = "".join(p["text"]["text"] for p in parts)
    assert "&lt;@U999&gt;" in joined and "<@U999>" not in joined
    assert joined.count("echo line") == 400
    assert all(p["text"]["text"].count("```") % 2 == 0 for p in parts)  # fences never cut open
    assert dicts[dicts.index(parts[-1]) + 1]["block_id"] == "rb-done-1"


def test_a_single_huge_step_still_fits_one_message() -> None:
    runbook = runbook_with([Step(1, "Resolution", "y" * 200_000)])
    messages = runbook_messages(runbook, 1, {1: ("U1", "00:00 UTC")})
    dicts = check_limits(messages)
    assert steps_of(dicts) == [1]


def test_done_and_undo_rendering() -> None:
    runbook = runbook_with([Step(1, "Resolution", "restart it"), Step(2, "Resolution", "verify")])
    (message,) = runbook_messages(runbook, 12, {2: ("U0ABCDEF", "14:03 UTC")})
    by_id = {d["block_id"]: d for d in (b.to_dict() for b in message)}
    open_step, done_step = by_id["rb-step-1"], by_id["rb-step-2"]
    assert open_step["text"]["text"] == "*1.* restart it"
    assert open_step["accessory"]["text"]["text"] == "Done"
    assert open_step["accessory"]["action_id"] == "runbook_step_done:1"
    assert parse_step_action(open_step["accessory"]["value"]) == StepAction(12, "rb", 1, True)
    assert done_step["text"]["text"] == "✅ *2.* verify"
    assert done_step["accessory"]["text"]["text"] == "Undo"
    assert parse_step_action(done_step["accessory"]["value"]) == StepAction(12, "rb", 2, False)
    assert by_id["rb-done-2"]["elements"][0]["text"] == "done by <@U0ABCDEF> at 14:03 UTC"
    assert "rb-done-1" not in by_id


def test_done_by_text_is_escaped_when_not_a_user_id() -> None:
    runbook = runbook_with([Step(1, "", "x")])
    (message,) = runbook_messages(runbook, 1, {1: ("<!channel>", "<!here>")})
    context = next(b.to_dict() for b in message if b.to_dict()["block_id"] == "rb-done-1")
    assert context["elements"][0]["text"] == "done by &lt;!channel&gt; at &lt;!here&gt;"


def test_step_action_values_are_validated() -> None:
    assert parse_step_action("5:high-error-rate:3:done") == StepAction(5, "high-error-rate", 3, True)
    for bad in ("", "5:high-error-rate:3", "x:rb:1:done", "1:../etc:1:done", "1:rb:1:maybe", "1:rb:-1:undo"):
        assert parse_step_action(bad) is None


def test_no_runbook_blocks() -> None:
    catalog = RunbookCatalog()
    link = link_runbook(
        {"alertname": "HighApiErrorRate", "runbook": "../../etc/passwd"},
        {"runbook_url": "https://wiki.example/runbooks/api-errors"},
        catalog,
    )
    dicts = check_limits([no_runbook_blocks(link)])
    text = dicts[0]["text"]["text"]
    assert "No runbook found for *HighApiErrorRate*" in text
    assert "`runbooks/high-api-error-rate.md`" in text
    assert "<https://wiki.example/runbooks/api-errors|https://wiki.example/runbooks/api-errors>" in text
    assert "Refused" in dicts[1]["elements"][0]["text"]


def test_no_runbook_blocks_without_url_or_refusal() -> None:
    link = link_runbook({"alertname": "Mystery<!channel>"}, {}, RunbookCatalog())
    dicts = check_limits([no_runbook_blocks(link)])
    assert len(dicts) == 1
    assert "&lt;!channel&gt;" in dicts[0]["text"]["text"]
    assert "runbooks/mystery-channel.md" in dicts[0]["text"]["text"]


# --- property: random runbooks always respect the limits --------------------------------------

_chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
_texts = st.text(alphabet=st.sampled_from(list("ab *_`~<>&|@!#\n-1.[]()")) | _chars, max_size=120)
_long = st.builds(lambda t, n: t * n, _texts, st.integers(1, 60))


@st.composite
def random_runbooks(draw: st.DrawFn) -> tuple[Runbook, dict[int, tuple[str, str]]]:
    count = draw(st.integers(1, 90))
    sections = draw(st.lists(st.text(_chars, max_size=200), min_size=1, max_size=5))
    steps = []
    for n in range(1, count + 1):
        code = tuple(CodeBlock("sh", draw(_long)) for _ in range(draw(st.integers(0, 2))))
        steps.append(Step(n, draw(st.sampled_from(sections)), draw(_long), code))
    done_numbers = draw(st.sets(st.integers(1, count)))
    users = st.sampled_from(["U0123ABC", "W9", "<!channel>", "x" * 300])
    done = {n: (draw(users), draw(st.text(_chars, max_size=40))) for n in done_numbers}
    title = draw(st.text(_chars, min_size=1, max_size=400))
    slug = draw(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,99}", fullmatch=True))
    runbook = Runbook(
        slug=slug,
        title=title,
        alerts=tuple(draw(st.lists(st.text(_chars, max_size=50), max_size=5))),
        owner=draw(st.none() | st.text(_chars, max_size=300)),
        severity="critical",
        steps=tuple(steps),
        source_file=f"runbooks/{slug}.md",
    )
    return runbook, done


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(random_runbooks(), st.integers(0, 10**12))
def test_random_runbooks_stay_within_slack_limits(
    case: tuple[Runbook, dict[int, tuple[str, str]]], incident_id: int
) -> None:
    runbook, done = case
    messages = runbook_messages(runbook, incident_id, done)
    dicts = check_limits(messages)
    assert steps_of(dicts) == [s.number for s in runbook.steps]
    index = step_message_index(runbook)
    assert len(messages) == max(index.values()) + 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["1.", "- [ ]", "-", "   -", "  1."]), _texts), min_size=1, max_size=40
    )
)
def test_random_markdown_parses_and_renders_within_limits(items: list[tuple[str, str]]) -> None:
    source = "## Investigation\n" + "\n".join(f"{marker} {text}" for marker, text in items)
    runbook, _ = parse_runbook("random", source)
    if runbook is not None:
        check_limits(runbook_messages(runbook, 1, {}))
