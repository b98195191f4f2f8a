"""What every section gets: the profile, where to write logs, and how to start the system under test."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.config import Profile
from bench.fakeslack import FakeClient
from bench.payloads import tag_of


@dataclass
class Bench:
    profile: Profile
    log_dir: Path
    fake_placement: str = "process"
    notes: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)  # results later sections reuse

    def log(self, message: str) -> None:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class System:
    """One fresh database, the fake Slack and the bot as a subprocess."""

    fake: procs.Fake
    db: procs.Database
    bot: procs.Bot

    @property
    def admin(self) -> FakeClient:
        return self.fake.admin


# Sections that measure the bot's own machinery (throughput, time to page, timers, memory) run with
# storm folding off (every new group is an incident with a channel and a page) and the outbox's
# Slack rate-limit pacing scaled out of the way (the fake answers at once and never says 429).
# The storm section runs with the defaults against a rate-limited fake.
ISOLATED = {"STORM_THRESHOLD": "1000000", "SLACK_RATE_SCALE": "1000"}


@contextlib.contextmanager
def system(
    bench: Bench,
    db_kind: str,
    label: str,
    *,
    rate_limits: bool = False,
    before_start: Any = None,
    env: dict[str, str] | None = None,
) -> Iterator[System]:
    """Fake Slack + fresh database (+ optional seeding) + `python -m bot serve`; all stopped after.

    `env` adds bot settings; by default the bot runs with ISOLATED (see above)."""
    log_path = bench.log_dir / f"bot-{label}-{db_kind}.log"
    with (
        procs.fake_slack(bench.fake_placement, rate_limits) as fake,
        procs.database(db_kind, label) as db,
    ):
        if before_start is not None:
            before_start(db)
        with procs.bot(fake.url, db, log_path, **(ISOLATED if env is None else env)) as bot:
            yield System(fake, db, bot)


@dataclass
class PageCall:
    tag: str
    wall: float
    channel: str


def all_page_calls(admin: FakeClient, since: int = 0) -> list[PageCall]:
    """Every page DM: an OK chat.postMessage to a `D...` channel saying "You are paged" (tag may be "")."""
    found: list[PageCall] = []
    for call in admin.calls("chat.postMessage", since):
        args = call.get("args") or {}
        channel = str(args.get("channel", ""))
        if not channel.startswith("D") or not (call.get("response") or {}).get("ok"):
            continue
        text = f"{args.get('text', '')} {args.get('blocks', '')}"
        if "You are paged" in text:
            found.append(PageCall(tag_of(text) or "", float(call["wall"]), channel))
    return found


def page_calls(admin: FakeClient, since: int = 0) -> dict[str, PageCall]:
    """First page DM per bench tag."""
    found: dict[str, PageCall] = {}
    for page in all_page_calls(admin, since):
        if page.tag and page.tag not in found:
            found[page.tag] = page
    return found
