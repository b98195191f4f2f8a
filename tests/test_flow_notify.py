"""Pages that wake people up, through the real bot over HTTP: personal notification rules, Do Not
Disturb, ntfy and email against local fakes, acknowledge links, failures falling through."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.fakenotify import FakeNtfy, FakeSMTP
from tests.harness import wait_until
from tests.notify_support import (
    T0,
    ack_link_of,
    ack_path,
    fire,
    notifications,
    notify_timers,
    post_ack,
    start,
    timeline,
    wait_line,
)


@pytest.fixture
def ntfy():
    with FakeNtfy() as fake:
        yield fake


@pytest.fixture
def smtp(tmp_path):
    with FakeSMTP(tmp_path, tls=True) as fake:
        yield fake


def test_primary_in_dnd_is_reached_by_ntfy_at_once_and_by_email_after_the_rules_delay(
    start_bot, fake_slack, ntfy, smtp, tmp_path
):
    # alex: Slack at 0m, ntfy at 1m, email at 3m; asleep in Do Not Disturb from 22:00 to 08:00.
    night = T0.timestamp()
    fake_slack.fake.set_dnd("U01ALEX", start=night - 5 * 3600, end=night + 5 * 3600)
    bot = start(start_bot, tmp_path, ntfy=ntfy, smtp=smtp)
    incident = fire(bot, fake_slack)

    # The DM still goes out (it is there in the morning), and ntfy follows at once, not at 1m.
    published = ntfy.wait_for(1, topic="alex-pages")[0]
    assert fake_slack.fake.calls_to("dnd.info")[0].args["user"] == "U01ALEX"
    assert published["priority"] == 5  # SEV1
    assert published["title"].startswith("[SEV1] Incident #")
    labels = [a["label"] for a in published["actions"]]
    assert labels == ["Acknowledge", "Open"]
    assert published["actions"][0]["method"] == "POST"
    wait_line(fake_slack, r"is in Do Not Disturb: trying ntfy")
    dnd = timeline(bot, incident, "dnd")
    assert [e.text for e in dnd] == ["@alex is in Do Not Disturb: trying ntfy"]
    wait_until(lambda: timeline(bot, incident, "notified"), 10, what="ntfy attempt on the timeline")
    assert not smtp.messages

    # The email rule keeps its own time: 3 minutes after the page, not 3 after ntfy.
    bot.clock.advance(minutes=2, seconds=50)
    bot.tick()
    assert not smtp.messages
    bot.clock.advance(seconds=15)
    bot.tick()
    mail = smtp.wait_for(1)[0]
    assert mail.tls, "STARTTLS was offered, so the page went over TLS"
    assert mail.recipients == ["alex@example.com"]
    assert "[SEV1]" in mail.message["Subject"]
    assert "Acknowledge" in mail.part("html") and "/ack/" in mail.part("plain")
    wait_until(lambda: notifications(bot)[-1].status == "sent", 10, what="the email recorded")
    methods = [(n.rule, n.method, n.status) for n in notifications(bot)]
    assert methods == [(0, "slack", "sent"), (1, "ntfy", "sent"), (2, "email", "sent")]
    assert len(ntfy.accepted()) == 1


def test_ack_link_acknowledges_once_and_get_changes_nothing(start_bot, fake_slack, ntfy, tmp_path):
    people = """
people:
  alex: {slack: U01ALEX, ntfy: alex-pages, notify: [{after: 0m, via: [slack, ntfy]}, {after: 5m, via: ntfy}]}
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
"""
    bot = start(start_bot, tmp_path, ntfy=ntfy, people=people)
    incident = fire(bot, fake_slack)
    path = ack_path(ack_link_of(ntfy.wait_for(1)[0]))

    # GET (a mail scanner, a link preview) shows the page and changes nothing.
    page = httpx.get(f"{bot.url}{path}", timeout=10)
    assert page.status_code == 200
    assert '<form method="post">' in page.text and "Weaviate" in page.text
    assert not timeline(bot, incident, "status")

    first = post_ack(bot, path)
    assert first.status_code == 200, first.text
    assert "You acknowledged incident" in first.text
    status = timeline(bot, incident, "status")
    assert [e.text for e in status] == ["triggered -> acknowledged (via acknowledge link)"]
    assert status[0].data["via"] == "ack_link" and status[0].actor == "slack:U01ALEX"
    wait_line(fake_slack, r"Acknowledged by <@U01ALEX> .*\(via acknowledge link\)")

    # The second use says so and changes nothing; the pending ntfy rule never fires.
    again = post_ack(bot, path)
    assert again.status_code == 409 and "already acknowledged" in again.text.lower()
    assert len(timeline(bot, incident, "status")) == 1
    assert all(t.status == "cancelled" for t in notify_timers(bot) if t.key.endswith("r1"))
    bot.clock.advance(minutes=10)
    bot.tick()
    assert len(ntfy.accepted()) == 1

    # `incidentbot report` counts where acknowledgements came from.
    from bot.core.reports import report
    from bot.service.reports import incidents_since

    r = report(incidents_since(bot.ctx, T0 - timedelta(days=1)), T0 - timedelta(days=1), bot.clock())
    assert [(a.via, a.time_to_ack.count) for a in r.acknowledged_via] == [("ack_link", 1)]


def test_forged_expired_and_resolved_ack_links_get_a_clear_page(start_bot, fake_slack, ntfy, tmp_path):
    from bot.core.ack_tokens import AckTarget, make_token

    people = """
people:
  alex: {slack: U01ALEX, ntfy: alex-pages, notify: [{after: 0m, via: [slack, ntfy]}]}
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
"""
    bot = start(start_bot, tmp_path, ntfy=ntfy, people=people)
    incident = fire(bot, fake_slack)
    path = ack_path(ack_link_of(ntfy.wait_for(1)[0]))
    token = path.removeprefix("/ack/")

    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (forged, "nonsense", "a." * 300, "%00"):
        r = post_ack(bot, f"/ack/{bad}")
        assert r.status_code == 404, (bad, r.status_code)
        assert "not valid" in r.text
    other_key = make_token("another-secret", AckTarget("page", 1, 0, T0.replace(year=2027)))
    assert post_ack(bot, f"/ack/{other_key}").status_code == 404

    bot.clock.advance(hours=25)
    expired = post_ack(bot, path)
    assert expired.status_code == 410 and "expired" in expired.text
    bot.clock.advance(hours=-25)

    from bot.service import responders

    responders.resolve(bot.ctx, incident, "slack:U01ALEX")
    resolved = post_ack(bot, path)
    assert resolved.status_code == 410 and "already resolved" in resolved.text
    assert not [e for e in timeline(bot, incident, "status") if e.data.get("to") == "acknowledged"]

    # Reopened: paging starts again with new pages; the old link does not acknowledge the new cycle.
    from bot.service import lifecycle

    lifecycle.reopen(bot.ctx, incident, "slack:U01ALEX")
    stale = post_ack(bot, path)
    assert stale.status_code == 410 and "reopened after this page" in stale.text
    assert not [e for e in timeline(bot, incident, "status") if e.data.get("to") == "acknowledged"]


def test_ntfy_refusing_falls_through_to_the_next_rule_at_once(start_bot, fake_slack, ntfy, smtp, tmp_path):
    people = """
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    ntfy: alex-pages
    notify: [{after: 0m, via: [slack, ntfy]}, {after: 10m, via: email}]
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
"""
    ntfy.protect("alex-pages", "a-token-we-do-not-have")  # the topic is reserved: 403
    bot = start(start_bot, tmp_path, ntfy=ntfy, smtp=smtp, people=people)
    incident = fire(bot, fake_slack)

    # No 10-minute wait: the email goes out as soon as ntfy said no.
    mail = smtp.wait_for(1)[0]
    assert mail.recipients == ["alex@example.com"]
    line = wait_line(fake_slack, r"Could not reach <@U01ALEX> by ntfy")[0]
    assert "HTTP 403: forbidden (code 40301)" in line and "trying email now" in line
    failed = timeline(bot, incident, "notify_failed")
    assert failed[0].data["method"] == "ntfy" and failed[0].data["next"] == "email"
    assert [e.data["via"] for e in timeline(bot, incident, "notify_rule")] == [["email"]]
    assert [n.status for n in notifications(bot)] == ["sent", "failed", "sent"]


def test_ntfy_down_is_retried_inside_the_rule_window_then_the_next_rule(
    start_bot, fake_slack, ntfy, smtp, tmp_path
):
    people = """
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    ntfy: alex-pages
    notify: [{after: 0m, via: ntfy}, {after: 1m, via: email}]
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
"""
    ntfy.fail(503, times=1000)
    bot = start(start_bot, tmp_path, ntfy=ntfy, smtp=smtp, people=people)
    incident = fire(bot, fake_slack)
    wait_until(lambda: len(ntfy.publishes) >= 2, 15, what="ntfy retried after a 503")
    assert not smtp.messages
    bot.clock.advance(minutes=1, seconds=5)
    bot.tick()
    smtp.wait_for(1)
    # The window is over: ntfy is given up on (said once), and the person is not left unreachable.
    wait_line(fake_slack, r"Could not reach .* by ntfy: (gave up|HTTP 503)", 20)
    assert len(timeline(bot, incident, "notify_failed")) == 1
    assert not timeline(bot, incident, "page_failed")


def test_every_rule_failing_fails_the_page_and_brings_the_next_step_forward(
    start_bot, fake_slack, ntfy, smtp, tmp_path
):
    people = """
people:
  alex:
    email: alex@example.com
    ntfy: alex-pages
    notify: [{after: 0m, via: ntfy}, {after: 5m, via: email}]
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
"""
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    ntfy.protect("alex-pages", "nope")
    smtp.refuse(550, "5.1.1 <alex@example.com>: mailbox unknown")
    bot = start(start_bot, tmp_path, ntfy=ntfy, smtp=smtp, people=people)
    incident = fire(bot, fake_slack)
    wait_line(fake_slack, r"Could not page alex .*email: SMTP 550")
    # Nobody on step 1 can be reached: step 2 (sarah, due at 15m) is paged now.
    wait_until(
        lambda: any(
            "Paging sarah" in e.text and "could be paged" in e.text
            for e in timeline(bot, incident, "escalation")
        ),
        10,
        what="step 2 brought forward",
    )


def test_acknowledging_in_slack_stops_every_pending_notification(start_bot, fake_slack, ntfy, smtp, tmp_path):
    from bot.service import responders

    bot = start(start_bot, tmp_path, ntfy=ntfy, smtp=smtp)
    incident = fire(bot, fake_slack)
    wait_until(lambda: [n for n in notifications(bot) if n.status == "sent"], 10, what="the DM")
    assert [t.status for t in notify_timers(bot)] == ["fired", "pending", "pending"]
    responders.acknowledge(bot.ctx, incident, "slack:U01ALEX")
    assert [t.status for t in notify_timers(bot)] == ["fired", "cancelled", "cancelled"]
    bot.clock.advance(minutes=30)
    bot.tick()
    bot.tick()
    assert not ntfy.publishes and not smtp.messages
    assert timeline(bot, incident, "status")[0].data["via"] == "slack"


def test_without_the_dnd_scope_the_page_goes_out_and_the_rules_keep_their_times(
    start_bot, fake_slack, ntfy, tmp_path
):
    """An install not yet re-authorized for dnd:read: dnd.info answers missing_scope, which never
    delays or stops the page; the next rule simply comes at its own time."""
    import yaml

    from tests.harness import ROOT

    manifest = yaml.safe_load((ROOT / "slack-app-manifest.yaml").read_text())
    fake_slack.fake.grant_scopes(set(manifest["oauth_config"]["scopes"]["bot"]) - {"dnd:read"})
    fake_slack.fake.set_dnd("U01ALEX", start=T0.timestamp() - 60, end=T0.timestamp() + 3600)
    bot = start(start_bot, tmp_path, ntfy=ntfy)
    incident = fire(bot, fake_slack)
    wait_until(lambda: [n for n in notifications(bot) if n.method == "slack" and n.status == "sent"], 10)
    assert fake_slack.fake.calls_to("dnd.info")[0].response["error"] == "missing_scope"
    assert not timeline(bot, incident, "dnd") and not ntfy.publishes
    bot.clock.advance(minutes=1, seconds=1)
    bot.tick()
    assert ntfy.wait_for(1)[0]["topic"] == "alex-pages"


def test_dnd_is_not_asked_when_slack_is_the_only_rule(start_bot, fake_slack, ntfy, tmp_path):
    people = (
        "people:\n  alex: {slack: U01ALEX}\n  sarah: {email: sarah@example.com}\n  mike: {slack: U03MIKE}\n"
    )
    bot = start(start_bot, tmp_path, ntfy=ntfy, people=people)
    fire(bot, fake_slack)
    wait_until(lambda: [n for n in notifications(bot) if n.status == "sent"], 10, what="the DM")
    assert not fake_slack.fake.calls_to("dnd.info")  # nothing to move on to: no call, as before
