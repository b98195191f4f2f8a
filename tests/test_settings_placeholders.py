"""A `.env` copied from `.env.example` and not filled in is refused at start (issue 16, section 4).

`.env.example` ships placeholder credentials (`xoxb-your-bot-token`, `your-signing-secret`,
`change-me`). Started with them, the bot used to run: Slack calls failed with `invalid_auth` at best,
and `ALERTMANAGER_TOKEN=change-me` was a bearer token anyone who read the README could send. Each
placeholder is now refused with a sentence naming the setting. The tests read the real `.env.example`,
so a placeholder added there later is covered (or this test fails and says which one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bot.settings import Settings
from tests.harness import ROOT

EXAMPLE = ROOT / ".env.example"


def example_values() -> dict[str, str]:
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def secret_settings() -> list[str]:
    """Every credential setting (a SecretStr field), by its environment name."""
    return sorted(
        name.upper()
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ()))
    )


SHIPPED = {name: value for name, value in example_values().items() if name in secret_settings() and value}


def test_the_example_ships_the_placeholders_this_test_knows():
    # If .env.example changes its placeholders, the refusal must cover the new ones (the tests below
    # take them from the file itself); this pins what the file holds today.
    assert SHIPPED == {
        "SLACK_BOT_TOKEN": "xoxb-your-bot-token",
        "SLACK_SIGNING_SECRET": "your-signing-secret",
        "ALERTMANAGER_TOKEN": "change-me",
    }


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_placeholder_from_the_example_is_refused_naming_its_setting(name):
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **{name.lower(): SHIPPED[name]})
    message = str(caught.value)
    assert f"{name} is still the placeholder from .env.example" in message, message
    assert SHIPPED[name] not in message  # a secret setting's value is never echoed


@pytest.mark.parametrize("name", secret_settings())
@pytest.mark.parametrize("value", ["change-me", " Change-Me ", "your-signing-secret", "xoxb-your-bot-token"])
def test_no_credential_setting_takes_a_placeholder(name, value):
    with pytest.raises(ValidationError, match=f"{name} is still the placeholder"):
        Settings(_env_file=None, **{name.lower(): value})


def test_a_placeholder_inside_a_list_of_secrets_is_refused():
    with pytest.raises(ValidationError, match="PAGERDUTY_WEBHOOK_SECRET is still the placeholder"):
        Settings(_env_file=None, pagerduty_webhook_secret="real-secret-1,change-me")


def test_real_values_and_blanks_pass():
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-1234-5678-abcdef",
        slack_signing_secret="8f742231b10e8888abcd99yyyzzz85a5",
        alertmanager_token="change-me-not",  # only the exact placeholder is refused
    )
    assert settings.alertmanager_token is not None
    Settings(_env_file=None)  # nothing set at all still starts (Slack calls wait in the outbox)


def test_serve_with_the_example_copied_as_is_stops_with_one_sentence_per_setting(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / ".env")
    env = {k: v for k, v in os.environ.items() if k not in secret_settings()}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", "0"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    for name in SHIPPED:
        assert f"{name} is still the placeholder from .env.example" in proc.stderr, proc.stderr[-2000:]
    assert not Path(tmp_path / "incidentbot.db").exists()  # refused before anything was touched
