"""A scripted incident workload for the reliability tests, and the checks of its end state.

`plan(n, seed)` scripts N alert groups against the fast rotation (primary at 0 s, secondary at
4 s, manager at 8 s, final `@here` at 12 s): some are left to escalate, some acknowledged with the
card's signed button, some resolved by Alertmanager early or late. `Workload.run()` plays the
script against one or several bot URLs and, like Alertmanager, retries every delivery until the
bot answers 2xx (the bot may be down, being SIGKILLed, or restarting). A click that got its 200
is checked against the database and clicked again if the acknowledgement did not land (a person
would click again too: no confirmation came).

`check(...)` then compares what happened with what was due, from the bot's own timestamps: each
escalation step due while a bot process was up (and before the incident was acknowledged or
resolved) must have paged exactly once, no step due after that may have paged at all, a step in
between may have paged at most once; and every page row matches exactly one DM.
"""

from __future__ import annotations

import copy
import json
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, col, select

from bot.store.db import make_engine
from bot.store.inbox_table import InboxRow
from bot.store.tables import Incident, Outbox, Page, TimelineEntry, Timer
from tests.harness import AM_TOKEN, ROOT, block_action_body, processed, slack_headers

FAST_ROTATIONS = str(ROOT / "tests" / "fixtures" / "rotations-fast")
FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)
# The fast rotation: who each step pages and when it is due after the incident opens.
STEPS = (("U01ALEX", 0.0), ("U02SARAH", 4.0), ("U03MIKE", 8.0))
FINAL_NOTICE_AFTER = 12.0
# A step due while a bot was up fires within a scheduler tick; this much slack covers the tick.
FIRE_MARGIN = 1.5
EXPECTED_STATUS = {
    "escalate": "triggered",
    "ack": "acknowledged",
    "resolve": "resolved",
    "ack_resolve": "resolved",
    "resolve_late": "resolved",
}
# Share of each kind in a workload (the rest escalates fully).
MIX = (("ack", 0.30), ("resolve", 0.20), ("ack_resolve", 0.15), ("resolve_late", 0.10))
# Outbox operations that post a message tagged with their outbox id.
POSTING_OPS = frozenset({"post_card", "say", "page", "announce", "no_runbook"})
ENV = {
    "ROTATIONS_DIR": FAST_ROTATIONS,
    "SCHEDULER_TICK_SECONDS": "0.5",
    "OUTBOX_POLL_SECONDS": "0.2",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class Script:
    """One alert group's part in the workload (times in seconds, relative to the run start / open)."""

    index: int
    kind: str
    start: float
    ack_after: float | None = None
    resolve_after: float | None = None
    run_id: str = "w"
    # Filled in while running.
    incident_id: int | None = None
    opened_at: float | None = None
    clicks: int = 0
    reclicks: int = 0

    @property
    def alertname(self) -> str:
        return "WeaviateDown" if self.index % 2 == 0 else "ChaosProbe"

    def payload(self, status: str = "firing") -> dict[str, Any]:
        p = copy.deepcopy(FIXTURE)
        service = f"{self.run_id}-svc-{self.index}"
        labels = {**p["commonLabels"], "alertname": self.alertname, "service": service}
        p["groupKey"] = f'{{}}:{{alertname="{self.alertname}", service="{service}"}}'
        p["groupLabels"] = {"alertname": self.alertname, "service": service}
        p["commonLabels"] = labels
        p["commonAnnotations"]["summary"] = f"{self.alertname} on {service}"
        alert = p["alerts"][0]
        alert["labels"] = labels
        alert["fingerprint"] = f"{self.run_id}{self.index:05d}"
        alert["startsAt"] = "2026-11-22T23:45:35Z"
        p["status"] = alert["status"] = status
        if status == "resolved":
            alert["endsAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return p


def plan(n: int, seed: int = 1, spread: float = 10.0, run_id: str = "w") -> list[Script]:
    """N scripts with a fixed mix of kinds, opening at random moments within `spread` seconds."""
    rng = random.Random(seed)
    kinds: list[str] = []
    for kind, share in MIX:
        kinds += [kind] * max(1, round(n * share))
    kinds = (kinds + ["escalate"] * n)[:n]
    if n >= len(EXPECTED_STATUS):
        kinds[-1] = "escalate"  # at least one escalates all the way
    rng.shuffle(kinds)
    scripts = []
    for i, kind in enumerate(kinds):
        s = Script(i, kind, rng.uniform(0, spread), run_id=run_id)
        if kind in ("ack", "ack_resolve"):
            s.ack_after = rng.uniform(0.5, 1.5)
        if kind == "resolve":
            s.resolve_after = rng.uniform(1.0, 2.5)
        if kind == "ack_resolve":
            s.resolve_after = (s.ack_after or 0) + rng.uniform(0.5, 1.5)
        if kind == "resolve_late":
            s.resolve_after = rng.uniform(6.0, 7.0)  # after the secondary's page, before the manager's
        scripts.append(s)
    return scripts


@dataclass
class Stats:
    requests: int = 0  # HTTP requests sent to the bot
    refused: int = 0  # of which got no 2xx (bot down, 5xx) and were retried
    clicks: int = 0
    reclicks: int = 0  # clicks answered 200 whose acknowledgement never landed
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, ok: bool) -> None:
        with self.lock:
            self.requests += 1
            self.refused += not ok


class Workload:
    """Plays scripts against the bot(s); `targets()` says where to send each request."""

    def __init__(
        self,
        scripts: list[Script],
        targets: Callable[[], str],
        database_url: str,
        *,
        deadline: float = 240.0,
    ) -> None:
        self.scripts = scripts
        self.targets = targets
        self.engine = make_engine(database_url)
        self.deadline = deadline
        self.stats = Stats()
        self.started = 0.0
        self.errors: list[BaseException] = []

    # -- delivery, retried like Alertmanager does ------------------------------------------------
    def _deliver(self, what: str, send: Callable[[httpx.Client, str], httpx.Response]) -> httpx.Response:
        give_up = time.monotonic() + self.deadline
        with httpx.Client(timeout=5) as client:
            while True:
                try:
                    response = send(client, self.targets())
                except httpx.HTTPError:
                    response = None
                ok = response is not None and response.is_success
                self.stats.count(ok)
                if ok:
                    return response
                if response is not None and response.status_code < 500:
                    raise AssertionError(
                        f"{what}: the bot refused it for good: {response.status_code} {response.text}"
                    )
                if time.monotonic() > give_up:
                    raise AssertionError(f"{what}: no 2xx from the bot within {self.deadline}s")
                time.sleep(0.3)

    def alertmanager(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Alertmanager/0.25.0",
            "Authorization": f"Bearer {AM_TOKEN}",
        }
        response = self._deliver(
            f"alertmanager {payload['groupKey']}",
            lambda c, url: c.post(f"{url}/webhooks/alertmanager", content=body, headers=headers),
        )
        # What it led to is on its inbox row once a drain applied it (maybe after a restart).
        return processed(self.engine, response, timeout=self.deadline)

    def click(self, action_id: str, value: str, user: str, channel: str) -> None:
        body = block_action_body(action_id, value, user=user, channel=channel)
        self._deliver(
            f"{action_id} {value}",
            lambda c, url: c.post(f"{url}/slack/events", content=body, headers=slack_headers(body)),
        )

    # -- reading the truth back --------------------------------------------------------------
    def incident(self, incident_id: int) -> Incident | None:
        for _ in range(50):
            try:
                with Session(self.engine, expire_on_commit=False) as session:
                    return session.get(Incident, incident_id)
            except Exception:  # the database is busy with a crash recovery: ask again
                time.sleep(0.1)
        raise AssertionError(f"could not read incident {incident_id}")

    def acknowledge(self, script: Script) -> None:
        """Click Acknowledge until it lands (a 200 from Bolt is sent before the use case commits)."""
        assert script.incident_id is not None
        while True:
            inc = self.incident(script.incident_id)
            channel = (inc.channel_id if inc else None) or "C0GENERAL"
            self.click("incident_ack", str(script.incident_id), "U01ALEX", channel)
            script.clicks += 1
            with self.stats.lock:
                self.stats.clicks += 1
            landed = time.monotonic() + 2.0
            while time.monotonic() < landed:
                inc = self.incident(script.incident_id)
                if inc is not None and inc.acknowledged_at is not None:
                    return
                time.sleep(0.1)
            script.reclicks += 1
            with self.stats.lock:
                self.stats.reclicks += 1

    # -- the script ----------------------------------------------------------------------------
    def _at(self, moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def play(self, script: Script) -> None:
        self._at(self.started + script.start)
        answer = self.alertmanager(script.payload())
        script.incident_id = int(answer["incident"])
        script.opened_at = time.monotonic()
        if script.ack_after is not None:
            self._at(script.opened_at + script.ack_after)
            self.acknowledge(script)
        if script.resolve_after is not None:
            self._at(script.opened_at + script.resolve_after)
            self.alertmanager(script.payload("resolved"))

    def run(self) -> None:
        """Play every script (concurrently, each on its own schedule); raise the first failure."""
        self.started = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, len(self.scripts))) as pool:
            futures = [pool.submit(self.play, s) for s in self.scripts]
            for future in futures:
                future.result()

    def close(self) -> None:
        self.engine.dispose()


# -- the end state ---------------------------------------------------------------------------------
def pending_work(engine: Any) -> tuple[int, int]:
    """(pending inbox and outbox rows, pending escalation/final-notice timers)."""
    with Session(engine) as session:
        rows = len(session.exec(select(Outbox.id).where(col(Outbox.status) == "pending")).all())
        rows += len(session.exec(select(InboxRow.id).where(col(InboxRow.status) == "pending")).all())
        timers = len(
            session.exec(
                select(Timer.id).where(
                    col(Timer.status) == "pending", col(Timer.kind).in_(("escalation", "final_notice"))
                )
            ).all()
        )
    return rows, timers


def wait_settled(engine: Any, timeout: float, quiet: float = 2.0) -> None:
    """Until nothing is pending (outbox drained, no escalation timer left), stable for `quiet` s."""
    deadline = time.monotonic() + timeout
    calm_since: float | None = None
    last: tuple[int, int] = (-1, -1)
    while time.monotonic() < deadline:
        try:
            last = pending_work(engine)
        except Exception:
            last = (-1, -1)
        if last == (0, 0):
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet:
                return
        else:
            calm_since = None
        time.sleep(0.25)
    raise AssertionError(f"not settled after {timeout}s: (pending outbox rows, pending timers) = {last}")


def _up_at(intervals: Sequence[tuple[float, float]], due: float, stop: float) -> bool:
    """Was some bot process up long enough, between `due` and `stop`, to fire a timer due at `due`?"""
    return any(max(a, due) + FIRE_MARGIN <= min(b, stop) for a, b in intervals)


@dataclass
class Outcome:
    incidents: int
    pages: int
    messages: int
    channel_creates: int
    timeline_rows: int
    outbox_rows: int
    ambiguous_steps: int  # steps due while no bot was up long enough: firing or not both correct


def outbox_id(message: dict[str, Any]) -> int | None:
    payload = (message.get("metadata") or {}).get("event_payload") or {}
    value = payload.get("outbox_id")
    return int(value) if value is not None else None


def check(
    fake: Any,
    database_url: str,
    scripts: list[Script],
    up: Sequence[tuple[float, float]] = ((0.0, float("inf")),),
    *,
    announce_channel: str | None = None,
) -> Outcome:
    """Every assertion of the end state; `up` lists (start, end) wall-clock seconds of bot uptime."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            incidents = {i.id: i for i in session.exec(select(Incident))}
            timeline = list(session.exec(select(TimelineEntry)))
            rows = {r.id: r for r in session.exec(select(Outbox))}
            page_rows = list(session.exec(select(Page)))
    finally:
        engine.dispose()
    problems: list[str] = []

    # 1. Every incident in its expected state (and no incident nobody asked for).
    ids = [s.incident_id for s in scripts]
    if None in ids or len(set(ids)) != len(scripts):
        problems.append(f"incident ids: {ids}")
    if set(incidents) != set(ids):
        problems.append(f"unexpected incidents: {sorted(set(incidents) - set(ids))}")
    for s in scripts:
        inc = incidents.get(s.incident_id)
        if inc is None or inc.status != EXPECTED_STATUS[s.kind]:
            problems.append(f"#{s.incident_id} ({s.kind}): status {inc and inc.status}")

    # 2. Pages: each page row reached Slack exactly once, and exactly the due steps paged.
    messages: dict[str, list[dict[str, Any]]] = {cid: fake.messages(cid) for cid in fake.channels}
    dm_user = {c.id: c.user for c in fake.channels.values() if c.is_im}
    dms: Counter = Counter()
    for cid, msgs in messages.items():
        for m in msgs:
            oid = outbox_id(m)
            if cid in dm_user and oid in rows:
                dms[(dm_user[cid], rows[oid].incident_id)] += 1
    paged_rows = Counter((p.slack_user, p.incident_id) for p in page_rows)
    if dms != paged_rows:
        problems.append(f"page DMs != page rows: {sorted((dms - paged_rows) + (paged_rows - dms))[:10]}")
    doubled = [k for k, v in dms.items() if v > 1]
    if doubled:
        problems.append(f"paged more than once: {doubled[:10]}")
    # The order of commits is read from the timeline ids, not from timestamps: a use case reads the
    # clock before it waits for the write lock, so `acknowledged_at` can be earlier than a step that
    # fired (correctly) before the acknowledgement was committed.
    stop_row: dict[int, int] = {}
    fired_row: dict[tuple[int, str], int] = {}
    for t in sorted(timeline, key=lambda t: t.id or 0):
        if t.kind == "status" and (t.data or {}).get("to") in ("acknowledged", "resolved"):
            stop_row.setdefault(t.incident_id, t.id or 0)
        if t.kind == "escalation":
            fired_row.setdefault((t.incident_id, str((t.data or {}).get("step"))), t.id or 0)
    ambiguous = 0
    for s in scripts:
        inc = incidents.get(s.incident_id)
        if inc is None:
            continue
        anchor = (inc.escalation_anchor or inc.created_at).timestamp()
        stops = [t.timestamp() for t in (inc.acknowledged_at, inc.resolved_at) if t is not None]
        stop = min(stops) if stops else float("inf")
        for step, (user, after) in enumerate(STEPS):
            due = anchor + after
            got = dms[(user, inc.id)]
            fired = fired_row.get((inc.id, f"c0r0s{step}"))
            when = f"due at {after:.0f}s, stopped at {stop - anchor:.1f}s"
            if fired is not None and inc.id in stop_row and fired > stop_row[inc.id]:
                problems.append(
                    f"#{inc.id} ({s.kind}): {user} paged after it was acknowledged/resolved ({when})"
                )
            if after == 0 or _up_at(up, due, stop):
                want: tuple[int, ...] = (1,)  # due while a bot was up, before anyone reacted
            else:
                want = (1,) if fired is not None else (0,)  # either is right; the page row decides
                ambiguous += due <= stop
            if got not in want:
                problems.append(f"#{inc.id} ({s.kind}): {user} paged {got}x, want {want} ({when})")

    # 3. One channel per incident: successful creates == incidents, distinct channels.
    creates = [c for c in fake.calls_to("conversations.create") if c.ok]
    channel_ids = [i.channel_id for i in incidents.values()]
    if len(creates) != len(incidents) or None in channel_ids or len(set(channel_ids)) != len(channel_ids):
        problems.append(
            f"{len(creates)} channels created for {len(incidents)} incidents; linked: {channel_ids}"
        )

    # 4. No duplicate timeline rows.
    keys = Counter((t.incident_id, t.kind, t.text, t.at) for t in timeline)
    dup = [k for k, v in keys.items() if v > 1]
    if dup:
        problems.append(f"duplicate timeline rows: {dup[:5]}")

    # 5. The outbox drained; nothing gave up.
    stuck = [(r.id, r.op, r.status, r.last_error) for r in rows.values() if r.status in ("pending", "failed")]
    if stuck:
        problems.append(f"outbox rows pending or failed: {stuck[:10]}")

    # 6. Every posted row is in Slack exactly once, in outbox order within each incident channel.
    posted = Counter(oid for msgs in messages.values() for m in msgs if (oid := outbox_id(m)) is not None)
    twice = [oid for oid, n in posted.items() if n > 1]
    if twice:
        problems.append(f"messages posted twice: {[(o, rows[o].op) for o in twice if o in rows][:10]}")
    should = {
        r.id
        for r in rows.values()
        if r.status == "sent"
        and (r.op in POSTING_OPS or (r.op == "post_runbook" and "index" in r.payload))
        and not (r.op == "say" and r.payload.get("channel") == "announce" and not announce_channel)
    }
    missing = should - set(posted)
    if missing:
        problems.append(f"sent but not in Slack: {[(o, rows[o].op) for o in sorted(missing)][:10]}")
    for inc in incidents.values():
        if inc.channel_id in messages:
            order = [oid for m in messages[inc.channel_id] if (oid := outbox_id(m)) is not None]
            if order != sorted(order):
                problems.append(f"#{inc.id}: messages out of outbox order: {order}")

    if problems:  # what each incident a problem names went through, to see why
        named = {int(m) for m in re.findall(r"#(\d+)", "\n".join(problems))}
        for t in sorted(timeline, key=lambda t: t.id or 0):
            if t.incident_id in named:
                problems.append(f"  #{t.incident_id} {t.at:%H:%M:%S.%f} {t.actor} {t.kind}: {t.text[:80]}")
        problems += [
            f"  #{p.incident_id} page {p.slack_user} {p.step_key} failed={p.failed_at}"
            for p in page_rows
            if p.incident_id in named
        ]
    assert not problems, "\n".join(problems)
    return Outcome(
        incidents=len(incidents),
        pages=sum(dms.values()),
        messages=sum(posted.values()),
        channel_creates=len(creates),
        timeline_rows=len(timeline),
        outbox_rows=len(rows),
        ambiguous_steps=ambiguous,
    )


def per_kind(scripts: list[Script]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for s in scripts:
        counts[s.kind] += 1
    return dict(counts)
