"""Runbook parsing, front-matter validation, alert linking and path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.catalog.runbooks import check_runbook_references, load_runbooks, safe_runbook_path
from bot.core.runbook_links import (
    BY_ANNOTATION,
    BY_FILE_NAME,
    BY_FRONT_MATTER,
    BY_LABEL,
    BY_URL,
    NOT_FOUND,
    RunbookCatalog,
    link_runbook,
    reference_problem,
)
from bot.core.runbooks import Runbook, Step, is_valid_slug, parse_runbook, step_mrkdwn

RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"
REQUIRED = {
    "high-error-rate": "HighApiErrorRate",
    "high-latency": "HighLatency",
    "service-down": "ServiceDown",
    "redis-connection-failure": "RedisConnectionFailure",
    "weaviate-down": "WeaviateDown",
    "high-llm-latency": "HighLLMLatency",
    "database-connection-pool-exhaustion": "DatabaseConnectionFailure",
    "high-memory-usage": "HighMemoryUsage",
    "disk-space-low": "DiskSpaceRunningLow",
    "pod-crash-looping": "PodCrashLooping",
    "slo-burn-rate": "RedisGatewaySLOBurnRateHigh",
}


def parse_ok(text: str, slug: str = "test") -> Runbook:
    runbook, problems = parse_runbook(slug, text)
    assert problems == []
    assert runbook is not None
    return runbook


# --- shipped runbooks -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> RunbookCatalog:
    catalog, problems = load_runbooks(RUNBOOKS)
    assert problems == []
    return catalog


def test_required_runbooks_are_shipped_and_claim_their_alerts(shipped: RunbookCatalog) -> None:
    for slug, alert in REQUIRED.items():
        runbook = shipped.by_slug(slug)
        assert runbook is not None, slug
        assert alert in runbook.alerts
        assert shipped.for_alert(alert) is runbook


@pytest.mark.parametrize(
    "path", sorted(p for p in RUNBOOKS.glob("*.md") if p.name != "README.md"), ids=lambda p: p.stem
)
def test_each_shipped_runbook_parses_cleanly(path: Path) -> None:
    runbook, problems = parse_runbook(path.stem, path.read_text(encoding="utf-8"), f"runbooks/{path.name}")
    assert problems == []
    assert runbook is not None
    assert runbook.title and runbook.title != runbook.slug
    assert runbook.owner and runbook.severity and runbook.alerts
    sections = runbook.sections()
    for needed in ("Symptoms", "Investigation", "Resolution"):
        assert needed in sections
    for needed in ("Investigation", "Resolution"):
        assert any(step.section == needed for step in runbook.steps)
    assert [s.number for s in runbook.steps] == list(range(1, len(runbook.steps) + 1))
    assert any(step.code for step in runbook.steps)  # the real commands, as code
    for step in runbook.steps:
        assert "```" not in step.text
        assert step_mrkdwn(step)


def test_fixture_alerts_link_to_shipped_runbooks(shipped: RunbookCatalog) -> None:
    # Labels/annotations as in the Alertmanager 0.25 fixtures.
    api = link_runbook(
        {"alertname": "HighApiErrorRate", "runbook": "high-error-rate", "severity": "critical"},
        {"runbook_url": "https://runbooks.example.com/high-error-rate", "summary": "API error rate above 5%"},
        shipped,
    )
    assert api.runbook is not None and api.runbook.slug == "high-error-rate"
    assert api.reason == BY_LABEL
    assert api.url == "https://runbooks.example.com/high-error-rate"
    weaviate = link_runbook(
        {"alertname": "WeaviateDown", "job": "weaviate"}, {"summary": "Weaviate is down"}, shipped
    )
    assert weaviate.runbook is not None and weaviate.runbook.slug == "weaviate-down"
    assert weaviate.reason == BY_FRONT_MATTER


def test_readme_is_skipped(shipped: RunbookCatalog) -> None:
    assert (RUNBOOKS / "README.md").exists()
    assert shipped.by_slug("readme") is None and shipped.by_slug("README") is None


# --- parsing ----------------------------------------------------------------------------------

TRICKY = """\
---
title: Tricky
alerts: [Tricky]
---
# Ignored heading title

Intro prose with <!channel> is not a step.

## Investigation

1. **Check** the *pods* and `svc` — see [docs](https://example.com/a?b=1&c=2) <!channel> <@U123> & co
   ```bash
   kubectl get pods -l app=x | grep -v "<none>"
   ```
   - sub one
   - sub two with [relative](../other.md)
     1. deep step
2. Überprüfe 日本語 🚀 ~~old~~ text
   wrapped onto a second line
- plain bullet: a note, not a step

## Resolution
### If Redis is down

- [ ] task item
- [x] checked task
  with continuation
3. numbered again
"""


def test_steps_sections_and_numbers() -> None:
    runbook = parse_ok(TRICKY)
    assert runbook.title == "Tricky"
    assert [(s.number, s.section) for s in runbook.steps] == [
        (1, "Investigation"),
        (2, "Investigation"),
        (3, "Resolution › If Redis is down"),
        (4, "Resolution › If Redis is down"),
        (5, "Resolution › If Redis is down"),
    ]
    assert [s.line for s in runbook.steps] == [11, 18, 25, 26, 28]


def test_code_blocks_stay_attached_and_out_of_the_text() -> None:
    step = parse_ok(TRICKY).steps[0]
    assert len(step.code) == 1
    assert step.code[0].lang == "bash"
    assert step.code[0].code == 'kubectl get pods -l app=x | grep -v "<none>"\n'
    assert "kubectl" not in step.text
    assert step.text.splitlines()[1:] == [
        "- sub one",
        "- sub two with [relative](../other.md)",
        "  1. deep step",
    ]


def test_step_mrkdwn_translates_markup_and_escapes_everything_else() -> None:
    out = step_mrkdwn(parse_ok(TRICKY).steps[0])
    first = out.splitlines()[0]
    assert first.startswith("*Check* the _pods_ and `svc` — see <https://example.com/a?b=1&c=2|docs>")
    assert "&lt;!channel&gt; &lt;@U123&gt; &amp; co" in first
    assert "<!channel>" not in out and "<@U123>" not in out
    assert "• sub one" in out and "• sub two with relative (../other.md)" in out
    assert "    1. deep step" in out  # nested list rendered as an indented sub-item
    assert out.endswith('```\nkubectl get pods -l app=x | grep -v "&lt;none&gt;"\n```')


def test_unicode_strikethrough_and_soft_breaks() -> None:
    out = step_mrkdwn(parse_ok(TRICKY).steps[1])
    assert out == "Überprüfe 日本語 🚀 ~old~ text wrapped onto a second line"


def test_task_list_items_are_steps_without_their_checkbox() -> None:
    steps = parse_ok(TRICKY).steps
    assert steps[2].text == "task item"
    assert steps[3].text == "checked task\nwith continuation"
    assert step_mrkdwn(steps[3]) == "checked task with continuation"


def test_title_defaults_to_heading_then_slug() -> None:
    assert parse_ok("# From heading\n\n1. a\n").title == "From heading"
    assert parse_ok("1. a\n", slug="my-slug").title == "my-slug"
    assert parse_ok("1. a\n").steps[0].section == ""


def test_very_long_step_is_kept_whole() -> None:
    long_text = "word " * 1500
    step = parse_ok(f"## Resolution\n1. {long_text}\n").steps[0]
    assert len(step_mrkdwn(step)) > 7000


def test_links_and_mentions_inside_link_labels_are_safe() -> None:
    step = parse_ok("1. [<!here> click](https://x.example/?q=<a>|b) and <https://auto.example>\n").steps[0]
    out = step_mrkdwn(step)
    assert "<!here>" not in out
    assert "&lt;!here&gt; click>" in out
    assert "<https://auto.example|https://auto.example>" in out
    # javascript: and other schemes are never made into links
    js = step_mrkdwn(parse_ok("1. [x](javascript:alert(1))\n").steps[0])
    assert "<" not in js


def test_html_is_text() -> None:
    out = step_mrkdwn(parse_ok("1. <b>bold?</b> <script>x</script>\n").steps[0])
    assert out == "&lt;b&gt;bold?&lt;/b&gt; &lt;script&gt;x&lt;/script&gt;"


def test_code_cannot_close_its_fence() -> None:
    step = parse_ok("1. run\n   ````\n   echo ```\n   ````\n").steps[0]
    body = step_mrkdwn(step).split("\n", 1)[1]
    assert body.count("```") == 2


def test_no_steps_is_a_problem() -> None:
    runbook, problems = parse_runbook("empty", "# Empty\n\n- just a bullet\n\nprose\n", "runbooks/empty.md")
    assert runbook is None
    assert [p.file for p in problems] == ["runbooks/empty.md"]
    assert "no steps" in problems[0].message


def test_bad_slug_is_a_problem() -> None:
    runbook, problems = parse_runbook("../evil", "1. a\n")
    assert runbook is None and "slug" in problems[0].message


# --- front matter -----------------------------------------------------------------------------


def test_front_matter_schema_errors_have_line_numbers() -> None:
    text = "\n".join(
        [
            "---",  # 1
            "title: Fine",  # 2
            "colour: red",  # 3 unknown key
            "alerts: Foo",  # 4 not a list
            "owner: [a, b]",  # 5 not text
            "severity: 3",  # 6 not text
            "title: Again",  # 7 duplicate key
            "---",
            "1. step",
        ]
    )
    runbook, problems = parse_runbook("fm", text, "runbooks/fm.md")
    assert runbook is not None  # still usable, minus the bad fields
    assert runbook.title == "Again"  # YAML: the last duplicate wins
    assert runbook.alerts == () and runbook.owner is None
    lines = {p.line: p.message for p in problems}
    assert sorted(lines) == [3, 4, 5, 6, 7]
    assert "unknown front matter key 'colour'" in lines[3]
    assert "'alerts' must be a list" in lines[4]
    assert "'owner' must be non-empty text" in lines[5]
    assert "appears twice" in lines[7]
    assert all(p.file == "runbooks/fm.md" for p in problems)


def test_alert_entries_are_checked_one_by_one() -> None:
    text = "---\nalerts:\n  - Good\n  - 42\n  - Good\n---\n1. a\n"
    runbook, problems = parse_runbook("a", text)
    assert runbook is not None and runbook.alerts == ("Good",)
    assert runbook.alert_lines == (3,)
    assert [(p.line, "text" in p.message or "twice" in p.message) for p in problems] == [(4, True), (5, True)]


def test_bad_yaml_reports_its_line() -> None:
    text = "---\ntitle: ok\nalerts: [A, B\nowner: x\n---\n1. a\n"
    runbook, problems = parse_runbook("y", text)
    assert runbook is not None
    assert len(problems) == 1 and "not valid YAML" in problems[0].message
    assert problems[0].line in (4, 5)  # the parser notices at the line after the open bracket


def test_front_matter_must_be_a_mapping_and_closed() -> None:
    _, problems = parse_runbook("m", "---\n- a\n- b\n---\n1. a\n")
    assert [(p.line, "mapping" in p.message) for p in problems] == [(2, True)]
    _, problems = parse_runbook("u", "---\ntitle: x\n1. a\n")
    assert problems[0].line == 1 and "never closed" in problems[0].message


def test_step_lines_count_the_front_matter() -> None:
    runbook = parse_ok("---\ntitle: x\n---\n\n## Investigation\n1. a\n")
    assert runbook.steps[0].line == 6


# --- linking ----------------------------------------------------------------------------------


def rb(slug: str, *alerts: str) -> Runbook:
    return Runbook(
        slug=slug, title=slug, alerts=alerts, steps=(Step(1, "", "x"),), source_file=f"runbooks/{slug}.md"
    )


@pytest.fixture
def catalog() -> RunbookCatalog:
    built, problems = RunbookCatalog.build(
        [
            rb("by-label"),
            rb("by-annotation"),
            rb("by-url"),
            rb("claims", "Claimed"),
            rb("named-after"),
        ]
    )
    assert problems == []
    return built


def test_link_precedence(catalog: RunbookCatalog) -> None:
    labels = {"alertname": "NamedAfter", "runbook": "by-label"}
    annotations = {"runbook": "by-annotation", "runbook_url": "https://docs.example.com/rb/by-url.md"}

    def slug_and_reason(lab: dict[str, str], ann: dict[str, str]) -> tuple[str | None, str]:
        result = link_runbook(lab, ann, catalog)
        return (result.runbook.slug if result.runbook else None), result.reason

    assert slug_and_reason(labels, annotations) == ("by-label", BY_LABEL)
    assert slug_and_reason({**labels, "runbook": "missing"}, annotations) == ("by-annotation", BY_ANNOTATION)
    no_label = {"alertname": "NamedAfter"}
    assert slug_and_reason(no_label, annotations) == ("by-annotation", BY_ANNOTATION)
    url_only = {"runbook_url": annotations["runbook_url"]}
    assert slug_and_reason(no_label, url_only) == ("by-url", BY_URL)
    assert slug_and_reason({"alertname": "Claimed"}, {"runbook_url": "https://x.example/nope"}) == (
        "claims",
        BY_FRONT_MATTER,
    )
    assert slug_and_reason(no_label, {}) == ("named-after", BY_FILE_NAME)
    assert slug_and_reason({"alertname": "Unknown"}, {}) == (None, NOT_FOUND)


def test_url_is_kept_even_without_a_file(catalog: RunbookCatalog) -> None:
    annotations = {"runbook_url": "https://wiki.example/Runbooks/Some Page"}
    result = link_runbook({"alertname": "Unknown"}, annotations, catalog)
    assert result.runbook is None
    assert result.url == "https://wiki.example/Runbooks/Some Page"
    assert result.suggested_file == "runbooks/unknown.md"
    assert result.refused is None


def test_not_found_names_the_file_to_create(catalog: RunbookCatalog) -> None:
    result = link_runbook({"alertname": "HighApiErrorRate"}, {}, catalog)
    assert (result.runbook, result.reason, result.suggested_file) == (
        None,
        NOT_FOUND,
        "runbooks/high-api-error-rate.md",
    )
    # When the alert already points at a slug, creating that file is what links it.
    pointed = link_runbook({"alertname": "HighApiErrorRate", "runbook": "api-errors"}, {}, catalog)
    assert pointed.suggested_file == "runbooks/api-errors.md"
    assert link_runbook({}, {}, catalog).suggested_file is None


TRAVERSALS = [
    "../etc/passwd",
    "/etc/passwd",
    "..%2Fetc%2Fpasswd",
    "%2e%2e%2fetc%2fpasswd",
    "..%252Fetc",
    "..\\..\\windows\\win.ini",
    "runbooks\\x",
    "~/secrets",
    "C:/x",
    "a/../../b",
    "x\x00y",
    "..",
]


@pytest.mark.parametrize("ref", TRAVERSALS)
def test_traversal_in_label_or_annotation_is_refused(ref: str, catalog: RunbookCatalog) -> None:
    assert reference_problem(ref) is not None
    assert not is_valid_slug(ref)
    for labels, notes in (
        ({"alertname": "Claimed", "runbook": ref}, {}),
        ({"alertname": "Claimed"}, {"runbook": ref}),
    ):
        result = link_runbook(labels, notes, catalog)
        assert result.refused is not None and repr(ref) in result.refused
        # refusal is not the end: the safe rules still apply
        assert result.runbook is not None and result.runbook.slug == "claims"


BAD_URLS = [
    "../../etc/passwd",
    "/etc/passwd",
    "file:///etc/passwd",
    "runbooks\\..\\x.md",
    "https://docs.example.com/rb/..%2F..%2Fetc%2Fpasswd",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_traversal_in_runbook_url_is_refused(url: str, catalog: RunbookCatalog) -> None:
    result = link_runbook({"alertname": "Unknown"}, {"runbook_url": url}, catalog)
    assert result.refused is not None
    assert result.runbook is None
    assert result.url in (None, url) and (result.url is None or url.startswith("https://"))


def test_relative_runbook_url_inside_runbooks_is_fine(catalog: RunbookCatalog) -> None:
    result = link_runbook({"alertname": "X"}, {"runbook_url": "runbooks/by-url.md"}, catalog)
    assert result.runbook is not None and result.reason == BY_URL and result.url is None


def test_slug_rules() -> None:
    assert is_valid_slug("high-error-rate") and is_valid_slug("v1.2_x")
    for bad in ("", "High", "-x", ".x", "a..b", "a/b", "a b", "é", "x" * 101):
        assert not is_valid_slug(bad)


def test_duplicate_alert_claims_are_problems() -> None:
    first = Runbook(
        slug="a",
        title="a",
        alerts=("X", "Y"),
        steps=(Step(1, "", "x"),),
        source_file="runbooks/a.md",
        alert_lines=(3, 4),
    )
    second = Runbook(
        slug="b",
        title="b",
        alerts=("Y",),
        steps=(Step(1, "", "x"),),
        source_file="runbooks/b.md",
        alert_lines=(7,),
    )
    catalog, problems = RunbookCatalog.build([second, first])
    assert catalog.for_alert("Y") is first  # deterministic: first by slug wins
    assert [(p.file, p.line) for p in problems] == [("runbooks/b.md", 7)]
    assert "runbooks/a.md" in problems[0].message


# --- loading from disk ------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_runbooks_reports_problems_and_refuses_symlinks_out(tmp_path: Path) -> None:
    books = tmp_path / "runbooks"
    books.mkdir()
    outside = write(tmp_path / "secret.md", "---\nalerts: [Stolen]\n---\n1. the secret\n")
    write(books / "good.md", "---\nalerts: [Good, Shared]\n---\n## Investigation\n1. look\n")
    write(books / "other.md", "---\nalerts: [Shared]\n---\n1. look\n")
    write(books / "empty.md", "# nothing to do\n")
    write(books / "Bad Name.md", "1. a\n")
    write(books / "README.md", "# not a runbook\n")
    write(books / "notes.txt", "1. ignored\n")
    (books / "evil.md").symlink_to(outside)
    (books / "alias.md").symlink_to(books / "good.md")  # inside: fine

    catalog, problems = load_runbooks(books)
    assert sorted(r.slug for r in catalog) == ["alias", "good", "other"]
    assert catalog.for_alert("Stolen") is None
    by_file = {p.file: p for p in problems}
    assert "symlink points outside" in by_file["runbooks/evil.md"].message
    assert "no steps" in by_file["runbooks/empty.md"].message
    assert "slug" in by_file["runbooks/Bad Name.md"].message
    assert "runbooks/README.md" not in by_file
    claims = [p for p in problems if "already claimed" in p.message]
    assert {(p.file, p.line) for p in claims} == {("runbooks/good.md", 2), ("runbooks/other.md", 2)}


def test_symlinked_directory_escape_is_refused(tmp_path: Path) -> None:
    books = tmp_path / "runbooks"
    books.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(elsewhere / "x.md", "1. a\n")
    (books / "sub").symlink_to(elsewhere)
    assert safe_runbook_path(books, "sub/x") is None
    (books / "link.md").symlink_to(elsewhere / "x.md")
    assert safe_runbook_path(books, "link") is None
    write(books / "real.md", "1. a\n")
    assert safe_runbook_path(books, "real") == (books / "real.md").resolve()
    for ref in TRAVERSALS:
        assert safe_runbook_path(books, ref) is None


def test_missing_directory_and_unreadable_files(tmp_path: Path) -> None:
    catalog, problems = load_runbooks(tmp_path / "nope")
    assert len(catalog) == 0 and "not found" in problems[0].message
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "binary.md").write_bytes(b"1. \xff\xfe\n")
    (books / "dir.md").mkdir()
    _, problems = load_runbooks(books)
    messages = {p.file: p.message for p in problems}
    assert "UTF-8" in messages["runbooks/binary.md"]
    assert "regular file" in messages["runbooks/dir.md"]


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_dangling_symlink_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "gone.md").symlink_to(books / "missing-target.md")
    _, problems = load_runbooks(books)
    assert [p.file for p in problems] == ["runbooks/gone.md"]


def test_check_runbook_references(shipped: RunbookCatalog) -> None:
    problems = check_runbook_references(
        shipped,
        [
            ("rotations/platform.yaml", "high-error-rate", 4),
            ("rotations/platform.yaml", "no-such-runbook", 9),
            ("routes.yaml", "../etc/passwd", 12),
        ],
    )
    assert [(p.file, p.line) for p in problems] == [("rotations/platform.yaml", 9), ("routes.yaml", 12)]
    assert "does not exist" in problems[0].message and "'..'" in problems[1].message


def test_crlf_bom_and_tabs() -> None:
    source = (
        "\ufeff---\r\ntitle: CRLF\r\nalerts: [A]\r\n---\r\n## Investigation\r\n"
        "1. first\r\n   ```sh\r\n   ls\r\n   ```\r\n\t- tabbed sub\r\n10. ten\r\n"
    )
    runbook = parse_ok(source)
    assert (runbook.title, runbook.alerts) == ("CRLF", ("A",))
    assert [(s.number, s.line) for s in runbook.steps] == [(1, 6), (2, 11)]
    assert step_mrkdwn(runbook.steps[0]) == "first\n• tabbed sub\n```\nls\n```"


def test_core_stays_pure() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bot.core.runbooks, bot.core.runbook_links, bot.core.runbook_mrkdwn; "
        "print(sorted(m for m in ('slack_sdk', 'slack_bolt', 'httpx', 'sqlalchemy', 'sqlmodel', "
        "'aiohttp', 'requests') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "[]"
