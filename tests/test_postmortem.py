from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.catalog.templates import default_template
from bot.core.errors import BadInput, ConfigError
from bot.core.markdown import markdown_text
from bot.core.postmortem import (
    TEMPLATE_VARIABLES,
    AlertRecord,
    IncidentRecord,
    PageRecord,
    PostmortemFacts,
    TimelineRecord,
    build_facts,
    render_postmortem,
    step_label,
)

INJECT = "{{ 7*7 }}"
LOOP = "{% for x in range(10**9) %}x{% endfor %}"


def t(h: int, m: int) -> datetime:
    return datetime(2024, 5, 1, h, m, tzinfo=UTC)


def ev(
    at: datetime, actor: str, kind: str, text: str, data: dict[str, object] | None = None
) -> TimelineRecord:
    return TimelineRecord(at, actor, kind, text, data or {})


def step(number: int, done: bool, by: str) -> dict[str, object]:
    return {"slug": "api", "number": number, "done": done, "by": by}


def scripted(title: str = "API error rate high", note: str = "Rolled back deploy 1234") -> PostmortemFacts:
    """Alert 10:00, declared 10:01, paged primary 10:01, escalated 10:16, acked 10:18,
    resolved 10:40, closed 11:00."""
    incident = IncidentRecord(
        id=42,
        title=title,
        severity="critical",
        status="closed",
        created_at=t(10, 1),
        source="alertmanager",
        acknowledged_at=t(10, 18),
        acknowledged_by="slack:U2",
        resolved_at=t(10, 40),
        resolved_by="slack:U2",
        closed_at=t(11, 0),
        rotation="platform",
        lead="slack:U3",
        channel_name="inc-42-api-errors",
    )
    alerts = [
        AlertRecord(
            "HighApiErrorRate",
            "resolved",
            t(10, 0),
            {"alertname": "HighApiErrorRate", "service": "api"},
            {"summary": f"5% errors {INJECT}", "runbook_url": "https://runbooks.example/api"},
            t(10, 39),
            "https://prometheus.example/graph?g0",
        )
    ]
    timeline = [
        ev(t(10, 1), "alertmanager", "opened", "Opened from Alertmanager"),
        ev(t(10, 1), "bot", "escalation", "Paging alice (step 1)", {"step": "c0r0s0", "people": ["alice"]}),
        ev(t(10, 1), "bot", "paged", "Paged alice"),
        ev(t(10, 16), "bot", "escalation", "Paging bob (step 2)", {"step": "c0r0s1", "people": ["bob"]}),
        ev(
            t(10, 18),
            "slack:U2",
            "status",
            "triggered -> acknowledged",
            {"from": "triggered", "to": "acknowledged"},
        ),
        ev(t(10, 20), "slack:U2", "runbook_step", "Runbook api step 1 done: Check pods", step(1, True, "U2")),
        ev(t(10, 21), "slack:U3", "runbook_step", "Runbook api step 2 done: Roll back", step(2, True, "U3")),
        ev(
            t(10, 22),
            "slack:U3",
            "runbook_step",
            "Runbook api step 2 not done any more: Roll back",
            step(2, False, "U3"),
        ),
        ev(t(10, 23), "slack:U4", "runbook_step", "Runbook api step 3 done: Verify", step(3, True, "U4")),
        ev(t(10, 25), "slack:U3", "note", note),
        ev(t(10, 30), "slack:U3", "action", "Action item added", {"text": "Add a canary for deploys"}),
        ev(
            t(10, 40),
            "slack:U2",
            "status",
            "acknowledged -> resolved",
            {"from": "acknowledged", "to": "resolved"},
        ),
    ]
    pages = [
        PageRecord("alice", "c0r0s0", t(10, 1), "primary", "U1"),
        PageRecord("bob", "c0r0s1", t(10, 16), "secondary", "U2"),
    ]
    return build_facts(incident, alerts, timeline, pages, "America/Los_Angeles", "API errors")


def test_facts_times_and_durations() -> None:
    f = scripted()
    assert f.detected is not None and f.detected.at == t(10, 0)
    assert f.declared.at == t(10, 1)
    assert f.tta == timedelta(minutes=17) and f.tta_detected == timedelta(minutes=18)
    assert f.ttr == timedelta(minutes=39) and f.ttr_detected == timedelta(minutes=40)
    assert f.duration == timedelta(minutes=40)  # impact from the first alert to resolution
    assert f.closed is not None and f.closed.utc == "2024-05-01 11:00:00 UTC"
    assert f.declared.local == "2024-05-01 03:01:00 PDT"


def test_facts_people() -> None:
    f = scripted()
    assert [(p.person, p.step_label, p.at.at) for p in f.pages] == [
        ("alice", "step 1", t(10, 1)),
        ("bob", "step 2", t(10, 16)),
    ]
    assert f.acknowledged_by == "bob"  # slack:U2 is bob, known from his page
    # Slack users people.yaml does not know are "@U3", not the actor form "slack:U3" (issue 17,
    # item 10: no internal prefixes in text; changed on purpose).
    assert f.lead == "@U3"
    assert [p.name for p in f.participants] == ["alice", "bob", "@U3", "@U4"]
    assert not any(p.name in ("bot", "alertmanager") for p in f.participants)


def test_facts_runbook_last_state_wins() -> None:
    f = scripted()
    assert [(s.number, s.who, s.text) for s in f.runbook_steps] == [
        (1, "bob", "Check pods"),
        (3, "@U4", "Verify"),
    ]


def test_facts_lists() -> None:
    f = scripted()
    assert [(s.from_status, s.to_status, s.who) for s in f.status_history] == [
        ("triggered", "acknowledged", "bob"),
        ("acknowledged", "resolved", "bob"),
    ]
    assert [(e.step_label, e.people) for e in f.escalations] == [("step 1", ("alice",)), ("step 2", ("bob",))]
    assert [n.text for n in f.notes] == ["Rolled back deploy 1234"]
    assert [a.text for a in f.action_items] == ["Add a canary for deploys"]
    assert [(link.label, link.url) for link in f.alerts[0].links] == [
        ("source", "https://prometheus.example/graph?g0"),
        ("runbook_url", "https://runbooks.example/api"),
    ]
    assert len(f.timeline) == 12


def test_no_alerts_and_unresolved() -> None:
    incident = IncidentRecord(id=1, title="manual", severity="minor", status="triggered", created_at=t(9, 0))
    f = build_facts(incident, [], [], [], "UTC", None)
    assert f.detected is None and f.start == f.declared
    assert f.tta is None and f.ttr is None and f.duration is None
    text = render_postmortem(f, default_template())
    assert "| Time to acknowledge | — from declaration, — from detection |" in text
    assert "No alerts" in text and "nobody" in text


def test_unknown_timezone() -> None:
    incident = IncidentRecord(id=1, title="x", severity="minor", status="triggered", created_at=t(9, 0))
    with pytest.raises(BadInput, match="Mars/Olympus"):
        build_facts(incident, [], [], [], "Mars/Olympus", None)


def test_step_label() -> None:
    assert step_label("c0r0s0") == "step 1"
    assert step_label("c1r2s0") == "step 1, round 3"
    assert step_label("odd") == "odd"


def test_default_template_has_every_fact() -> None:
    text = render_postmortem(scripted(), default_template())
    assert text.startswith("# Incident Post-Mortem: 2024-05-01 - API error rate high\n")
    for expected in [
        "| Severity | critical |",
        "| Status | closed |",
        "| Detected | 2024-05-01 10:00:00 UTC |",
        "| Declared | 2024-05-01 10:01:00 UTC |",
        "| Acknowledged | 2024-05-01 10:18:00 UTC |",
        "| Resolved | 2024-05-01 10:40:00 UTC |",
        "| Closed | 2024-05-01 11:00:00 UTC |",
        "| Duration | 40m |",
        "| Time to acknowledge | 17m from declaration, 18m from detection |",
        "| Time to resolve | 39m from declaration, 40m from detection |",
        "alice (step 1, primary, 2024-05-01 10:01:00 UTC), bob (step 2, secondary, 2024-05-01 10:16:00 UTC)",
        "**Acknowledged by:** bob",
        "**Incident lead:** @U3",
        "**Participants:** alice, bob, @U3, @U4",
        "### HighApiErrorRate (resolved)",
        "`alertname=HighApiErrorRate`, `service=api`",
        "[runbook_url](https://runbooks.example/api)",
        "Runbook: **API errors**",
        "- Step 1: Check pods — done by bob at 2024-05-01 10:20:00 UTC",
        "- Step 3: Verify — done by @U4 at 2024-05-01 10:23:00 UTC",
        "- 2024-05-01 10:16:00 UTC: step 2 paged bob",
        "- 2024-05-01 10:18:00 UTC: triggered → acknowledged (bob)",
        "- 2024-05-01 10:25:00 UTC, @U3: Rolled back deploy 1234",
        "- [ ] Add a canary for deploys",
        "| Time (UTC) | Time (America/Los_Angeles) | Who | Event |",
        "| 2024-05-01 10:16:00 UTC | 2024-05-01 03:16:00 PDT | bot | Paging bob (step 2) |",
        "| 2024-05-01 10:40:00 UTC | 2024-05-01 03:40:00 PDT | bob | acknowledged -> resolved |",
    ]:
        assert expected in text, expected
    assert "Step 2" not in text  # undone after being done
    for section in ["## Summary", "## Impact", "## Timeline", "## Root Cause Analysis", "## Action Items",
                    "## Lessons Learned", "### What went well", "### What could be improved"]:  # fmt: skip
        assert section in text
    assert "- **Root Cause:** _To write" in text


def test_custom_template() -> None:
    text = render_postmortem(
        scripted(),
        "{{ title }}: TTA {{ tta | duration }}, TTR {{ facts.ttr | duration }}\n"
        "{% for p in pages %}{{ p.person }}@{{ p.at.local }}\n{% endfor %}",
    )
    assert text == (
        "API error rate high: TTA 17m, TTR 39m\nalice@2024-05-01 03:01:00 PDT\nbob@2024-05-01 03:16:00 PDT\n"
    )


def test_unknown_variable_names_the_line() -> None:
    template = "# {{ title }}\n\n{% if false %}{{ root_cause }}{% endif %}\n"
    with pytest.raises(ConfigError) as err:
        render_postmortem(scripted(), template, template_name="templates/pm.md.j2")
    assert str(err.value).startswith("templates/pm.md.j2:3: unknown variable 'root_cause'")
    assert err.value.problems[0].line == 3


def test_unknown_attribute_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"^template:2: .*no attribute 'titel'"):
        render_postmortem(scripted(), "ok\n{{ facts.titel }}\n")


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"^template:2: template syntax error"):
        render_postmortem(scripted(), "ok\n{% for x in %}\n")


@pytest.mark.parametrize("payload", [INJECT, LOOP, "{{ ''.__class__.__mro__ }}"])
def test_injection_in_data_stays_literal(payload: str) -> None:
    facts = scripted(title=f"Outage {payload}", note=f"note {payload}")
    text = render_postmortem(facts, default_template())
    # Verbatim once rendered: data is written as Markdown text (`7\*7`), never evaluated.
    assert f"# Incident Post-Mortem: 2024-05-01 - Outage {markdown_text(payload)}\n" in text
    assert f"@U3: note {markdown_text(payload)}" in text
    assert f"5% errors {markdown_text(INJECT)}" in text  # the alert annotation
    assert "49" not in text


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ title.__class__.__mro__[1].__subclasses__() }}",
        "{{ alerts[0].labels.clear() }}",  # immutable sandbox: templates cannot change the facts
        "{{ 'x' * 10**9 }}",
        "{{ 7 ** 1000000 }}",
    ],
)
def test_sandbox_blocks_tricks(template: str) -> None:
    with pytest.raises(ConfigError, match=r"^template:1: not allowed in a template"):
        render_postmortem(scripted(), template)


def test_range_bomb_in_template_is_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"^template:1: "):
        render_postmortem(scripted(), LOOP)


def test_template_variables_documented() -> None:
    import bot.core.postmortem_render as module

    doc = (Path(__file__).parent.parent / "docs" / "postmortem-template.md").read_text(encoding="utf-8")
    for name in TEMPLATE_VARIABLES:
        assert f"`{name}`" in doc, name
        assert name in (module.__doc__ or ""), name
