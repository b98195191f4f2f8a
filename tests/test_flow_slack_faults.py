"""Slack trouble delays messages, never loses or doubles them."""

import copy
import json
from collections import Counter
from pathlib import Path

from tests.harness import post_alertmanager, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)


def groups(n: int) -> list[dict]:
    out = []
    for i in range(n):
        p = copy.deepcopy(FIXTURE)
        p["groupKey"] = f'{{}}:{{alertname="WeaviateDown", service="weaviate-{i}"}}'
        p["groupLabels"]["service"] = f"weaviate-{i}"
        p["alerts"][0]["fingerprint"] = f"fp{i:04d}"
        out.append(p)
    return out


def posted_outbox_ids(fake) -> Counter:
    """How many successful posts carried each outbox id (the bot tags every post)."""
    ids = Counter()
    for call in fake.calls_to("chat.postMessage"):
        if call.ok:
            ids[(call.args.get("metadata") or {}).get("event_payload", {}).get("outbox_id")] += 1
    return ids


def settled(fake, n: int) -> bool:
    chans = [c for c in fake.channels.values() if c.name.startswith("inc-")]
    return len(chans) == n and all(c.pins and c.topic and len(c.members) > 1 for c in chans)


def test_slack_outage_delays_then_delivers_everything_once(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot()
    fake.add_fault({"method": "*", "mode": "error500", "duration": 4})
    for payload in groups(3):
        assert post_alertmanager(bot.url, payload).status_code == 202  # never blocked by Slack
    assert any(c.status == 500 for c in fake.calls)
    wait_until(lambda: settled(fake, 3), 45, 0.2, "all three incidents delivered after the outage")
    ok_creates = [c for c in fake.calls_to("conversations.create") if c.ok]
    assert len(ok_creates) == 3
    counts = posted_outbox_ids(fake)
    assert counts and max(counts.values()) == 1, counts
    for chan in fake.channels.values():
        if chan.name.startswith("inc-"):
            texts = [m.get("text") for m in chan.messages]
            assert len(texts) == len(set(zip(texts, [m["ts"] for m in chan.messages], strict=True)))


def test_rate_limits_are_honoured_with_retry_after(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot()
    fake.add_fault({"method": "chat.postMessage", "mode": "ratelimit", "retry_after": 1, "count": 2})
    post_alertmanager(bot.url, groups(1)[0])
    wait_until(lambda: settled(fake, 1), 20, 0.1, "delivered after the 429s")
    limited = [c for c in fake.calls_to("chat.postMessage") if c.status == 429]
    assert len(limited) == 2
    # chat.postMessage is limited per channel: after a 429 the next post to that channel waited
    # for Retry-After (posts to other channels need not).
    for refused in limited:
        channel = refused.args.get("channel")
        later = [
            c
            for c in fake.calls_to("chat.postMessage")
            if c.ok and c.args.get("channel") == channel and c.index > refused.index
        ]
        assert later and later[0].monotonic - refused.monotonic >= 0.9, (channel, refused, later[:1])
    assert max(posted_outbox_ids(fake).values()) == 1


def test_dropped_connections_and_timeouts_do_not_double_post(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(slack_timeout_seconds=1)
    fake.add_fault({"method": "chat.postMessage", "mode": "slow", "delay": 1.5, "count": 2})
    fake.add_fault({"method": "conversations.create", "mode": "drop", "count": 1})
    post_alertmanager(bot.url, groups(1)[0])
    wait_until(lambda: settled(fake, 1), 40, 0.2, "delivered after timeouts")
    # The slow posts did land at Slack although the bot timed out: it must find them, not post again.
    counts = posted_outbox_ids(fake)
    assert max(counts.values()) == 1, counts
    assert len([c for c in fake.calls_to("conversations.create") if c.ok]) == 1
