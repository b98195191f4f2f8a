"""Post-mortem drafts from the store: facts, the written file, delivery to the fake Slack, reports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session, col, select

from bot.catalog.rotations import load_rotations
from bot.catalog.runbooks import load_runbooks
from bot.core.errors import ConfigError, UnknownIncident
from bot.core.markdown import markdown_text
from bot.core.reports import report
from bot.service import postmortem
from bot.service.context import Context
from bot.service.reports import incidents_since
from bot.slack.api import SlackWebAPI
from bot.slack.delivery import SlackDelivery
from bot.slack.postmortem_delivery import PostmortemDelivery
from bot.store import outbox
from bot.store.db import make_engine, transaction, upgrade
from bot.store.tables import Alert, Incident, Outbox, Page, RunbookPost, TimelineEntry
from bot.worker import Worker
from tests.fakeslack import BOT_USER_ID, FakeSlackServer

ROOT = Path(__file__).parent.parent
T0 = datetime(2026, 11, 23, 23, 50, tzinfo=UTC)  # 00:50 next day in Paris: local dates differ
NOW = T0 + timedelta(hours=2)
CHANNEL = "inc-20261123-api-errors"
NOTE = "Rolled back deploy 1234 {{ 7*7 }}"  # template syntax in data must come out verbatim


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    # The fixture rotation, in a zone other than UTC so local times show.
    rotations_dir = tmp_path / "rotations"
    shutil.copytree(ROOT / "tests" / "fixtures" / "rotations", rotations_dir)
    platform = rotations_dir / "platform.yaml"
    platform.write_text(platform.read_text().replace("timezone: UTC", "timezone: Europe/Paris"))
    catalog, problems = load_rotations(rotations_dir)
    assert not problems and catalog is not None
    runbooks, _ = load_runbooks(ROOT / "runbooks")
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    upgrade(engine)
    yield Context(
        engine=engine,
        clock=lambda: NOW,
        rotations=catalog,
        runbooks=runbooks,
        postmortems_dir=tmp_path / "postmortems",
    )
    engine.dispose()


def add_incident(ctx: Context, *, channel: str = CHANNEL, created: datetime = T0, **fields: object) -> int:
    """A closed incident with two alerts, every kind of timeline row, two pages and two runbook posts."""
    with transaction(ctx.engine) as s:
        values: dict[str, object] = dict(
            source="alertmanager",
            title="API error rate high",
            severity="critical",
            status="closed",
            channel_name=channel,
            created_at=created,
            acknowledged_at=created + timedelta(minutes=18),
            acknowledged_by="slack:USARAH",
            resolved_at=created + timedelta(minutes=40),
            resolved_by="slack:UALEX",
            closed_at=created + timedelta(minutes=60),
            rotation="platform",
        )
        values.update(fields)
        inc = Incident(**values)  # type: ignore[arg-type]
        s.add(inc)
        s.flush()
        assert inc.id is not None
        i = inc.id
        s.add(
            Alert(
                incident_id=i,
                fingerprint="a1",
                name="HighApiErrorRate",
                status="resolved",
                labels={"alertname": "HighApiErrorRate", "service": "api"},
                annotations={"summary": "5xx above 5%", "dashboard": "https://grafana.example/d/api"},
                starts_at=created - timedelta(minutes=1),
                ends_at=created + timedelta(minutes=39),
                generator_url="https://prometheus.example/graph?g0=1",
            )
        )
        s.add(Alert(incident_id=i, fingerprint="a2", name="HighLatency", status="firing", starts_at=created))
        s.add(
            Page(
                incident_id=i,
                person="alex",
                layer="primary",
                step_key="c0r0s0",
                slack_user="UALEX",
                paged_at=created,
            )
        )
        s.add(
            Page(
                incident_id=i,
                person="sarah",
                layer="secondary",
                step_key="c0r0s1",
                slack_user="USARAH",
                paged_at=created + timedelta(minutes=15),
            )
        )
        s.add(RunbookPost(incident_id=i, slug="high-error-rate"))
        s.add(RunbookPost(incident_id=i, slug="missing:highlatency"))
        rows = [
            (
                0,
                "bot",
                "escalation",
                "Paging alex (step 1: first page)",
                {"step": "c0r0s0", "people": ["alex"], "late_seconds": 0},
            ),
            (
                15,
                "bot",
                "escalation",
                "Paging sarah (step 2: not acknowledged)",
                {"step": "c0r0s1", "people": ["sarah"], "late_seconds": 0},
            ),
            (
                18,
                "slack:USARAH",
                "status",
                "triggered -> acknowledged",
                {"from": "triggered", "to": "acknowledged", "event": "acknowledge"},
            ),
            (
                20,
                "slack:USARAH",
                "runbook_step",
                "Runbook high-error-rate step 1 done: Check the dashboard",
                {"slug": "high-error-rate", "number": 1, "done": True, "by": "USARAH"},
            ),
            (
                22,
                "slack:USARAH",
                "runbook_step",
                "Runbook high-error-rate step 2 done: Roll back",
                {"slug": "high-error-rate", "number": 2, "done": True, "by": "USARAH"},
            ),
            (
                23,
                "slack:USARAH",
                "runbook_step",
                "Runbook high-error-rate step 2 undone: Roll back",
                {"slug": "high-error-rate", "number": 2, "done": False, "by": "USARAH"},
            ),
            (25, "slack:UALEX", "note", NOTE, {}),
            (
                30,
                "slack:UBOB",
                "action",
                "Action: alert on deploy error budget",
                {"text": "Alert on deploy error budget"},
            ),
            (
                40,
                "slack:UALEX",
                "status",
                "acknowledged -> resolved",
                {"from": "acknowledged", "to": "resolved", "event": "resolve"},
            ),
        ]
        for minutes, actor, kind, text, data in rows:
            s.add(
                TimelineEntry(
                    incident_id=i,
                    at=created + timedelta(minutes=minutes),
                    actor=actor,
                    kind=kind,
                    text=text,
                    data=data,
                )
            )
    return i


# ---- facts and the written file ------------------------------------------------------------------
def test_facts_map_every_row(ctx: Context) -> None:
    facts = postmortem.facts_for(ctx, add_incident(ctx))
    assert facts.timezone == "Europe/Paris"
    assert facts.detected is not None and facts.detected.at == at(-1)
    assert facts.tta == timedelta(minutes=18) and facts.ttr == timedelta(minutes=40)
    assert [a.name for a in facts.alerts] == ["HighApiErrorRate", "HighLatency"]
    assert [p.person for p in facts.pages] == ["alex", "sarah"]
    assert facts.runbook_title == "High API error rate"  # "missing:" posts are not runbooks
    assert [(s.number, s.who) for s in facts.runbook_steps] == [(1, "sarah")]  # step 2 was undone
    assert [e.people for e in facts.escalations] == [("alex",), ("sarah",)]
    # Typed in Slack: the note is already Markdown text (its Slack markup made Markdown, the rest escaped).
    assert [(n.who, n.text) for n in facts.notes] == [("alex", markdown_text(NOTE))]
    assert [a.text for a in facts.action_items] == ["Alert on deploy error budget"]
    assert [c.to_status for c in facts.status_history] == ["acknowledged", "resolved"]
    assert facts.acknowledged_by == "sarah" and facts.resolved_by == "alex"


def test_write_names_the_file_and_fills_in_the_facts(ctx: Context, tmp_path: Path) -> None:
    incident_id = add_incident(ctx)
    out = tmp_path / "deep" / "drafts"
    path = postmortem.write(ctx, incident_id, out, None)
    assert path == out / f"2026-11-23-{CHANNEL}.md"  # the UTC date, though Paris was already on the 24th
    text = path.read_text(encoding="utf-8")
    assert "# Incident Post-Mortem: 2026-11-23 - API error rate high" in text
    # Verbatim: data is never evaluated as template (and is written as Markdown text: `7\*7`).
    assert markdown_text(NOTE) in text
    assert "Runbook: **High API error rate**" in text
    assert "- [ ] Alert on deploy error budget" in text
    assert "2026-11-24 00:50:00 CET" in text  # declared, in the rotation's zone
    assert "step 2 paged sarah" in text
    assert [p.name for p in out.iterdir()] == [path.name]  # no temp file left behind

    again = postmortem.write(ctx, incident_id, out, "# {{ title }} ({{ severity }})\n")
    assert again == path and path.read_text() == "# API error rate high (critical)\n"


def test_render_default_and_custom(ctx: Context) -> None:
    incident_id = add_incident(ctx)
    assert postmortem.render(ctx, incident_id, None).startswith("# Incident Post-Mortem")
    assert postmortem.render(ctx, incident_id, "{{ notes[0].who }}") == "alex"


def test_bad_template_writes_nothing(ctx: Context, tmp_path: Path) -> None:
    incident_id = add_incident(ctx)
    with pytest.raises(ConfigError, match=r"^POSTMORTEM_TEMPLATE:2: unknown variable 'root_cause'"):
        postmortem.write(ctx, incident_id, tmp_path / "out", "# {{ title }}\n{{ root_cause }}\n")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_incident(ctx: Context) -> None:
    with pytest.raises(UnknownIncident):
        postmortem.facts_for(ctx, 999)


def test_without_rotation_times_are_utc(ctx: Context) -> None:
    incident_id = add_incident(ctx, rotation=None)
    assert postmortem.facts_for(ctx, incident_id).timezone == "UTC"


def test_file_name_stays_in_the_directory() -> None:
    incident = Incident(
        id=7,
        source="manual",
        title="x",
        severity="minor",
        status="closed",
        channel_name="../../etc/passwd",
        created_at=datetime(2026, 1, 2, 23, 30, tzinfo=UTC),
    )
    assert postmortem.file_name(incident) == "2026-01-02-etc-passwd.md"


def test_enqueue_postmortem_is_cosmetic_on_the_incident_lane(ctx: Context) -> None:
    incident_id = add_incident(ctx)
    with transaction(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        assert incident is not None
        postmortem.enqueue_postmortem(s, incident, NOW)
    with Session(ctx.engine) as s:
        row = s.exec(select(Outbox)).one()
    assert (row.op, row.lane, row.priority, row.incident_id) == (
        "postmortem",
        f"incident:{incident_id}",
        outbox.COSMETIC,
        incident_id,
    )


# ---- delivery against the fake Slack -------------------------------------------------------------
@pytest.fixture
def fs() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


def slack_setup(ctx: Context, fs: FakeSlackServer, incident_id: int) -> tuple[str, str, str]:
    """The incident channel and the announcement in the announce channel; (channel, announce, ts)."""
    channel = fs.fake.create_channel(CHANNEL).id
    announce = fs.fake.create_channel("incidents").id
    ts = fs.fake.add_message(announce, "Incident #1: API error rate high", user=BOT_USER_ID)["ts"]
    with transaction(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        assert incident is not None
        incident.channel_id, incident.announce_ts = channel, ts
        s.add(incident)
        postmortem.enqueue_postmortem(s, incident, NOW)
    return channel, announce, ts


def delivery(ctx: Context, fs: FakeSlackServer, announce: str | None) -> tuple[SlackDelivery, Worker]:
    slack = SlackWebAPI(AsyncWebClient(token="xoxb-test", base_url=fs.url))
    base = SlackDelivery(ctx.engine, slack, announce, ctx.clock)
    handlers = {**base.handlers(), **PostmortemDelivery(base, ctx).handlers()}
    return base, Worker(ctx.engine, handlers, ctx.clock)


def entries(ctx: Context, kind: str) -> list[TimelineEntry]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(TimelineEntry).where(col(TimelineEntry.kind) == kind)))


def statuses(ctx: Context) -> list[tuple[str, str]]:
    with Session(ctx.engine) as s:
        return [(r.op, r.status) for r in s.exec(select(Outbox).order_by(col(Outbox.id)))]


@pytest.mark.anyio
async def test_delivery_uploads_the_draft_and_links_it_in_the_thread(
    ctx: Context, fs: FakeSlackServer
) -> None:
    incident_id = add_incident(ctx)
    channel, announce, ts = slack_setup(ctx, fs, incident_id)
    _, worker = delivery(ctx, fs, announce)
    await worker.drain(10)

    assert statuses(ctx) == [("postmortem", "sent"), ("postmortem_link", "sent")]
    path = ctx.postmortems_dir / f"2026-11-23-{CHANNEL}.md"
    text = path.read_text(encoding="utf-8")
    (file,) = fs.fake.files.values()
    assert file.completed and file.channels == [channel] and file.filename == path.name
    assert (fs.fake.file_content(file.id) or b"").decode() == text
    assert file.title == "Post-mortem: API error rate high"

    (entry,) = entries(ctx, "postmortem")
    assert entry.data["file_id"] == file.id and entry.data["path"] == str(path)

    reply = [m for m in fs.fake.messages(announce) if m.get("thread_ts") == ts and m["ts"] != ts]
    assert len(reply) == 1 and path.name in reply[0]["text"] and file.id in reply[0]["text"]


@pytest.mark.anyio
async def test_delivery_without_announcement_only_uploads(ctx: Context, fs: FakeSlackServer) -> None:
    incident_id = add_incident(ctx)
    slack_setup(ctx, fs, incident_id)
    _, worker = delivery(ctx, fs, None)
    await worker.drain(10)
    assert statuses(ctx) == [("postmortem", "sent")]
    assert len(fs.fake.files) == 1


@pytest.mark.anyio
async def test_crash_after_upload_does_not_upload_again(ctx: Context, fs: FakeSlackServer) -> None:
    """The upload succeeded but the process died before recording it: the retry adopts the file."""
    incident_id = add_incident(ctx)
    _, announce, ts = slack_setup(ctx, fs, incident_id)
    base, _ = delivery(ctx, fs, announce)
    handler = PostmortemDelivery(base, ctx)
    with Session(ctx.engine) as s:
        row = s.exec(select(Outbox)).one()
    await handler.deliver(row)  # ... and crash: the completion is never applied
    (file_id,) = fs.fake.files

    row.in_flight = True  # what the worker sees on the next attempt
    complete = await handler.deliver(row)
    assert complete is not None
    assert len(fs.fake.files) == 1 and len(fs.fake.calls_to("files.completeUploadExternal")) == 1
    with transaction(ctx.engine) as s:
        complete(s)
    assert [e.data["file_id"] for e in entries(ctx, "postmortem")] == [file_id]

    # The same for the thread reply: posted, crash, retried.
    with Session(ctx.engine) as s:
        link_row = s.exec(select(Outbox).where(col(Outbox.op) == "postmortem_link")).one()
    await handler.link(link_row)
    link_row.in_flight = True
    await handler.link(link_row)
    replies = [m for m in fs.fake.messages(announce) if m.get("thread_ts") == ts and m["ts"] != ts]
    assert len(replies) == 1


@pytest.mark.anyio
async def test_a_second_close_uploads_a_new_draft(ctx: Context, fs: FakeSlackServer) -> None:
    """Files already recorded are never adopted: a later postmortem row uploads its own."""
    incident_id = add_incident(ctx)
    _, announce, _ = slack_setup(ctx, fs, incident_id)
    base, worker = delivery(ctx, fs, announce)
    await worker.drain(10)
    with transaction(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        assert incident is not None
        postmortem.enqueue_postmortem(s, incident, NOW)
    with Session(ctx.engine) as s:
        row = s.exec(
            select(Outbox).where(col(Outbox.op) == "postmortem").order_by(col(Outbox.id).desc())
        ).first()
    assert row is not None
    row.in_flight = True  # even when unsure, the recorded upload is not taken for this row's
    complete = await PostmortemDelivery(base, ctx).deliver(row)
    assert complete is not None and len(fs.fake.files) == 2


@pytest.mark.anyio
async def test_broken_custom_template_falls_back_to_the_default(ctx: Context, fs: FakeSlackServer) -> None:
    ctx.postmortem_template = "{{ root_cause }}"
    incident_id = add_incident(ctx)
    _, announce, _ = slack_setup(ctx, fs, incident_id)
    _, worker = delivery(ctx, fs, announce)
    await worker.drain(10)
    (file,) = fs.fake.files.values()
    assert file.text.startswith("# Incident Post-Mortem")
    assert "unknown variable" in (file.initial_comment or "")
    assert entries(ctx, "postmortem")[0].data["template_problem"].startswith("POSTMORTEM_TEMPLATE:1:")


# ---- reports -------------------------------------------------------------------------------------
def test_incidents_since_feeds_the_report(ctx: Context) -> None:
    first = add_incident(ctx)
    second = add_incident(
        ctx,
        channel="inc-20261124-db",
        created=T0 + timedelta(days=1),
        severity="warning",
        acknowledged_at=T0 + timedelta(days=1, minutes=4),
        resolved_at=None,
        resolved_by=None,
        status="acknowledged",
    )
    add_incident(ctx, channel="inc-20261101-old", created=T0 - timedelta(days=30))

    found = incidents_since(ctx, T0 - timedelta(days=7))
    assert [i.id for i in found] == [first, second]
    assert found[0].alert_names == ("HighApiErrorRate", "HighLatency")
    assert [(p.person, p.step_key) for p in found[0].pages] == [("alex", "c0r0s0"), ("sarah", "c0r0s1")]

    r = report(found, T0 - timedelta(days=7), T0 + timedelta(days=2))
    assert r.incidents == 2
    assert dict(r.by_severity) == {"critical": 1, "warning": 1}
    assert (r.mtta.count, r.mtta.median) == (2, timedelta(minutes=4))
    assert (r.mttr.count, r.mttr.median) == (1, timedelta(minutes=40))
    assert {(p.person, p.pages, p.escalations) for p in r.people} == {("alex", 2, 0), ("sarah", 2, 2)}
    assert [(a.name, a.incidents, a.alerts) for a in r.noisiest_alerts] == [
        ("HighApiErrorRate", 2, 2),
        ("HighLatency", 2, 2),
    ]
