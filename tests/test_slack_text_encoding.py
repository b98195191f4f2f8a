"""Text from Slack arrives entity-encoded (`a < b & c` is sent as `a &lt; b &amp; c`) and is shown
escaped exactly once; mentions the bot itself records show as mentions. Found by audit: pinned
messages and slash-command text were escaped twice (`&amp;gt;`), and the timeline showed the bot's
own `<@U...>` in manual-page entries as literal text."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.harness import Clock, slack_event, wait_until
from tests.test_flow_commands import incident_channel, slash

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@sqlite_only
def test_pinned_message_text_is_not_escaped_twice(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), postmortems_dir=tmp_path / "pm")
    slash(bot, "declare Disk full sev3")
    chan = incident_channel(fake)
    # What Slack stores and sends for a person typing: latency > 5s & rising, ask @sarah
    slack_text = "latency &gt; 5s &amp; rising, ask <@U02SARAH>"
    later = T0.timestamp() + 600
    msg = fake.add_message(chan.id, slack_text, user="U02SARAH", ts=f"{later:.6f}")
    slack_event(
        bot,
        {
            "type": "pin_added",
            "user": "U01ALEX",
            "channel_id": chan.id,
            "item": {"type": "message", "channel": chan.id, "message": {**msg, "text": slack_text}},
            "event_ts": str(time.time()),
        },
    )
    timeline = wait_until(
        lambda: (t := slash(bot, "timeline", channel=chan.id)) and "latency" in t and t, 10, what="pin"
    )
    assert "&amp;gt;" not in timeline and "&amp;amp;" not in timeline, timeline


@sqlite_only
def test_manual_page_entry_shows_mentions_not_literal_ids(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), postmortems_dir=tmp_path / "pm")
    slash(bot, "declare Disk full sev3")
    chan = incident_channel(fake)
    assert "Paging" in slash(bot, "page <@U02SARAH>", channel=chan.id)
    timeline = slash(bot, "timeline", channel=chan.id)
    assert "paged" in timeline, timeline
    assert "&lt;@U02SARAH&gt;" not in timeline and "&lt;@U01ALEX&gt;" not in timeline, timeline


@sqlite_only
def test_slash_command_text_is_not_escaped_twice(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), postmortems_dir=tmp_path / "pm")
    slash(bot, "declare Disk full sev3")
    chan = incident_channel(fake)
    # What Slack sends for a person typing: /incident note latency > 5s & rising
    assert "added" in slash(bot, "note latency &gt; 5s &amp; rising", channel=chan.id)
    timeline = slash(bot, "timeline", channel=chan.id)
    assert "latency &gt; 5s &amp; rising" in timeline, timeline
    echo = wait_until(
        lambda: next(
            (str(c.args.get("text")) for c in fake.calls_to("chat.postMessage") if "latency" in str(c.args)),
            None,
        ),
        10,
        what="the note's echo in the channel",
    )
    assert "latency &gt; 5s &amp; rising" in echo and "&amp;gt;" not in echo, echo
