"""Durations as people write them in config (`15m`, `1h30m`, `1w`) and read them in Slack (`2m 13s`).

The syntax follows Prometheus/Alertmanager: units `y w d h m s ms`, largest first, each at most
once, integers only; a bare `0` means zero. `1y` is 365 days and `1d` is 24 hours (elapsed time):
wall-clock calendar arithmetic is the rotation module's business, not this one's.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, timedelta] = {
    "y": timedelta(days=365),
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
# Same shape as Prometheus' model.ParseDuration: every unit optional, in this order.
_DURATION = re.compile(
    r"(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?"
)
_MAX = timedelta(days=100 * 365)  # far beyond any sane config, far below OverflowError
_MICRO = timedelta(microseconds=1)


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `5m`, `1h30m`, `1w`, `0`; raise ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"a duration must be text like '15m', not {text!r}")
    s = text.strip()
    if s == "0":
        return timedelta(0)
    if not s:
        raise ValueError("empty duration; write e.g. '15m' or '1h30m'")
    if s.isdigit():
        raise ValueError(f"duration {text!r} has no unit; write e.g. '{s}m' or '{s}s'")
    match = _DURATION.fullmatch(s)
    if match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"invalid duration {text!r}: use whole numbers with units y w d h m s ms, "
            "largest first, e.g. '90s', '1h30m', '1w'"
        )
    # Sum in microseconds (plain ints) so absurd values give a clear error, not an OverflowError.
    micros = sum(int(n) * (_UNITS[unit] // _MICRO) for unit, n in match.groupdict().items() if n)
    if micros > _MAX // _MICRO:
        raise ValueError(f"duration {text!r} is too long")
    return micros * _MICRO


_HUMAN_UNITS: tuple[tuple[str, int], ...] = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(td: timedelta) -> str:
    """Human form for Slack with the two largest units: '45s', '2m 13s', '1h 5m', '3d 4h'.

    Truncates (an incident open 59.9 s is '59s'); sub-second values show as milliseconds.
    """
    if td < timedelta(0):
        return "-" + format_duration(-td)
    seconds = int(td.total_seconds())
    if seconds == 0:
        ms = td // timedelta(milliseconds=1)
        return f"{ms}ms" if ms else "0s"
    parts: list[str] = []
    for unit, size in _HUMAN_UNITS:
        amount, seconds = divmod(seconds, size)
        if parts or amount:
            parts.append(f"{amount}{unit}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0"):
        parts.pop()  # '1h 0m' reads better as '1h'
    return " ".join(parts)
