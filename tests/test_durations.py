from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1y", timedelta(days=365)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1m30s", timedelta(seconds=90)),
        ("2w3d12h", timedelta(days=17, hours=12)),
        ("1m500ms", timedelta(minutes=1, milliseconds=500)),
        ("0m", timedelta(0)),
        ("0", timedelta(0)),
        (" 15m ", timedelta(minutes=15)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("15", "no unit"),
        ("1 week", "invalid duration"),
        ("30m1h", "largest first"),
        ("1.5h", "whole numbers"),
        ("-5m", "invalid"),
        ("5M", "invalid"),
        ("h", "invalid"),
        ("99999999999y", "too long"),
    ],
)
def test_parse_duration_errors_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


def test_parse_duration_rejects_non_text() -> None:
    with pytest.raises(ValueError, match="must be text"):
        parse_duration(15)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=2, seconds=13), "2m 13s"),
        (timedelta(hours=1, minutes=5, seconds=59), "1h 5m"),
        (timedelta(days=3, hours=4, minutes=10), "3d 4h"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=1, seconds=30), "1h"),
        (timedelta(minutes=59, seconds=59, milliseconds=900), "59m 59s"),
        (timedelta(weeks=2), "14d"),
        (timedelta(0), "0s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(seconds=-90), "-1m 30s"),
    ],
)
def test_format_duration(td: timedelta, expected: str) -> None:
    assert format_duration(td) == expected


@given(st.integers(min_value=0, max_value=1000), st.sampled_from(["s", "m", "h", "d", "w"]))
def test_parse_then_format_round_trips_single_units(amount: int, unit: str) -> None:
    td = parse_duration(f"{amount}{unit}")
    assert parse_duration(format_duration(td).split()[0]) <= td
