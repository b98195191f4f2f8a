"""What a person types in Slack keeps its safe markup: `/incident note`, `action` and the `resolve`
summary link dashboards and mention people, and never broadcast.

Found by an on-call responder: a note with `<https://grafana...|dashboard>` and `<@U01DAVID>` came
out as literal text. Typed user mentions, channel links and http(s)/mailto links stay live;
`<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^...>`, `<!date...>` and every other scheme are
shown as text. Alert, label and annotation text stays fully escaped (tests/test_escaping.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.text import safe_mrkdwn, slack_unescape
from tests.harness import Clock, wait_until
from tests.test_flow_commands import incident_channel, slash

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

GRAFANA = "https://grafana.example.com/d/checkout?from=now-1h&to=now"
# What Slack sends for a slash command (should_escape: true): `&` as `&amp;`, mentions with names.
TYPED = (
    f"see <{GRAFANA.replace('&', '&amp;')}|dashboard>, ask <@U01DAVID|david> in <#C0OPS|ops> "
    "<mailto:dba@example.com|the DBAs> <!channel> <!here> <!everyone> <!subteam^S0TEAM|@oncall> "
    "<!date^1700000000^{date}|soon> <javascript:alert(1)|click> 5 &lt; 6 &amp;&amp; 7 &gt; 3"
)


def assert_safe_and_live(reading) -> None:
    assert reading.links == [(GRAFANA, "dashboard"), ("mailto:dba@example.com", "the DBAs")], reading
    assert "U01DAVID" in reading.mentions and set(reading.mentions) <= {"U01ALEX", "U01DAVID"}, reading
    assert reading.channels == ["C0OPS"], reading
    assert reading.broadcasts == [] and reading.dates == [], reading
    for shown in ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S0TEAM|@oncall>", "<javascript:"):
        assert shown in reading.text, reading.text  # shown as typed, not acted on
    assert "5 < 6 && 7 > 3" in reading.text


@sqlite_only
def test_note_action_and_resolve_summary_keep_links_and_mentions(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), postmortems_dir=tmp_path / "pm")
    slash(bot, "declare Checkout is slow sev2")
    chan = incident_channel(fake)
    assert "added" in slash(bot, f"note {TYPED}", channel=chan.id)
    assert "added" in slash(bot, f"action {TYPED}", channel=chan.id)
    timeline = slash(bot, "timeline", channel=chan.id)
    assert "resolved" in slash(bot, f"resolve {TYPED}", channel=chan.id)

    def echo(prefix: str) -> str:
        return wait_until(
            lambda: next(
                (m["text"] for m in fake.messages(chan.id) if m.get("text", "").startswith(prefix)), None
            ),
            10,
            what=f"the {prefix!r} line in the channel",
        )

    for prefix in (
        ":memo: Note from",
        ":ballot_box_with_check: Action item from",
        ":white_check_mark: Resolved",
    ):
        assert_safe_and_live(fake.read(echo(prefix)))
    # The timeline answer shows both entries with their markup too.
    lines = [line for line in timeline.splitlines() if "dashboard" in line]
    assert len(lines) == 2, timeline
    for line in lines:
        assert_safe_and_live(fake.read(line))


def test_the_rule_on_typed_text() -> None:
    typed = slack_unescape(TYPED)
    out = safe_mrkdwn(typed)
    assert f"<{GRAFANA}|dashboard>" in out and "<@U01DAVID>" in out and "<#C0OPS|ops>" in out
    assert "<mailto:dba@example.com|the DBAs>" in out
    assert "&lt;!channel&gt;" in out and "&lt;!subteam^S0TEAM|@oncall&gt;" in out
    assert "&lt;javascript:alert(1)|click&gt;" in out
    assert safe_mrkdwn("<https://x.example/a b|spaces>") == "&lt;https://x.example/a b|spaces&gt;"
    assert safe_mrkdwn("<https://x.example|a|b>") == "<https://x.example|a¦b>"
    assert safe_mrkdwn("<#C0OPS|not a channel name>") == "<#C0OPS>"
    assert safe_mrkdwn("<@U01DAVID|david>") == "<@U01DAVID>"
    assert safe_mrkdwn("<https://>") == "&lt;https://&gt;"
    assert safe_mrkdwn("a & b <> <@u1>") == "a &amp; b &lt;&gt; &lt;@u1&gt;"


# Every `<` in the output must open one of these; nothing else is Slack markup.
_ALLOWED = re.compile(
    r"<(?:@[UW][A-Z0-9]{2,}|#[CG][A-Z0-9]{2,}(?:\|[a-z0-9_-]{1,80})?"
    r"|(?:https?://[^\s/?#|<>]+|mailto:[^\s|<>]+)[^\s|<>]*(?:\|[^<>|]*)?)>",
    re.IGNORECASE,
)
_PIECES = st.sampled_from(
    [
        "<",
        ">",
        "|",
        "!",
        "@",
        "#",
        "&",
        "^",
        " ",
        "\n",
        "U01DAVID",
        "C0OPS",
        "here",
        "channel",
        "subteam",
        "date",
        "http://",
        "https://",
        "mailto:",
        "javascript:",
        "x.example",
        "/",
        "amp;",
        "lt;",
        "<!",
        "<@",
        "<#",
    ]
)


@given(st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=30).map("".join))
def test_no_broadcast_and_no_other_scheme_survives(typed: str) -> None:
    out = safe_mrkdwn(typed)
    assert "<!" not in out
    assert ">" not in _ALLOWED.sub("", out) and "<" not in _ALLOWED.sub("", out), out
    for target in re.findall(r"<([^@#][^|>]*)", out):
        assert target.lower().startswith(("http://", "https://", "mailto:")), out


def test_the_fake_reads_mrkdwn_as_slack_shows_it() -> None:
    from tests.fakeslack.mrkdwn import read

    users = {"U1": {"profile": {"display_name": "dana"}}}
    r = read(
        "a &amp; b &lt;!here&gt; <@U1> <#C1|ops> <!here> <!subteam^S1|@sre> <https://x.example/?a=1&amp;b=2|x>"
        " <!date^1700000000^{date_num} {time}|fallback> <!date^1700000000^{nope}|fallback>",
        users,
        "Europe/Berlin",
    )
    assert r.mentions == ["U1"] and r.channels == ["C1"] and r.broadcasts == ["here", "subteam^S1"]
    assert r.links == [("https://x.example/?a=1&b=2", "x")]
    assert r.dates == ["2023-11-14 23:13", "fallback"]  # 22:13 UTC is 23:13 in Berlin
    assert r.text.startswith("a & b <!here> @dana #ops @here @sre x ")
