"""Local wall-clock time in a zone, read as an instant the way on-call teams expect across DST.

`local_to_utc` answers "when does the clock on the wall show this time?": the earliest instant at
which the zone's clock shows `local` or later. So a time that exists once is that instant; a time
in a DST gap (02:30 on a spring-forward night) is the moment the gap ends, when the clock jumps
(03:00); a repeated time (01:30 on a fall-back night) is its first occurrence, unless the naive
time carries fold=1 (the catalog sets it when a file writes the offset of the second occurrence).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall time -> aware UTC (see the module doc for gaps and repeated times)."""
    aware = local.replace(tzinfo=zone)
    before, after = aware.replace(fold=0).utcoffset(), aware.replace(fold=1).utcoffset()
    if before is not None and after is not None and before < after:
        return _gap_end(local, before, after, zone)
    return aware.astimezone(UTC)


def _gap_end(local: datetime, before: timedelta, after: timedelta, zone: ZoneInfo) -> datetime:
    """The transition instant of the gap `local` falls in. zoneinfo does not expose transitions,
    so bisect whole seconds (tzdata transitions are on whole seconds) between the instant the
    clock would show `local` under the new offset (before the change) and under the old one."""
    lo = (local.replace(tzinfo=UTC) - after - _EPOCH) // _SECOND  # still `before` in force
    hi = -((_EPOCH - (local.replace(tzinfo=UTC) - before)) // _SECOND)  # `after` in force
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (_EPOCH + mid * _SECOND).astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return _EPOCH + hi * _SECOND
