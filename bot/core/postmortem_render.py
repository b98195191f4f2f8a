"""Post-mortems: what a template sees (`PostmortemFacts`), and rendering it to Markdown.

`bot.core.postmortem.build_facts` builds the facts; `render_postmortem` renders them with a
Jinja2 `ImmutableSandboxedEnvironment`. Text written by alerts or people (titles, annotations,
notes) is only ever passed as a *value*, never spliced into template source, so `{{ 7*7 }}` in a
note comes out as `{{ 7*7 }}`. Any template problem (syntax, unknown variable, sandbox violation)
becomes a `ConfigError` naming the template line.

Variables available to a template (every field of `PostmortemFacts`, plus `facts` itself):
  incident_id, title, severity, status, source, channel, external_url, rotation, timezone,
  detected, declared, acknowledged, resolved, closed   Moment or None: .utc .local .date .at .local_at
  start        earliest of detected/declared (Moment)
  duration, tta, ttr, tta_detected, ttr_detected       timedelta or None
  status_history   StatusChange: at, from_status, to_status, event, actor, who
  pages            PageFact: person (display name), layer, step, step_label, slack_user, at, key, their_time
  acknowledged_by, resolved_by, lead                   display names or None
  participants     Participant: name, slack_user, paged
  alerts           AlertFact: name, status, labels, annotations, starts_at, ends_at, links (Link: label, url)
  runbook_title    str or None; runbook_steps: RunbookStepFact (slug, number, text, who, at), done only
  escalations      EscalationFact: at, step, step_label, people, late, text
  notes            Note: at, who, text;  action_items: ActionItem: at, who, text
                   (people are named by display name; Slack markup in text becomes Markdown)
  timeline         TimelineFact: at, actor, who, kind, text
Filters: duration (timedelta -> '17m', None -> '—'), utc / local (Moment -> text, None -> '—'),
cell (text for a Markdown table cell), code (an inline code span), link (`url | link(label)`: a
Markdown link for http(s)/mailto URLs, the label alone otherwise). See docs/postmortem-template.md.

Every `{{ ... }}` is written as Markdown *text* (`bot.core.markdown.markdown_text`, the template
environment's `finalize`): what alerts, notes, PagerDuty and people wrote cannot become a heading, raw
HTML or a link. The filters above return Markdown the bot made safe, which is not escaped again.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.core.durations import format_duration
from bot.core.errors import ConfigError, ConfigProblem
from bot.core.markdown import Markdown, markdown_code, markdown_link, markdown_text

DASH = "—"


# ---- facts: the values a template sees -------------------------------------------------------------
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
    person: str  # display name
    layer: str | None
    step: str
    step_label: str
    slack_user: str | None
    at: Moment
    key: str = ""  # the people.yaml key (or how the page named them)
    their_time: str | None = None  # "03:12 CET": the time in the person's own zone, when known


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


# ---- rendering -------------------------------------------------------------------------------------
_MAX_SIZE = 1_000_000  # items/characters one `*` may build; a post-mortem is far smaller
_MAX_POWER_BITS = 4096


class _Sandbox(ImmutableSandboxedEnvironment):
    """The stock sandbox (no dunder tricks, no mutation, `range` capped) plus caps on `*` and `**`,
    so a template cannot exhaust memory with `'x' * 10**12` either."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        big = (
            isinstance(left, int)
            and isinstance(right, int)
            and right * abs(left).bit_length() > _MAX_POWER_BITS
        )
        if op == "**" and big:
            raise SecurityError("'**' would build a number too large for a post-mortem")
        if op == "*":
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > _MAX_SIZE:
                raise SecurityError("'*' would build a value too large for a post-mortem")
        return super().call_binop(context, op, left, right)


def _duration(td: timedelta | None) -> str:
    return DASH if td is None else format_duration(td)


def _as_markdown(value: Any) -> Any:
    """Jinja's `finalize`: every value a template prints is Markdown text, unless a filter made it."""
    if isinstance(value, Markdown | Undefined):  # Undefined: Jinja's own handling (StrictUndefined)
        return value
    return markdown_text(value)


_ENV = _Sandbox(
    undefined=StrictUndefined,  # a typo in a template is an error, not a silently empty section
    autoescape=False,  # Markdown file, not HTML: escaping is `finalize`'s
    finalize=_as_markdown,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters.update(
    duration=_duration,
    utc=lambda m: DASH if m is None else m.utc,
    local=lambda m: DASH if m is None else m.local,
    cell=markdown_text,  # one line, `|` escaped: safe inside a table cell
    code=markdown_code,
    link=markdown_link,
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
