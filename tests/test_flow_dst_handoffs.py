"""Issue 21 through the real endpoints: `/oncall` answers and pages (first step and a later
escalation step) name the person the clock-time handoff rule puts on call, across DST changes.

Each rotation is chosen so the old rule named someone else at the same instant:
  1. a 12h Chicago rota handed off at 07:00/19:00 after the clocks went back (elapsed time);
  2. a daily 02:30 handoff on the spring-forward night happened at 03:30 (the old offset), not 03:00;
  3. a daily rotation starting at the second 01:30 in New York (written with -05:00) began an hour early.
A length with no fixed local time (36h) is a logged warning: the bot still starts and pages.
"""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.harness import Clock, post_alertmanager, wait_until
from tests.test_flow_commands import slash
from tests.test_flow_paging import dms_to

FIXTURES = Path(__file__).parent / "fixtures"
PEOPLE = "people:\n  wei: {slack: U0WEI}\n  olga: {slack: U0OLGA}\n"
STEPS = """
escalation:
  steps:
    - {after: 0m,  notify: primary}
    - {after: 15m, notify: primary}
  repeat: 0
"""


def oncall(bot) -> str:
    """`/oncall` with each `<!date^...|fallback>` as its fallback: Slack shows every reader the time
    in their own zone (issue 17, item 10); the fallback is the rotation's zone, which these tests
    check. (Changed on purpose from comparing the answer's text as it was.)"""
    return re.sub(r"<!date\^[^|>]*\|([^>]*)>", r"\1", slash(bot, "", command="/oncall"))


def rotations_dir(tmp_path: Path, rotation: str) -> Path:
    path = tmp_path / "rotations"
    path.mkdir()
    (path / "people.yaml").write_text(PEOPLE)
    (path / "team.yaml").write_text(rotation + STEPS)
    return path


def page(bot) -> None:
    payload = json.loads((FIXTURES / "alertmanager-0.25" / "firing-single-alert.json").read_text())
    r = post_alertmanager(bot.url, payload)
    assert r.status_code == 202, r.text


FOLLOW_THE_SUN = """
rotation:
  name: data-platform
  timezone: America/Chicago
  start: 2026-10-26T08:00
  shift: 12h
  layers: {primary: [wei, olga]}
"""


def test_twelve_hour_rota_keeps_its_local_handoff_times_after_the_clocks_go_back(
    start_bot, fake_slack, tmp_path
):
    # 2026-11-03 07:50 CST: olga's night shift (20:00-08:00) still runs; the elapsed rule had
    # handed over to wei at 07:00 CST (13:00 UTC) since the change on Nov 1.
    fake = fake_slack.fake
    bot = start_bot(
        clock=Clock(datetime(2026, 11, 3, 13, 50, tzinfo=UTC)),
        rotations_dir=rotations_dir(tmp_path, FOLLOW_THE_SUN),
    )
    text = oncall(bot)
    assert "primary: <@U0OLGA> until Tue Nov 03 08:00 CST" in text, text

    page(bot)
    wait_until(lambda: dms_to(fake, "U0OLGA"), 10, what="page DM to olga, on call until 08:00 CST")
    assert not dms_to(fake, "U0WEI")
    # The 15-minute step falls at 08:05 CST, after the 08:00 handoff: it pages wei.
    bot.clock.advance(minutes=15)
    wait_until(lambda: dms_to(fake, "U0WEI"), 10, what="escalation step paging wei after 08:00 CST")


SPRING_GAP = """
rotation:
  name: night-desk
  timezone: America/Chicago
  start: 2027-03-01T02:30
  shift: 1d
  layers: {primary: [wei, olga]}
"""


def test_handoff_in_the_skipped_hour_happens_when_the_clock_jumps(start_bot, fake_slack, tmp_path):
    # 2027-03-14: Chicago jumps from 02:00 CST to 03:00 CDT, so 02:30 does not exist. The
    # handoff happens at 03:00 CDT (08:00 UTC); the old rule put it at 03:30 CDT.
    fake = fake_slack.fake
    bot = start_bot(
        clock=Clock(datetime(2027, 3, 14, 7, 50, tzinfo=UTC)),
        rotations_dir=rotations_dir(tmp_path, SPRING_GAP),
    )
    text = oncall(bot)
    assert "primary: <@U0WEI> until Sun Mar 14 03:00 CDT" in text, text

    bot.clock.advance(minutes=15)  # 03:05 CDT: olga's day has begun
    text = oncall(bot)
    assert "primary: <@U0OLGA> until Mon Mar 15 02:30 CDT" in text, text
    page(bot)
    wait_until(lambda: dms_to(fake, "U0OLGA"), 10, what="page DM to olga")
    assert not dms_to(fake, "U0WEI")


SECOND_ONE_THIRTY = """
rotation:
  name: ny
  timezone: America/New_York
  start: "2026-11-01T01:30-05:00"
  shift: 1d
  layers: {primary: [wei, olga]}
"""


@pytest.mark.parametrize("shift", ["1d", "1w", "12h"])
def test_start_written_in_the_repeated_hour_starts_at_the_instant_written(
    start_bot, fake_slack, tmp_path, shift
):
    # 01:10 EST on 2026-11-01 (06:10 UTC) is after the first 01:30 but before the second, the
    # instant written: shift -1 (olga) still runs. The old rule started wei's shift at 01:30 EDT.
    fake = fake_slack.fake
    bot = start_bot(
        clock=Clock(datetime(2026, 11, 1, 6, 10, tzinfo=UTC)),
        rotations_dir=rotations_dir(tmp_path, SECOND_ONE_THIRTY.replace("shift: 1d", f"shift: {shift}")),
    )
    text = oncall(bot)
    assert "primary: <@U0OLGA> until Sun Nov 01 01:30 EST" in text, text
    page(bot)
    wait_until(lambda: dms_to(fake, "U0OLGA"), 10, what="page DM to olga")
    assert not dms_to(fake, "U0WEI")


def test_a_shift_with_no_fixed_local_time_is_logged_and_the_bot_still_pages(
    start_bot, fake_slack, tmp_path, caplog
):
    # 36h without `handoff: elapsed`: `incidentbot check` warns; the bot starts and pages anyway,
    # with elapsed-time shifts from 08:00 CDT (13:00 UTC): shift 5 (olga) runs Nov 3 01:00-Nov 4 13:00 UTC.
    fake = fake_slack.fake
    caplog.set_level("WARNING", logger="bot.wiring")
    bot = start_bot(
        clock=Clock(datetime(2026, 11, 3, 13, 50, tzinfo=UTC)),
        rotations_dir=rotations_dir(tmp_path, FOLLOW_THE_SUN.replace("shift: 12h", "shift: 36h")),
    )
    assert any("rotation warning" in r.getMessage() and "36h" in r.getMessage() for r in caplog.records)
    assert "primary: <@U0OLGA> until Wed Nov 04 07:00 CST" in oncall(bot)
    page(bot)
    wait_until(lambda: dms_to(fake, "U0OLGA"), 10, what="page DM to olga")
