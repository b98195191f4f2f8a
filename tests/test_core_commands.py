import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.commands import SUBCOMMANDS, declare_args, help_text, mention, parse, severity
from bot.core.errors import BadInput
from bot.core.incident import Severity


def test_parse_words():
    assert parse("sev 2") == parse("SEV   2").__class__("sev", "2")
    assert parse("note  the DB is back ").text == "the DB is back"
    assert parse("").name == "help"
    unknown = parse("frobnicate now")
    assert unknown.name == "help" and unknown.unknown == "frobnicate"
    assert "Unknown subcommand `frobnicate`" in help_text(unknown.unknown)


def test_help_lists_every_subcommand_once():
    text = help_text()
    for usage, _, _ in SUBCOMMANDS.values():
        assert text.count(f"`/incident {usage}`") == 1


@pytest.mark.parametrize(
    ("text", "sev"), [("1", Severity.SEV1), ("sev3", Severity.SEV3), ("SEV2", Severity.SEV2)]
)
def test_severity(text, sev):
    assert severity(text) is sev


@pytest.mark.parametrize("bad", ["4", "0", "high", "", "sev"])
def test_bad_severity(bad):
    with pytest.raises(BadInput):
        severity(bad)


def test_declare_args():
    assert declare_args("Checkout is down sev1") == ("Checkout is down", Severity.SEV1)
    assert declare_args("Checkout is down") == ("Checkout is down", Severity.SEV2)
    assert declare_args("Payments 3 regions") == ("Payments 3 regions", Severity.SEV2)
    with pytest.raises(BadInput):
        declare_args("sev1")


def test_mentions():
    assert mention("<@U123ABC|alex>") == "U123ABC" and mention("<@W9>") == "W9"
    assert mention("alex") is None and mention("<!channel>") is None


@given(st.text())
def test_parse_never_raises(text):
    cmd = parse(text)
    assert cmd.name in SUBCOMMANDS
