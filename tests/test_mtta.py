"""MTTA is measured to the first acknowledgement (issue 16, 1.7).

Found on a running bot: PagerDuty un-acknowledges an incident when the acknowledgement times out;
the bot cleared `acknowledged_at`, so the post-mortem and `incidentbot report` measured the time to
acknowledge to the second acknowledgement (or showed none). The first one is kept, also across a
reopen, and both read it.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot import cli
from tests.fakepagerduty import DEFAULT_TOKEN
from tests.harness import ROOT, Clock, join_channel, processed
from tests.test_flow_commands import incident_channel, slash
from tests.test_flow_pagerduty import PD_ID, incidents, open_from_pagerduty, pd_event, post_pd

FIVE_MINUTES = timedelta(minutes=5)


@pytest.fixture
def offline(monkeypatch, database_url, tmp_path):
    """`incidentbot postmortem` and `report` as people run them, on the bot's database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ROTATIONS_DIR", str(ROOT / "rotations"))
    monkeypatch.setenv("RUNBOOKS_DIR", str(ROOT / "runbooks"))
    monkeypatch.setenv("PAGERDUTY_API_TOKEN", DEFAULT_TOKEN)
    monkeypatch.chdir(tmp_path)  # no stray .env


def postmortem_text(capsys, tmp_path, incident_id: int) -> str:
    assert cli.main(["postmortem", str(incident_id), "--out", str(tmp_path / "pm")]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    return open(path, encoding="utf-8").read()


def report_mtta(capsys) -> dict:
    assert cli.main(["report", "--since", "1d", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)["mtta"]


def tta_cell(text: str) -> str:
    found = re.search(r"^\| Time to acknowledge \| (.*?) from declaration", text, re.MULTILINE)
    assert found, text
    return found.group(1)


def test_pagerduty_unacknowledged_then_acknowledged_again_keeps_the_first(
    start_bot, fake_slack, fake_pagerduty, offline, capsys, tmp_path
):
    bot = start_bot(clock=Clock())
    incident, _ = open_from_pagerduty(bot, fake_slack)
    bot.clock.advance(minutes=5)
    assert processed(bot, post_pd(bot, pd_event("incident.acknowledged")))["decision"] == "changed"
    bot.clock.advance(minutes=5)
    assert processed(bot, post_pd(bot, pd_event("incident.unacknowledged")))["decision"] == "changed"
    bot.clock.advance(minutes=10)
    second = pd_event("incident.acknowledged", "01EVACK-SECOND")
    assert processed(bot, post_pd(bot, second))["decision"] == "changed"
    bot.clock.advance(minutes=10)
    assert processed(bot, post_pd(bot, pd_event("incident.resolved")))["decision"] == "changed"

    (stored,) = incidents(bot)
    assert stored.external_id == PD_ID
    first = stored.first_acknowledged_at - stored.created_at
    assert FIVE_MINUTES <= first < FIVE_MINUTES + timedelta(minutes=1)
    assert stored.acknowledged_at - stored.created_at >= timedelta(minutes=20)

    assert tta_cell(postmortem_text(capsys, tmp_path, incident.id)).startswith("5m")
    mtta = report_mtta(capsys)
    assert mtta["count"] == 1
    assert 300 <= mtta["median_seconds"] < 360, mtta


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reopened_and_acknowledged_again_keeps_the_first(start_bot, fake_slack, offline, capsys, tmp_path):
    bot = start_bot(clock=Clock())
    slash(bot, "declare Disk full on db-1 sev2")
    chan = incident_channel(fake_slack.fake)
    bot.clock.advance(minutes=5)
    slash(bot, "ack", channel=chan.id)
    slash(bot, "resolve fixed", channel=chan.id)
    bot.clock.advance(minutes=30)
    assert "reopened" in slash(bot, "reopen", channel=chan.id)  # by its lead, who declared it
    join_channel(bot, fake_slack.fake, chan.id, "U02SARAH")  # members of the channel may acknowledge
    slash(bot, "ack", channel=chan.id, user="U02SARAH")
    slash(bot, "resolve fixed again", channel=chan.id)

    (stored,) = incidents(bot)
    assert stored.acknowledged_by == "slack:U02SARAH"
    assert tta_cell(postmortem_text(capsys, tmp_path, stored.id)).startswith("5m")
    assert 300 <= report_mtta(capsys)["median_seconds"] < 360
