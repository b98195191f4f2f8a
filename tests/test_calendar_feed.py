"""Issue 19: iCalendar feeds of the on-call schedule over real HTTP: off without CALENDAR_TOKEN
(404), 403 for a wrong token, and with the right one the next 12 weeks of shifts per layer,
overrides made from Slack included, stable UIDs, and 09:00 handoffs that stay at 09:00 local
time across the spring-forward change (PST -08:00, then PDT -07:00)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar

from tests.harness import Clock
from tests.test_flow_oncall import PEOPLE, PLATFORM, say

TOKEN = "cal-9f2b7c1e4d8a"
T0 = datetime(2027, 2, 24, 20, 0, tzinfo=UTC)  # Wed 12:00 PST; DST starts Sun Mar 14
LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def calendar_bot(start_bot, fake_slack, tmp_path):
    def start(**settings):
        channel = fake_slack.fake.create_channel(f"oncall-{len(fake_slack.fake.channels)}")
        rotations = tmp_path / f"rotations-{channel.id}"
        rotations.mkdir()
        (rotations / "people.yaml").write_text(PEOPLE)
        (rotations / "platform.yaml").write_text(PLATFORM.format(channel=channel.id, leads="S0LEADS"))
        return start_bot(clock=Clock(T0), rotations_dir=rotations, **settings)

    return start


def get(bot, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{bot.url}{path}", params=params, timeout=10)


def events(body: bytes) -> list:
    found = Calendar.from_ical(body).walk("VEVENT")
    return sorted(found, key=lambda e: (e.decoded("dtstart"), str(e["summary"])))


def test_without_a_token_the_feeds_are_off(calendar_bot):
    bot = calendar_bot()
    assert get(bot, "/calendar/platform.ics", token="anything").status_code == 404
    assert get(bot, "/calendar/people/alex.ics").status_code == 404


def test_a_wrong_or_missing_token_is_refused(calendar_bot):
    bot = calendar_bot(calendar_token=TOKEN)
    assert get(bot, "/calendar/platform.ics").status_code == 403
    assert get(bot, "/calendar/platform.ics", token=TOKEN[:-1]).status_code == 403
    assert get(bot, "/calendar/people/alex.ics", token=TOKEN + "x").status_code == 403
    assert get(bot, "/calendar/nope.ics", token="wrong").status_code == 403  # names are not probed
    assert get(bot, "/calendar/nope.ics", token=TOKEN).status_code == 404
    assert get(bot, "/calendar/people/nobody.ics", token=TOKEN).status_code == 404


def test_the_rotation_feed_has_twelve_weeks_per_layer_across_dst_with_overrides(calendar_bot):
    bot = calendar_bot(calendar_token=TOKEN)
    say(bot, "override <@U01DAVID> platform 2027-03-03T09:00 to 2027-03-04T09:00", user="U01DAVID")
    r = get(bot, "/calendar/platform.ics", token=TOKEN)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar"), r.text
    cal = Calendar.from_ical(r.content)
    assert [str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")] == ["America/Los_Angeles"]
    found = events(r.content)
    primary = [e for e in found if str(e["summary"]).startswith("platform primary")]
    # 12 weeks from Wed Feb 24 12:00 PST: the running week, 11 more, and the next one begun by Wed
    # May 19 12:00; primary has two more events, the override cutting its week in three.
    assert len([e for e in found if str(e["summary"]).startswith("platform secondary")]) == 13
    assert len(primary) == 15
    override = [e for e in primary if "(override)" in str(e["summary"])]
    assert [(e.decoded("dtstart"), str(e["summary"])) for e in override] == [
        (datetime(2027, 3, 3, 9, tzinfo=LA), "platform primary: david (override)")
    ]
    handoffs = [e.decoded("dtstart") for e in found if "(override)" not in str(e["summary"])][2:]
    assert {(h.hour, h.minute) for h in handoffs} <= {(9, 0)}  # 09:00 local, override edges aside
    offsets = {h.utcoffset() for h in handoffs if h.weekday() == 0}
    assert offsets == {timedelta(hours=-8), timedelta(hours=-7)}, offsets
    assert {e["dtstart"].params.get("TZID") for e in found} == {"America/Los_Angeles"}
    # Fetching again gives the same events under the same UIDs.
    again = events(get(bot, "/calendar/platform.ics", token=TOKEN).content)
    assert [str(e["uid"]) for e in again] == [str(e["uid"]) for e in found]
    assert len({str(e["uid"]) for e in found}) == len(found)


def test_a_person_feed_has_only_their_shifts(calendar_bot):
    bot = calendar_bot(calendar_token=TOKEN)
    say(bot, "override <@U01DAVID> platform 2027-03-03T09:00 to 2027-03-04T09:00", user="U01DAVID")
    r = get(bot, "/calendar/people/david.ics", token=TOKEN)
    assert r.status_code == 200
    summaries = [str(e["summary"]) for e in events(r.content)]
    assert summaries and all(s.endswith(("david", "david (override)")) for s in summaries), summaries
    assert "platform primary: david (override)" in summaries
