"""Three bot processes on one PostgreSQL database, no load balancer: each webhook and each button
click goes to a replica picked at random, and the workload ends exactly as with one process
(every incident in its expected state, every due page once, one channel each, no duplicate
timeline rows, the outbox drained, messages in order). See docs/reliability.md.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness import BotProcess, bot_env
from tests.workload import ENV, Workload, check, per_kind, plan, wait_settled

pytestmark = pytest.mark.e2e

REPLICAS = 3


def run_replicas(fake_slack, database_url: str, tmp_path, *, n: int, spread: float, seed: int) -> dict:
    fake = fake_slack.fake
    announce = fake.create_channel("incidents").id
    env = bot_env(fake_slack.url, database_url, **ENV, INCIDENT_ANNOUNCE_CHANNEL=announce)
    bots = [BotProcess(env, tmp_path / f"bot{i}.log") for i in range(REPLICAS)]
    scripts = plan(n, seed=seed, spread=spread, run_id=f"r{seed}")
    rng, lock = random.Random(seed), threading.Lock()

    def any_replica() -> str:
        with lock:
            return rng.choice(bots).url

    started = time.monotonic()
    workload = Workload(scripts, any_replica, database_url)
    try:
        with ThreadPoolExecutor(REPLICAS) as pool:  # start together: migrations race on one database
            list(pool.map(lambda b: b.start(ready_timeout=60), bots))
        workload.run()
        wait_settled(workload.engine, timeout=180)
        outcome = check(fake, database_url, scripts, announce_channel=announce)
    finally:
        workload.close()
        for bot in bots:
            bot.stop()
    figures = {
        "replicas": REPLICAS,
        "kinds": per_kind(scripts),
        "requests": workload.stats.requests,
        "refused_and_retried": workload.stats.refused,
        "clicks": workload.stats.clicks,
        "slack_calls": len(fake.calls),
        "seconds": round(time.monotonic() - started, 1),
        **vars(outcome),
    }
    print("replica figures:", json.dumps(figures))
    # A 503 is allowed (Alertmanager retries it); today they come from the PostgreSQL deadlock
    # between the timer tick and a resolution (see test_chaos.py), hence not asserted to be zero.
    return figures


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_three_replicas_deliver_the_workload_as_one_process_does(fake_slack, database_url, tmp_path):
    run_replicas(fake_slack, database_url, tmp_path, n=20, spread=8.0, seed=31)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_three_replicas_full_size(fake_slack, database_url, tmp_path):
    run_replicas(fake_slack, database_url, tmp_path, n=100, spread=60.0, seed=32)
