"""Shared setup for the notification tests: a rotations directory with notification rules, the
provider fakes, and a bot pointed at them."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlmodel import Session, col, select

from bot.store.tables import Notification, TimelineEntry, Timer
from tests.harness import Clock, post_alertmanager, processed, wait_until

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 3 a.m.: everybody sleeps
SECRET = "s3cret-key-for-ack-links"
PUBLIC = "https://bot.example.com"

ALEX_RULES = """
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    ntfy: alex-pages
    notify:
      - {after: 0m, via: slack}
      - {after: 1m, via: ntfy}
      - {after: 3m, via: email}
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
"""


def rotations(tmp: Path, people: str = ALEX_RULES) -> Path:
    """The flow tests' rotation (alex primary, sarah secondary at 15m, mike manager at 30m) with
    `people` as people.yaml."""
    out = tmp / "rotations"
    out.mkdir(exist_ok=True)
    for name in ("platform.yaml", "routes.yaml"):
        shutil.copy(FIXTURES / "rotations" / name, out / name)
    (out / "people.yaml").write_text(people)
    return out


def settings(tmp: Path, ntfy=None, smtp=None, people: str = ALEX_RULES, **extra) -> dict:
    values = {
        "rotations_dir": rotations(tmp, people),
        "public_url": PUBLIC,
        "secret_key": SECRET,
        "notify_timeout_seconds": 5,
    }
    if ntfy is not None:
        values["ntfy_url"] = ntfy.url
    if smtp is not None:
        values.update(smtp_url=smtp.url(), smtp_from="incidentbot@example.com", smtp_ca_file=smtp.ca_file)
    values.update(extra)
    return values


def start(start_bot, tmp: Path, **kw):
    return start_bot(clock=Clock(T0), **settings(tmp, **kw))


def fire(bot, fake_slack) -> int:
    """A SEV1 alert (critical): the incident id once the primary's first page is under way."""
    payload = json.loads((FIXTURES / "alertmanager-0.25" / "firing-single-alert.json").read_text())
    r = post_alertmanager(bot.url, payload)
    assert r.status_code == 202, r.text
    return int(processed(bot, r)["incident"])


def timeline(bot, incident_id: int, kind: str | None = None) -> list[TimelineEntry]:
    with Session(bot.ctx.engine) as session:
        query = select(TimelineEntry).where(col(TimelineEntry.incident_id) == incident_id)
        if kind:
            query = query.where(col(TimelineEntry.kind) == kind)
        return list(session.exec(query.order_by(col(TimelineEntry.id))))


def notifications(bot) -> list[Notification]:
    with Session(bot.ctx.engine) as session:
        return list(session.exec(select(Notification).order_by(col(Notification.id))))


def notify_timers(bot) -> list[Timer]:
    with Session(bot.ctx.engine) as session:
        return list(session.exec(select(Timer).where(col(Timer.kind) == "notify").order_by(col(Timer.id))))


def ack_path(url: str) -> str:
    """`/ack/<token>` of an ack link (links name PUBLIC_URL; tests call the bot itself)."""
    assert url.startswith(PUBLIC + "/ack/"), url
    return urlsplit(url).path


def ack_link_of(publish: dict) -> str:
    return next(a["url"] for a in publish["actions"] if a["label"] == "Acknowledge")


def channel_lines(fake_slack, pattern: str) -> list[str]:
    fake = fake_slack.fake
    chan = next((c for c in fake.channels.values() if c.name.startswith("inc-")), None)
    if chan is None:
        return []
    return [m.get("text", "") for m in fake.messages(chan.id) if re.search(pattern, m.get("text", ""))]


def wait_line(fake_slack, pattern: str, timeout: float = 10) -> list[str]:
    return wait_until(
        lambda: channel_lines(fake_slack, pattern), timeout, what=f"a channel line like {pattern!r}"
    )


def post_ack(bot, path: str) -> httpx.Response:
    return httpx.post(f"{bot.url}{path}", timeout=10)
