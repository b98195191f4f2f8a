"""Post-mortem drafts: an incident's recorded facts, rendered with a template, written to a file.

`write` is what `incidentbot postmortem` and the `postmortem` outbox operation both use; the close
flow calls `enqueue_postmortem` inside its own transaction, so the draft is delivered (written,
uploaded to the incident channel, linked from the announcement) exactly when the close commits.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from bot.catalog.templates import POSTMORTEM_TEMPLATE, default_template
from bot.core.errors import UnknownIncident
from bot.core.postmortem import (
    AlertRecord,
    IncidentRecord,
    PageRecord,
    TimelineRecord,
    build_facts,
)
from bot.core.postmortem_render import PostmortemFacts, render_postmortem
from bot.core.rotations import on_call_all
from bot.service.context import Context
from bot.service.incidents import lane
from bot.service.oncall_schedule import effective_rotation
from bot.service.people import people_of
from bot.store import outbox
from bot.store.db import reading
from bot.store.tables import Alert, Incident, Page, RunbookPost, TimelineEntry

CUSTOM_TEMPLATE_NAME = "POSTMORTEM_TEMPLATE"  # how errors in a custom template name it
_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


@dataclass(frozen=True)
class Draft:
    """A rendered post-mortem: what it says, the incident it is about, and where it was written
    (None until `save_draft` wrote it: a draft can be uploaded without a file on disk)."""

    text: str
    incident: Incident
    path: Path | None = None

    @property
    def file_name(self) -> str:
        return file_name(self.incident)


def _incident_record(inc: Incident) -> IncidentRecord:
    assert inc.id is not None
    return IncidentRecord(
        id=inc.id,
        title=inc.title,
        severity=inc.severity,
        status=inc.status,
        created_at=inc.created_at,
        source=inc.source,
        acknowledged_at=inc.acknowledged_at,
        acknowledged_by=inc.acknowledged_by,
        first_acknowledged_at=inc.first_acknowledged_at,
        resolved_at=inc.resolved_at,
        resolved_by=inc.resolved_by,
        closed_at=inc.closed_at,
        rotation=inc.rotation,
        lead=inc.lead,
        channel_name=inc.channel_name,
        channel_id=inc.channel_id,
        group_labels=dict(inc.group_labels),
        common_annotations=dict(inc.common_annotations),
        external_url=inc.external_url,
    )


def timezone_of(ctx: Context, incident: Incident) -> str:
    """The zone of the incident's rotation (so local times read as the responders lived them)."""
    if ctx.rotations is not None and incident.rotation in ctx.rotations.rotations:
        return ctx.rotations.rotations[incident.rotation].timezone
    return "UTC"


def _runbook_title(ctx: Context, session: Session, incident_id: int) -> str | None:
    slugs = session.exec(
        select(RunbookPost.slug)
        .where(col(RunbookPost.incident_id) == incident_id)
        .order_by(col(RunbookPost.id))
    )
    titles = []
    for slug in slugs:
        if slug.startswith("missing:"):  # a "no runbook found" marker, not a runbook
            continue
        runbook = ctx.runbooks.by_slug(slug)
        titles.append(runbook.title if runbook else slug)
    return ", ".join(titles) or None


def _load(ctx: Context, session: Session, incident_id: int) -> tuple[Incident, PostmortemFacts]:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise UnknownIncident(f"There is no incident #{incident_id}.")
    held = [incident_id]  # a storm's alerts belong to the groups folded into it
    if incident.source == "storm":
        held += session.exec(select(Incident.id).where(col(Incident.parent_id) == incident_id)).all()
    alerts = session.exec(select(Alert).where(col(Alert.incident_id).in_(held)).order_by(col(Alert.id)))
    timeline = session.exec(
        select(TimelineEntry)
        .where(col(TimelineEntry.incident_id) == incident_id)
        .order_by(col(TimelineEntry.id))
    )
    pages = session.exec(select(Page).where(col(Page.incident_id) == incident_id).order_by(col(Page.id)))
    facts = build_facts(
        _incident_record(incident),
        [
            AlertRecord(
                name=a.name,
                status=a.status,
                starts_at=a.starts_at,
                labels=a.labels,
                annotations=a.annotations,
                ends_at=a.ends_at,
                generator_url=a.generator_url,
            )
            for a in alerts
        ],
        [
            *_on_call_then(ctx, session, incident),
            *(
                TimelineRecord(at=e.at, actor=e.actor, kind=e.kind, text=e.text, data=e.data)
                for e in timeline
            ),
        ],
        [
            PageRecord(
                person=p.person,
                step_key=p.step_key,
                paged_at=p.paged_at,
                layer=p.layer,
                slack_user=p.slack_user,
            )
            for p in pages
        ],
        timezone_of(ctx, incident),
        _runbook_title(ctx, session, incident_id),
        people_of(ctx),
    )
    return incident, facts


def _on_call_then(ctx: Context, session: Session, incident: Incident) -> list[TimelineRecord]:
    """Who was on call when the incident opened, per layer, as the schedule then stood (overrides
    from Slack included, also ones removed later): a line at the top of the draft's timeline."""
    if ctx.rotations is None or incident.rotation not in ctx.rotations.rotations:
        return []
    at = incident.created_at
    rotation = effective_rotation(ctx, session, incident.rotation, at, at + timedelta(microseconds=1))
    if rotation.source != "file" or not rotation.layers:
        return []
    shifts = on_call_all(rotation, at)
    people = people_of(ctx)  # by display name, like the rest of the draft
    text = ", ".join(
        f"{layer}: {people.name(s.person)}" + (" (override)" if s.override else "")
        for layer, s in shifts.items()
    )
    data = {"layers": {layer: s.person for layer, s in shifts.items()}}
    return [
        TimelineRecord(
            at=at, actor="bot", kind="on_call", text=f"On call when the incident opened: {text}", data=data
        )
    ]


def facts_for(ctx: Context, incident_id: int) -> PostmortemFacts:
    """Everything the bot recorded about the incident; UnknownIncident if there is no such one."""
    with reading(ctx.engine) as session:
        return _load(ctx, session, incident_id)[1]


def _render(facts: PostmortemFacts, template_text: str | None) -> str:
    if template_text is None:
        return render_postmortem(facts, default_template(), template_name=POSTMORTEM_TEMPLATE)
    return render_postmortem(facts, template_text, template_name=CUSTOM_TEMPLATE_NAME)


def render(ctx: Context, incident_id: int, template_text: str | None) -> str:
    """Markdown for the incident; `template_text` None means the default template.

    ConfigError (with the template line) for a broken template; UnknownIncident for a bad id.
    """
    return _render(facts_for(ctx, incident_id), template_text)


def file_name(incident: Incident) -> str:
    """`<yyyy-mm-dd>-<channel-name>.md`, dated by the incident's declaration (UTC)."""
    created = incident.created_at
    day = (created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)).date()
    # Channel names are already lowercase letters, digits, - and _; never let one leave the directory.
    safe = _UNSAFE.sub("-", incident.channel_name.lower()).strip(".-") or f"incident-{incident.id}"
    return f"{day.isoformat()}-{safe}.md"


def render_draft(ctx: Context, incident_id: int, template_text: str | None) -> Draft:
    """The draft's text, not written anywhere yet (ConfigError for a broken template)."""
    with reading(ctx.engine) as session:
        incident, facts = _load(ctx, session, incident_id)
    return Draft(_render(facts, template_text), incident)


def save_draft(draft: Draft, directory: Path) -> Draft:
    """Write `directory/file_name(incident)` atomically (a rerun replaces it whole). OSError when the
    directory cannot take it (permission denied, read-only file system, disk full)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / draft.file_name
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(draft.text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)  # readers see the old draft or the new one, never half of one
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return replace(draft, path=path)


def write_draft(ctx: Context, incident_id: int, directory: Path, template_text: str | None) -> Draft:
    """Render (before touching the disk: a bad template writes nothing), then save."""
    return save_draft(render_draft(ctx, incident_id, template_text), directory)


def write(ctx: Context, incident_id: int, directory: Path, template_text: str | None) -> Path:
    """Write the draft and return its path (see `write_draft`)."""
    path = write_draft(ctx, incident_id, directory, template_text).path
    assert path is not None
    return path


def enqueue_postmortem(session: Session, incident: Incident, now: datetime) -> None:
    """In the caller's transaction (closing the incident): draft, upload and link the post-mortem."""
    outbox.enqueue(
        session, lane(incident), "postmortem", now, incident_id=incident.id, priority=outbox.COSMETIC
    )
