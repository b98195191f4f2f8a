"""Slack rate-limit tiers: bursts up to the tier, then the tier's pace; a 429 blocks its bucket."""

import asyncio

import pytest

from bot.slack.pacing import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def no_sleep(monkeypatch):
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return slept


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_tier2_allows_a_burst_of_20_then_one_every_3_seconds(no_sleep):
    clock = FakeTime()
    pacer = Pacer(clock=clock)
    delays = [run(pacer.wait("conversations.create")) for _ in range(22)]
    assert delays[:20] == [0.0] * 20
    assert delays[20] == pytest.approx(3.0) and delays[21] == pytest.approx(6.0)


def test_post_message_is_paced_per_channel(no_sleep):
    clock = FakeTime()
    pacer = Pacer(clock=clock)
    for _ in range(5):
        assert run(pacer.wait("chat.postMessage", "C1")) == 0.0
    assert run(pacer.wait("chat.postMessage", "C1")) == pytest.approx(1.0)
    assert run(pacer.wait("chat.postMessage", "C2")) == 0.0  # another channel has its own budget


def test_a_429_blocks_the_method_for_retry_after(no_sleep):
    clock = FakeTime()
    pacer = Pacer(clock=clock)
    pacer.rate_limited("chat.update", None, 7.0)
    assert run(pacer.wait("chat.update")) == pytest.approx(7.0)
    clock.now = 8.0
    assert run(pacer.wait("chat.update")) == 0.0


def test_unknown_methods_are_not_paced_and_scale_raises_limits(no_sleep):
    pacer = Pacer(scale=10, clock=FakeTime())
    assert run(pacer.wait("auth.test")) == 0.0
    assert all(run(pacer.wait("conversations.create")) == 0.0 for _ in range(200))
