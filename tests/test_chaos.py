"""No lost or doubled page under crashes: a scripted workload while the bot is SIGKILLed at random.

The CI size (20 alert groups, at least 10 kills) runs on every push on SQLite and PostgreSQL; the
full size (100 groups, at least 25 kills) runs with `make chaos` (`pytest -m slow`).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.chaos import Chaos
from tests.harness import bot_env, processed
from tests.workload import ENV, Workload, check, per_kind, plan, wait_settled

pytestmark = pytest.mark.e2e


def run_chaos(fake_slack, database_url: str, tmp_path, *, n: int, spread: float, kills: int, seed: int):
    """The bot is SIGKILLed `kills` times while the workload runs (lives of 0.3-3 s, so about one
    kill every 4-5 s with the restart); then it stays up, and the end state is checked."""
    fake = fake_slack.fake
    announce = fake.create_channel("incidents").id
    env = bot_env(fake_slack.url, database_url, **ENV, INCIDENT_ANNOUNCE_CHANNEL=announce)
    scripts = plan(n, seed=seed, spread=spread, run_id=f"c{seed}")
    started = time.monotonic()
    with Chaos(env, tmp_path, kills=kills, seed=seed) as chaos:
        workload = Workload(scripts, lambda: chaos.url, database_url)
        try:
            workload.run()
            chaos.finish()
            wait_settled(workload.engine, timeout=120)
        finally:
            workload.close()
        outcome = check(fake, database_url, scripts, chaos.intervals(), announce_channel=announce)
    figures = {
        "kinds": per_kind(scripts),
        "kills": chaos.kills,
        "requests": workload.stats.requests,
        "refused_and_retried": workload.stats.refused,
        "clicks": workload.stats.clicks,
        "reclicks": workload.stats.reclicks,
        "slack_calls": len(fake.calls),
        "seconds": round(time.monotonic() - started, 1),
        **vars(outcome),
    }
    print("chaos figures:", json.dumps(figures))
    assert chaos.kills == kills
    return figures


BOTH = pytest.mark.parametrize(
    "database_url",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
    indirect=True,
)


@pytest.mark.timeout(600)
@BOTH
def test_chaos_ci_size_nothing_lost_or_doubled(fake_slack, database_url, tmp_path):
    run_chaos(fake_slack, database_url, tmp_path, n=20, spread=15.0, kills=10, seed=11)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@BOTH
def test_chaos_full_size_nothing_lost_or_doubled(fake_slack, database_url, tmp_path):
    run_chaos(fake_slack, database_url, tmp_path, n=100, spread=100.0, kills=25, seed=12)


# -- found by the PostgreSQL chaos run, minimal ------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_timer_firing_while_someone_acknowledges_does_not_deadlock(start_bot, tmp_path):
    """The scheduler tick claims a due escalation timer while a person acknowledges the incident:
    the same statements as `fire_due` and `acknowledge`, interleaved the way a busy replica does."""
    from pathlib import Path

    from bot.service import escalation, responders
    from bot.service import timers as fire
    from bot.store import timers
    from bot.store.db import transaction
    from tests.harness import Clock, post_alertmanager
    from tests.workload import FAST_ROTATIONS, Script

    clock = Clock()
    bot = start_bot(clock=clock, rotations_dir=Path(FAST_ROTATIONS), scheduler_tick_seconds=3600)
    incident_id = processed(bot, post_alertmanager(bot.url, Script(0, "ack", 0.0, run_id="d").payload()))[
        "incident"
    ]
    clock.advance(seconds=5)  # the secondary's step (4 s) is due
    ctx = bot.ctx
    claimed, errors = threading.Event(), []

    def tick() -> None:
        try:
            with transaction(ctx.engine) as session:
                now = ctx.clock()
                batch = timers.due(session, ctx.engine, now, 200)
                claimed.set()
                time.sleep(0.5)  # meanwhile the acknowledgement holds the incident, waits for the timer
                for timer in batch:  # as fire_due does: skip a timer whose incident is busy
                    if fire.incident_free(ctx, session, timer):
                        escalation.on_timer(ctx, session, timer, now)
        except Exception as exc:
            errors.append(exc)

    def acknowledge() -> None:
        claimed.wait(10)
        try:
            responders.acknowledge(ctx, incident_id, "slack:U01ALEX")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=tick), threading.Thread(target=acknowledge)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, [f"{type(e).__name__}: {str(e).splitlines()[0]}" for e in errors]
