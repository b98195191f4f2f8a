"""Setting pages up: `incidentbot check` on contact methods and providers, `incidentbot notify-test`
and `/oncall test-page` against the provider fakes, a test confirmed through its ack link."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from tests.fakenotify import FakeNtfy, FakeSMTP, FakeWebhookReceiver
from tests.harness import slack_headers, slash_command_body, wait_until
from tests.notify_support import PUBLIC, SECRET, ack_path, settings

ROOT = Path(__file__).resolve().parents[1]
ROTATION = (ROOT / "tests/fixtures/rotations/platform.yaml").read_text()
PEOPLE = """\
defaults:
  notify:
    - {after: 0m, via: slack}
    - {after: 5m, via: [slack, email]}
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    phone: "+14155550100"
    pushover: uQiRzpo4DXghDmr9QzzfQu27cmVRsG
    ntfy: alex-pages
    webhook: https://hooks.example.com/page-alex
    notify:
      - {after: 0m, via: [slack, ntfy]}
      - {after: 2m, via: sms, severity: [SEV1]}
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
"""


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def write(people: str = PEOPLE, **env: str) -> Path:
        directory = tmp_path / "rotations"
        directory.mkdir(exist_ok=True)
        (directory / "people.yaml").write_text(people)
        (directory / "platform.yaml").write_text(ROTATION)
        monkeypatch.setenv("ROTATIONS_DIR", str(directory))
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return directory

    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("RUNBOOKS_DIR", str(ROOT / "runbooks"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    for key in ("PAGERDUTY_API_TOKEN", "SMTP_URL", "SMTP_FROM", "SECRET_KEY", "PUBLIC_URL", "NTFY_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "PUSHOVER_APP_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return write


@pytest.mark.parametrize(
    ("field", "bad", "fragment"),
    [
        ("phone", '"555-0100"', "is not an E.164 number"),
        ("email", "alex@", "is not an email address"),
        ("ntfy", "alex pages!", "may hold only letters"),
        ("ntfy", "http://ntfy.example.com/alex", "must be https://<server>/<topic>"),
        ("webhook", "ftp://hooks.example.com/x", "must be an http(s) URL"),
        ("pushover", "short", "30-character user key"),
    ],
)
def test_check_names_bad_contact_methods_with_file_and_line(configured, capsys, field, bad, fragment) -> None:
    line = next(i for i, text in enumerate(PEOPLE.splitlines(), 1) if text.strip().startswith(f"{field}:"))
    people = re.sub(rf"(\n    {field}: ).*", lambda m: m.group(1) + bad, PEOPLE, count=1)
    configured(people, SMTP_URL="smtp://127.0.0.1:2525", SMTP_FROM="bot@example.com", SECRET_KEY="k")
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert f"rotations/people.yaml:{line}: person 'alex': `{field}`" in err and fragment in err, err


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("{after: 2m, via: pager}", "unknown `via` pager"),
        ("{after: 2m, via: sms, severity: [SEV9]}", "unknown severity SEV9"),
        ("{after: 2m}", "missing required key 'via'"),
        ("{after: soon, via: sms}", "rule `after`"),
    ],
)
def test_check_names_bad_rules_with_their_line(configured, capsys, rule, fragment) -> None:
    configured(PEOPLE.replace("{after: 2m, via: sms, severity: [SEV1]}", rule))
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert "rotations/people.yaml:15:" in err and fragment in err, err


def test_check_names_a_rule_using_a_method_the_person_lacks(configured, capsys) -> None:
    configured(PEOPLE.replace('    phone: "+14155550100"\n', "    display_name: Alex\n"))
    assert main(["check"]) == 1
    assert (
        "people.yaml:15: person 'alex': `notify` uses sms but `phone` is not set" in capsys.readouterr().err
    )


def test_check_names_methods_whose_provider_is_not_configured(configured, capsys) -> None:
    configured()  # no SMTP_URL (the defaults use email), no Twilio settings
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert (
        "rotations/people.yaml:4: `defaults`: `notify` uses email, which needs SMTP_URL and SMTP_FROM" in err
    )
    assert (
        "rotations/people.yaml:15: person 'alex': `notify` uses sms, which needs TWILIO_ACCOUNT_SID, "
        "TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER" in err
    )
    assert (
        "PUBLIC_URL/SECRET_KEY: warning: not set: pages by email, ntfy or webhook carry no acknowledge link"
        "; SMS replies (PUBLIC_URL) and keys pressed during calls (both) cannot reach the bot" in err
    )


def test_check_names_pushover_without_its_token_and_bad_twilio_settings(configured, capsys) -> None:
    people = PEOPLE.replace("via: sms, severity: [SEV1]", "via: [sms, pushover]")
    configured(
        people,
        SMTP_URL="smtp://127.0.0.1:2525",
        SMTP_FROM="bot@example.com",
        TWILIO_ACCOUNT_SID="AC123",
        TWILIO_AUTH_TOKEN="t0k3n-for-check",
        TWILIO_FROM_NUMBER="555-0100",
    )
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert "person 'alex': `notify` uses pushover, which needs PUSHOVER_APP_TOKEN" in err
    assert "TWILIO_ACCOUNT_SID must be the account SID: AC followed by 32 hex digits" in err
    assert err.count("TWILIO_ACCOUNT_SID must be") == 1  # SMS and voice share it: said once
    assert "t0k3n-for-check" not in err
    configured(
        people,
        SMTP_URL="smtp://127.0.0.1:2525",
        SMTP_FROM="bot@example.com",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_FROM_NUMBER="+15005550006",
        PUSHOVER_APP_TOKEN="azGDORePK8gMaC0QOYAMyEEuzJnyUi",
        PUBLIC_URL=PUBLIC,
        SECRET_KEY=SECRET,
    )
    assert main(["check"]) == 0, capsys.readouterr().err


def test_check_refuses_two_people_with_one_phone(configured, capsys) -> None:
    configured(
        PEOPLE.replace(
            "  sarah: {email: sarah@example.com}", '  sarah: {email: s@example.com, phone: "+14155550100"}'
        )
    )
    assert main(["check"]) == 1
    assert "person 'sarah' has the same phone as 'alex'" in capsys.readouterr().err


def test_check_passes_once_providers_are_configured(configured, capsys) -> None:
    configured(
        PEOPLE.replace("via: sms", "via: email"),
        SMTP_URL="smtps://bot:pw@mail.example.com",
        SMTP_FROM="bot@example.com",
        PUBLIC_URL=PUBLIC,
        SECRET_KEY=SECRET,
    )
    assert main(["check"]) == 0, capsys.readouterr().err
    bad = "not-a-url"
    configured(PEOPLE.replace("via: sms", "via: email"), SMTP_URL=bad, SMTP_FROM="bot@example.com")
    assert main(["check"]) == 1
    assert "SMTP_URL must be smtp://" in capsys.readouterr().err


def test_the_shipped_rotations_stay_valid_without_provider_settings(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROTATIONS_DIR", str(ROOT / "rotations"))
    monkeypatch.setenv("RUNBOOKS_DIR", str(ROOT / "runbooks"))
    for key in ("SMTP_URL", "SECRET_KEY", "PUBLIC_URL", "PAGERDUTY_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    assert main(["check"]) == 0, capsys.readouterr().err


def test_notify_test_reports_each_providers_answer(configured, capsys, tmp_path, fake_slack) -> None:
    people = """\
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    ntfy: alex-pages
    webhook: {hook}
  sarah: {{email: sarah@example.com}}
  mike: {{slack: U03MIKE}}
"""
    with FakeNtfy() as ntfy, FakeSMTP(tmp_path) as smtp, FakeWebhookReceiver(SECRET) as hook:
        smtp.refuse(550, "5.1.1 mailbox unknown")
        configured(
            people.format(hook=hook.url("alex")),
            NTFY_URL=ntfy.url,
            SMTP_URL=smtp.url(),
            SMTP_FROM="bot@example.com",
            SECRET_KEY=SECRET,
            PUBLIC_URL=PUBLIC,
            SLACK_API_URL=fake_slack.url,
            SLACK_BOT_TOKEN="xoxb-test",
        )
        assert main(["notify-test", "alex"]) == 1  # one provider refused
        out = capsys.readouterr().out
        assert re.search(r"slack +ok +Slack posted the DM", out), out
        assert re.search(r"email +FAILED +SMTP 550: 5.1.1 mailbox unknown", out), out
        assert re.search(r"ntfy +ok +ntfy accepted it \(message \w+\)", out), out
        assert re.search(r"webhook +ok +the webhook answered HTTP 200", out), out
        assert "Acknowledge each test where it reached you" in out
        published = ntfy.accepted()[0]
        assert published["title"] == "Test page for alex by ntfy" and published["tags"] == ["test_tube"]
        delivery = hook.wait_for(1)[0]
        assert delivery.signed and delivery.body["type"] == "test" and delivery.body["incident"] is None

        assert main(["notify-test", "alex", "--via", "ntfy"]) == 0
        assert "slack" not in capsys.readouterr().out
        assert main(["notify-test", "alex", "--via", "sms"]) == 2  # a usage error, one line
        assert "alex has no address for sms" in capsys.readouterr().err


def test_oncall_test_page_sends_each_method_and_the_ack_link_confirms_it(
    start_bot, fake_slack, tmp_path
) -> None:
    people = """
people:
  alex: {slack: U01ALEX, ntfy: alex-pages}
  sarah: {email: sarah@example.com}
  mike:  {slack: U03MIKE}
"""
    with FakeNtfy() as ntfy:
        bot = start_bot(**settings(tmp_path, ntfy=ntfy, people=people))
        body = slash_command_body("/oncall", "test-page", user="U01ALEX")
        r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
        assert r.status_code == 200 and "Sending a test page by slack, ntfy" in r.text, r.text
        test = ntfy.wait_for(1)[0]
        fake = fake_slack.fake

        def dm_texts() -> list[str]:
            return [c.args.get("text", "") for c in fake.calls_to("chat.postMessage") if c.ok]

        wait_until(lambda: any("Test page by ntfy: ntfy accepted it" in t for t in dm_texts()), 10)
        wait_until(lambda: any("This is a TEST page" in t for t in dm_texts()), 10)
        link = next(a["url"] for a in test["actions"] if a["label"] == "Acknowledge")
        page = httpx.get(f"{bot.url}{ack_path(link)}", timeout=10)
        assert page.status_code == 200 and "test page for alex by ntfy" in page.text.lower()
        first = httpx.post(f"{bot.url}{ack_path(link)}", timeout=10)
        assert first.status_code == 200 and "works end to end" in first.text
        assert httpx.post(f"{bot.url}{ack_path(link)}", timeout=10).status_code == 409
        wait_until(lambda: any("ntfy test page reached alex" in t for t in dm_texts()), 10)

        unknown = slash_command_body("/oncall", "test-page", user="U0NOBODY")
        r = httpx.post(f"{bot.url}/slack/events", content=unknown, headers=slack_headers(unknown), timeout=10)
        assert "not in rotations/people.yaml" in json.loads(r.text)["text"]
