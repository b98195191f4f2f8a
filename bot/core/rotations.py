"""Who is on call: people, rotations with layers, overrides, and the pure `on_call` query.

Handoff rule. Shift k of a rotation starts at handoff H(k):
  * whole-day shifts (1d, 1w, 2w, ...): H(k) is the LOCAL wall-clock time `start + k*shift` in the
    rotation's zone, converted to UTC. A weekly 09:00 handoff stays at 09:00 local across DST, so a
    week can last 167 or 169 hours. A local time that does not exist (DST gap) or exists twice (DST
    fold) is read with fold=0, i.e. with the offset in force before the transition, and normalised
    by a UTC round trip; deterministic, and H stays strictly increasing.
  * sub-day or mixed shifts (12h, 8h, 36h): H(k) = H(0) + k*shift in elapsed UTC time, because
    "every 12 hours" must mean 12 hours even on the night the clocks change.
Times before `start` belong to shifts -1, -2, ... and layer members wrap around with modulo.

Overrides replace a layer's person inside [start, end) only. Overrides of one layer must not
overlap (the catalog reports it with a line; the constructor refuses it), so a bisect finds the
one that matters. A returned `Shift` is clipped so that `end` is the next moment the schedule
changes (handoff, override start or end) and `start` the previous one; consecutive shifts tile time.
They are not merged when the same person follows themself (one-member layers never end).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Person:
    name: str  # the key used in rotation files
    slack_id: str | None = None  # None: looked up by email (users.lookupByEmail) and cached elsewhere
    email: str | None = None
    timezone: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class Override:
    layer: str
    who: str
    start: datetime  # aware; normalised to UTC
    end: datetime  # exclusive

    def __post_init__(self) -> None:
        start, end = _utc(self.start, "override start"), _utc(self.end, "override end")
        if end <= start:
            raise ValueError(f"override of {self.layer!r} by {self.who!r} ends before it starts")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


@dataclass(frozen=True)
class PagerDutySource:
    """On-call comes from PagerDuty (fetched by a later integration), not from `layers`."""

    schedule_id: str | None = None
    escalation_policy_id: str | None = None


@dataclass(frozen=True)
class Shift:
    person: str
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive: the moment the schedule next changes
    layer: str
    override: bool = False


@dataclass(frozen=True)
class _LayerOverrides:
    starts: tuple[datetime, ...]
    ends: tuple[datetime, ...]
    items: tuple[Override, ...]


@dataclass(frozen=True)
class Rotation:
    name: str
    timezone: str
    start: datetime | None  # first handoff, naive LOCAL wall time in `timezone`
    shift: timedelta | None
    layers: dict[str, tuple[str, ...]]
    overrides: tuple[Override, ...] = ()
    source: Literal["file", "pagerduty"] = "file"
    pagerduty: PagerDutySource | None = None
    # Precomputed in __post_init__ so a query is a handful of arithmetic operations and bisects.
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _calendar: bool = field(init=False, repr=False, compare=False)
    _first: datetime | None = field(init=False, repr=False, compare=False)
    _by_layer: dict[str, _LayerOverrides] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = ZoneInfo(self.timezone)
        if self.start is not None and self.start.tzinfo is not None:
            raise ValueError("rotation start is a naive local time (its zone is `timezone`)")
        if self.shift is not None and self.shift <= timedelta(0):
            raise ValueError("rotation shift must be positive")
        for layer, members in self.layers.items():
            if not members:
                raise ValueError(f"layer {layer!r} has no members")
        overrides = tuple(sorted(self.overrides, key=lambda o: (o.layer, o.start)))
        by_layer: dict[str, list[Override]] = {}
        for o in overrides:
            if o.layer not in self.layers:
                raise ValueError(f"override names unknown layer {o.layer!r}")
            previous = by_layer.setdefault(o.layer, [])
            if previous and previous[-1].end > o.start:
                raise ValueError(f"overrides of layer {o.layer!r} overlap at {o.start.isoformat()}")
            previous.append(o)
        set_ = object.__setattr__
        set_(self, "overrides", overrides)
        set_(self, "_zone", zone)
        set_(self, "_calendar", self.shift is not None and self.shift % _DAY == timedelta(0))
        # The start keeps the fold the file gave it (an explicit offset in a repeated DST hour).
        set_(self, "_first", None if self.start is None else self.start.replace(tzinfo=zone).astimezone(UTC))
        set_(
            self,
            "_by_layer",
            {
                layer: _LayerOverrides(
                    tuple(o.start for o in items), tuple(o.end for o in items), tuple(items)
                )
                for layer, items in by_layer.items()
            },
        )

    def handoff(self, k: int) -> datetime:
        """The UTC instant shift k starts (k may be negative)."""
        start, shift, first = self.start, self.shift, self._first
        if start is None or shift is None or first is None:
            raise ValueError(f"rotation {self.name!r} has no schedule of its own (source: {self.source})")
        if self._calendar:
            return local_to_utc(start + k * shift, self._zone)
        return first + k * shift

    def shift_index(self, at: datetime) -> int:
        """k such that handoff(k) <= at < handoff(k+1), computed arithmetically."""
        return self.shift_span(_utc(at, "query time"))[0]

    def shift_span(self, at: datetime) -> tuple[int, datetime, datetime]:
        """(k, handoff(k), handoff(k+1)) for the shift holding `at` (aware UTC), no loop over shifts."""
        start, shift, first = self.start, self.shift, self._first
        if start is None or shift is None or first is None:
            raise ValueError(f"rotation {self.name!r} has no schedule of its own (source: {self.source})")
        if not self._calendar:
            k = (at - first) // shift
            begin = first + k * shift
            return k, begin, begin + shift
        # Estimate from the local wall time; DST offsets can put it off by one near a handoff.
        zone = self._zone
        k = (at.astimezone(zone).replace(tzinfo=None) - start) // shift
        h0, h1 = local_to_utc(start + k * shift, zone), local_to_utc(start + (k + 1) * shift, zone)
        while h0 > at:
            k, h1, h0 = k - 1, h0, local_to_utc(start + (k - 1) * shift, zone)
        while h1 <= at:
            k, h0, h1 = k + 1, h1, local_to_utc(start + (k + 2) * shift, zone)
        return k, h0, h1


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall time -> aware UTC; DST gaps and folds resolve with fold=0 (see module doc)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _utc(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def on_call(rotation: Rotation, layer: str, at: datetime) -> Shift:
    """Who holds `layer` of `rotation` at instant `at` (aware), and for which span."""
    if layer not in rotation.layers:
        raise KeyError(f"rotation {rotation.name!r} has no layer {layer!r}")
    return _layer_shift(rotation, layer, _utc(at, "query time"), None)


def on_call_all(rotation: Rotation, at: datetime) -> dict[str, Shift]:
    """Every layer's shift at `at`, in the rotation's layer order (the shift span is computed once)."""
    at = _utc(at, "query time")
    span = rotation.shift_span(at) if rotation.layers else None
    return {layer: _layer_shift(rotation, layer, at, span) for layer in rotation.layers}


def _layer_shift(
    rotation: Rotation, layer: str, at: datetime, span: tuple[int, datetime, datetime] | None
) -> Shift:
    overrides = rotation._by_layer.get(layer)
    i = -1
    if overrides is not None:
        i = bisect_right(overrides.starts, at) - 1
        if i >= 0 and at < overrides.ends[i]:
            o = overrides.items[i]
            return Shift(o.who, o.start, o.end, layer, override=True)
    k, start, end = span or rotation.shift_span(at)
    if overrides is not None:
        if i >= 0 and overrides.ends[i] > start:
            start = overrides.ends[i]  # an override ended inside this shift
        if i + 1 < len(overrides.starts) and overrides.starts[i + 1] < end:
            end = overrides.starts[i + 1]  # an override begins inside this shift
    members = rotation.layers[layer]
    return Shift(members[k % len(members)], start, end, layer)


def hands_over(rotation: Rotation, layer: str, shift: Shift, horizon: int = 60) -> datetime | None:
    """When `shift.person` really hands `layer` on: the end of their run of shifts (consecutive
    shifts of one person, as in [mike, mike, lisa] or a one-member layer, are one stretch of duty);
    None when that is more than `horizon` shifts away."""
    end = shift.end
    for _ in range(horizon):
        after = on_call(rotation, layer, end)
        if after.person != shift.person:
            return end
        end = after.end
    return None


def upcoming(rotation: Rotation, layer: str, at: datetime, count: int) -> list[Shift]:
    """The shift at `at` and the `count - 1` after it (for `/oncall` schedules)."""
    shifts: list[Shift] = []
    while len(shifts) < count:
        shifts.append(on_call(rotation, layer, shifts[-1].end if shifts else at))
    return shifts
