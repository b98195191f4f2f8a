"""Post-mortems: the facts of one incident, rendered to Markdown through a sandboxed template.

`build_facts` turns plain records (mapped 1:1 from the store's rows) into `PostmortemFacts`;
`render_postmortem` renders them with a Jinja2 `ImmutableSandboxedEnvironment`. Text written by
alerts or people (titles, annotations, notes) is only ever passed as a *value*, never spliced into
template source, so `{{ 7*7 }}` in a note comes out as `{{ 7*7 }}`. Any template problem (syntax,
unknown variable, sandbox violation) becomes a `ConfigError` naming the template line.

Variables available to a template (every field of `PostmortemFacts`, plus `facts` itself):
  incident_id, title, severity, status, source, channel, external_url, rotation, timezone,
  detected, declared, acknowledged, resolved, closed   Moment or None: .utc .local .date .at .local_at
  start        earliest of detected/declared (Moment)
  duration, tta, ttr, tta_detected, ttr_detected       timedelta or None
  status_history   StatusChange: at, from_status, to_status, event, actor, who
  pages            PageFact: person, layer, step, step_label, slack_user, at
  acknowledged_by, resolved_by, lead                   display names or None
  participants     Participant: name, slack_user, paged
  alerts           AlertFact: name, status, labels, annotations, starts_at, ends_at, links (Link: label, url)
  runbook_title    str or None; runbook_steps: RunbookStepFact (slug, number, text, who, at), done only
  escalations      EscalationFact: at, step, step_label, people, late, text
  notes            Note: at, who, text;  action_items: ActionItem: at, who, text
  timeline         TimelineFact: at, actor, who, kind, text
Filters: duration (timedelta -> '17m', None -> '—'), utc / local (Moment -> text, None -> '—'),
cell (make text safe inside a Markdown table cell). See docs/postmortem-template.md.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.core.durations import format_duration
from bot.core.errors import BadInput, ConfigError, ConfigProblem

DASH = "—"


# ---- inputs: one per store row, so the service maps rows field by field -------------------------
@dataclass(frozen=True)
class IncidentRecord:
    id: int
    title: str
    severity: str
    status: str
    created_at: datetime
    source: str = ""
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    closed_at: datetime | None = None
    rotation: str | None = None
    lead: str | None = None
    channel_name: str = ""
    channel_id: str | None = None
    group_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""


@dataclass(frozen=True)
class AlertRecord:
    name: str
    status: str
    starts_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ends_at: datetime | None = None
    generator_url: str = ""


@dataclass(frozen=True)
class TimelineRecord:
    at: datetime
    actor: str  # "slack:U123", "alertmanager", "bot"
    kind: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PageRecord:
    person: str
    step_key: str  # "c0r0s1": paging cycle, round, step
    paged_at: datetime
    layer: str | None = None
    slack_user: str | None = None


# ---- facts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Moment:
    """One instant, ready to print in UTC and in the rotation's zone."""

    at: datetime  # aware, UTC
    local_at: datetime
    utc: str  # "2024-05-01 10:00:00 UTC"
    local: str  # "2024-05-01 03:00:00 PDT"
    date: str  # UTC date, "2024-05-01"

    def __str__(self) -> str:
        return self.utc


@dataclass(frozen=True)
class StatusChange:
    at: Moment
    from_status: str
    to_status: str
    event: str
    actor: str
    who: str


@dataclass(frozen=True)
class PageFact:
    person: str
    layer: str | None
    step: str
    step_label: str
    slack_user: str | None
    at: Moment


@dataclass(frozen=True)
class Participant:
    name: str
    slack_user: str | None
    paged: bool


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class AlertFact:
    name: str
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: Moment
    ends_at: Moment | None
    links: tuple[Link, ...]


@dataclass(frozen=True)
class RunbookStepFact:
    slug: str
    number: int
    text: str
    who: str
    at: Moment


@dataclass(frozen=True)
class EscalationFact:
    at: Moment
    step: str
    step_label: str
    people: tuple[str, ...]
    late: timedelta
    text: str


@dataclass(frozen=True)
class Note:
    at: Moment
    who: str
    text: str


@dataclass(frozen=True)
class ActionItem:
    at: Moment
    who: str
    text: str


@dataclass(frozen=True)
class TimelineFact:
    at: Moment
    actor: str
    who: str
    kind: str
    text: str


@dataclass(frozen=True)
class PostmortemFacts:
    incident_id: int
    title: str
    severity: str
    status: str
    source: str
    channel: str
    external_url: str
    rotation: str | None
    timezone: str
    detected: Moment | None  # first alert's starts_at
    declared: Moment  # the incident's created_at
    acknowledged: Moment | None
    resolved: Moment | None
    closed: Moment | None
    start: Moment  # earliest of detected/declared: impact began no later than this
    duration: timedelta | None  # start -> resolved
    tta: timedelta | None  # declared -> acknowledged
    ttr: timedelta | None  # declared -> resolved
    tta_detected: timedelta | None  # detected -> acknowledged
    ttr_detected: timedelta | None  # detected -> resolved
    status_history: tuple[StatusChange, ...]
    pages: tuple[PageFact, ...]
    acknowledged_by: str | None
    resolved_by: str | None
    lead: str | None
    participants: tuple[Participant, ...]
    alerts: tuple[AlertFact, ...]
    runbook_title: str | None
    runbook_steps: tuple[RunbookStepFact, ...]  # steps whose last state is done, by (slug, number)
    escalations: tuple[EscalationFact, ...]
    notes: tuple[Note, ...]
    action_items: tuple[ActionItem, ...]
    timeline: tuple[TimelineFact, ...]


_STEP_KEY = re.compile(r"c(\d+)r(\d+)s(\d+)")


def step_position(key: str) -> tuple[int, int, int] | None:
    """(cycle, round, step), 0-based, of an escalation step key like 'c0r1s2'; None if not one."""
    m = _STEP_KEY.fullmatch(key)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def step_label(key: str) -> str:
    pos = step_position(key)
    if pos is None:
        return key
    return f"step {pos[2] + 1}" + (f", round {pos[1] + 1}" if pos[1] else "")


def build_facts(
    incident: IncidentRecord,
    alerts: Sequence[AlertRecord],
    timeline: Sequence[TimelineRecord],
    pages: Sequence[PageRecord],
    timezone: str,
    runbook_title: str | None,
) -> PostmortemFacts:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise BadInput(f"unknown time zone {timezone!r}") from e

    def moment(at: datetime) -> Moment:
        at = _aware(at)
        local = at.astimezone(zone)
        return Moment(
            at, local, f"{at:%Y-%m-%d %H:%M:%S} UTC", f"{local:%Y-%m-%d %H:%M:%S %Z}", f"{at:%Y-%m-%d}"
        )

    def opt(at: datetime | None) -> Moment | None:
        return None if at is None else moment(at)

    # Slack users we can name: paged people carry their Slack id.
    names = {p.slack_user: p.person for p in pages if p.slack_user}

    def who(actor: str | None) -> str | None:
        if actor and actor.startswith("slack:"):
            return names.get(actor.removeprefix("slack:"), actor)
        return actor

    entries = sorted(timeline, key=lambda e: _aware(e.at))  # stable: equal times keep row order
    sorted_alerts = sorted(alerts, key=lambda a: (_aware(a.starts_at), a.name))
    declared = moment(incident.created_at)
    detected = moment(sorted_alerts[0].starts_at) if sorted_alerts else None
    start = detected if detected is not None and detected.at < declared.at else declared
    acknowledged, resolved = opt(incident.acknowledged_at), opt(incident.resolved_at)

    def since(a: Moment | None, b: Moment | None) -> timedelta | None:
        return None if a is None or b is None else b.at - a.at

    done: dict[tuple[str, int], RunbookStepFact | None] = {}
    for e in entries:
        if e.kind == "runbook_step" and "number" in e.data:
            key = (str(e.data.get("slug", "")), int(e.data["number"]))
            by = e.data.get("by")
            if e.data.get("done"):
                text = e.text.split(": ", 1)[1] if ": " in e.text else ""
                done[key] = RunbookStepFact(
                    key[0], key[1], text, who(f"slack:{by}" if by else e.actor) or "", moment(e.at)
                )
            else:
                done[key] = None  # undone later: the last state wins

    return PostmortemFacts(
        incident_id=incident.id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        source=incident.source,
        channel=incident.channel_name,
        external_url=incident.external_url,
        rotation=incident.rotation,
        timezone=timezone,
        detected=detected,
        declared=declared,
        acknowledged=acknowledged,
        resolved=resolved,
        closed=opt(incident.closed_at),
        start=start,
        duration=since(start, resolved),
        tta=since(declared, acknowledged),
        ttr=since(declared, resolved),
        tta_detected=since(detected, acknowledged),
        ttr_detected=since(detected, resolved),
        status_history=tuple(
            StatusChange(
                moment(e.at),
                str(e.data.get("from", "")),
                str(e.data.get("to", "")),
                str(e.data.get("event", "")),
                e.actor,
                who(e.actor) or "",
            )
            for e in entries
            if e.kind == "status"
        ),
        pages=tuple(
            PageFact(p.person, p.layer, p.step_key, step_label(p.step_key), p.slack_user, moment(p.paged_at))
            for p in sorted(pages, key=lambda p: _aware(p.paged_at))
        ),
        acknowledged_by=who(incident.acknowledged_by),
        resolved_by=who(incident.resolved_by),
        lead=who(incident.lead),
        participants=_participants(incident, entries, pages),
        alerts=tuple(_alert(a, moment, opt) for a in sorted_alerts),
        runbook_title=runbook_title,
        runbook_steps=tuple(step for _, step in sorted(done.items()) if step is not None),
        escalations=tuple(
            EscalationFact(
                moment(e.at),
                str(e.data.get("step", "")),
                step_label(str(e.data.get("step", ""))),
                tuple(str(p) for p in e.data.get("people", ())),
                timedelta(seconds=float(e.data.get("late_seconds") or 0)),
                e.text,
            )
            for e in entries
            if e.kind == "escalation"
        ),
        notes=tuple(Note(moment(e.at), who(e.actor) or "", e.text) for e in entries if e.kind == "note"),
        action_items=tuple(
            ActionItem(moment(e.at), who(e.actor) or "", str(e.data.get("text") or e.text))
            for e in entries
            if e.kind == "action"
        ),
        timeline=tuple(
            TimelineFact(moment(e.at), e.actor, who(e.actor) or "", e.kind, e.text) for e in entries
        ),
    )


def _aware(at: datetime) -> datetime:
    # The store hands back aware UTC; a naive value can only mean UTC here.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _participants(
    incident: IncidentRecord, entries: Sequence[TimelineRecord], pages: Sequence[PageRecord]
) -> tuple[Participant, ...]:
    """People only (paged people and Slack actors), once each, in order of first appearance."""
    found: dict[str, Participant] = {}
    for p in sorted(pages, key=lambda p: _aware(p.paged_at)):
        found.setdefault(p.slack_user or f"person:{p.person}", Participant(p.person, p.slack_user, True))
    actors = [e.actor for e in entries] + [incident.acknowledged_by, incident.resolved_by, incident.lead]
    for actor in actors:
        if actor and actor.startswith("slack:"):
            user = actor.removeprefix("slack:")
            found.setdefault(user, Participant(actor, user, False))
    return tuple(found.values())


def _alert(a: AlertRecord, moment: Any, opt: Any) -> AlertFact:
    links = [Link("source", a.generator_url)] if a.generator_url else []
    links += [Link(k, v) for k, v in sorted(a.annotations.items()) if _is_url(v)]
    return AlertFact(
        a.name,
        a.status,
        dict(a.labels),
        dict(a.annotations),
        moment(a.starts_at),
        opt(a.ends_at),
        tuple(links),
    )


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://")) and not any(c.isspace() for c in value)


# ---- rendering -------------------------------------------------------------------------------------
_MAX_SIZE = 1_000_000  # items/characters one `*` may build; a post-mortem is far smaller
_MAX_POWER_BITS = 4096


class _Sandbox(ImmutableSandboxedEnvironment):
    """The stock sandbox (no dunder tricks, no mutation, `range` capped) plus caps on `*` and `**`,
    so a template cannot exhaust memory with `'x' * 10**12` either."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        big = isinstance(left, int) and isinstance(right, int) and right * abs(left).bit_length() > _MAX_POWER_BITS
        if op == "**" and big:
            raise SecurityError("'**' would build a number too large for a post-mortem")
        if op == "*":
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > _MAX_SIZE:
                raise SecurityError("'*' would build a value too large for a post-mortem")
        return super().call_binop(context, op, left, right)


def _duration(td: timedelta | None) -> str:
    return DASH if td is None else format_duration(td)


def _cell(value: Any) -> str:
    # A `|` or a newline would end a Markdown table cell early; everything else stays as written.
    return " ".join(str(value).split("\n")).replace("|", "\\|")


_ENV = _Sandbox(
    undefined=StrictUndefined,  # a typo in a template is an error, not a silently empty section
    autoescape=False,  # Markdown file, not HTML
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters.update(
    duration=_duration,
    utc=lambda m: DASH if m is None else m.utc,
    local=lambda m: DASH if m is None else m.local,
    cell=_cell,
)
_TEMPLATE_FILE = "<template>"  # the filename Jinja gives frames of a template built from a string
TEMPLATE_VARIABLES = ("facts", *(f.name for f in fields(PostmortemFacts)))


def render_postmortem(facts: PostmortemFacts, template_text: str, *, template_name: str = "template") -> str:
    """Markdown for `facts`; raise ConfigError (with the template line) for any template problem.

    The default template's text comes from `bot.catalog.templates.default_template()` (reading a
    file is not the core's business).
    """

    def problem(line: int | None, message: str) -> ConfigError:
        return ConfigError(ConfigProblem(template_name, line or 0, message))

    try:
        ast = _ENV.parse(template_text)
    except TemplateSyntaxError as e:
        raise problem(e.lineno, f"template syntax error: {e.message}") from e
    # Unknown names are found before rendering, so a typo in a branch not taken is caught too.
    unknown = meta.find_undeclared_variables(ast) - set(TEMPLATE_VARIABLES) - set(_ENV.globals)
    if unknown:
        name = sorted(unknown)[0]
        line = next((n.lineno for n in ast.find_all(nodes.Name) if n.name == name), 0)
        raise problem(line, f"unknown variable {name!r}; available: {', '.join(TEMPLATE_VARIABLES)}")
    context = {f.name: getattr(facts, f.name) for f in fields(facts)} | {"facts": facts}
    try:
        return _ENV.from_string(template_text).render(context)
    except SecurityError as e:
        raise problem(_template_line(e), f"not allowed in a template: {e}") from e
    except TemplateError as e:
        raise problem(_template_line(e), f"template error: {e}") from e
    except Exception as e:  # the sandbox docs warn any exception may escape rendering
        raise problem(_template_line(e), f"template error: {type(e).__name__}: {e}") from e


def _template_line(e: BaseException) -> int:
    """The template line being rendered when `e` was raised (Jinja rewrites tracebacks to show it)."""
    lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == _TEMPLATE_FILE]
    return lines[-1] if lines and lines[-1] else 0
