"""Slack rate-limit tiers: a short burst, then the tier's pace; a 429 blocks its bucket; a long wait
is not held but handed back to the outbox as "retry later"."""

import asyncio

import pytest

from bot.slack.pacing import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    async def fake_sleep(seconds):
        return None

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_tier2_allows_a_short_burst_then_one_every_3_seconds():
    clock = FakeTime()
    pacer = Pacer(clock=clock)
    delays = [run(pacer.wait("conversations.create", max_wait=10)) for _ in range(5)]
    # 20/min less 10% headroom: 18/min, a burst of a sixth of a minute's worth, then one per 3.33 s
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3] == pytest.approx(10 / 3, abs=0.01) and delays[4] == pytest.approx(20 / 3, abs=0.01)


def test_a_long_wait_is_handed_back_without_taking_budget():
    clock = FakeTime()
    pacer = Pacer(clock=clock)
    for _ in range(3):
        run(pacer.wait("conversations.create"))
    assert run(pacer.wait("conversations.create", max_wait=1)) == pytest.approx(-10 / 3, abs=0.01)
    clock.now = 3.34
    assert run(pacer.wait("conversations.create", max_wait=1)) == pytest.approx(0.0, abs=1e-9)


def test_post_message_is_paced_per_channel():
    pacer = Pacer(clock=FakeTime())
    for _ in range(3):
        assert run(pacer.wait("chat.postMessage", "C1")) == 0.0
    assert run(pacer.wait("chat.postMessage", "C1")) == pytest.approx(1.0)
    assert run(pacer.wait("chat.postMessage", "C2")) == 0.0  # another channel has its own budget


def test_a_429_blocks_the_method_for_retry_after():
    clock = FakeTime()
    pacer = Pacer(clock=clock)
    pacer.rate_limited("chat.update", None, 7.0)
    assert run(pacer.wait("chat.update", max_wait=10)) == pytest.approx(7.0)
    clock.now = 8.0
    assert run(pacer.wait("chat.update")) == 0.0


def test_a_429_that_arrives_while_a_call_waits_its_turn_is_honoured_too(monkeypatch):
    clock = FakeTime()
    pacer = Pacer(clock=clock)
    for _ in range(3):
        run(pacer.wait("conversations.create"))

    async def sleep_while_another_call_gets_a_429(seconds):
        clock.now += seconds
        if clock.now < 4:  # the first sleep: meanwhile a call already in flight came back 429
            pacer.rate_limited("conversations.create", None, 1.5)

    monkeypatch.setattr(asyncio, "sleep", sleep_while_another_call_gets_a_429)
    assert run(pacer.wait("conversations.create", max_wait=10)) == pytest.approx(10 / 3 + 1.5, abs=0.01)
    assert clock.now == pytest.approx(10 / 3 + 1.5, abs=0.01)


def test_unknown_methods_are_not_paced_and_scale_raises_limits():
    pacer = Pacer(scale=10, clock=FakeTime())
    assert run(pacer.wait("auth.test")) == 0.0
    assert all(run(pacer.wait("conversations.create")) == 0.0 for _ in range(30))
