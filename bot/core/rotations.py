"""Who is on call: people, rotations with layers, overrides, and the pure `on_call` query.

Handoff rule. Shift k of a rotation starts at handoff H(k); `start` is naive local time in `timezone`.
  * Clock time (`handoff_rule="clock"`, the default) for a shift that divides a day (1h, 2h, 3h,
    4h, 6h, 8h, 12h, 24h; 30m, 90m) or is whole days (2d, 1w, 2w): H(k) is the LOCAL wall-clock time
    `start + k*shift` (naive arithmetic), read with `local_time.local_to_utc`. A 12h rota starting
    08:00 hands off at 08:00 and 20:00 all year; the shift that spans a DST change is an hour
    shorter or longer (30 minutes in Lord Howe). A local time in a DST gap hands off when the gap
    ends (02:30 on a spring-forward night: at 03:00, the earliest local time that exists after
    it); a repeated local time hands off at its first occurrence.
  * H(0) is exactly the instant written: a `start` with an explicit offset in a repeated hour
    (the second 01:30) keeps that fold. Only that instant is special: later days hand off at 01:30
    local, the first 01:30 on later fall-back nights; a handoff that would land before H(0) (a
    sub-hour shift in the same repeated hour) takes that time's second occurrence, so H never
    goes backwards.
  * Elapsed time for other lengths (5h, 7h, 10h, 36h: they have no fixed local time) and for
    `handoff_rule="elapsed"`: H(k) = H(0) + k*shift, exact hours whatever the clocks do.
Handoffs never decrease but two can coincide (hourly shifts at 02:00 and 03:00 on a spring-forward
night both map to 03:00): the shift between them is empty and skipped, so its person misses that
turn; the index k stays tied to local time, so the cycle is unchanged on every other day. Times
before `start` belong to shifts -1, -2, ... and layer members wrap around with modulo.

Overrides replace a layer's person inside [start, end) only; local times in files are read with
the same `local_to_utc` (one written in a DST gap starts when the clock jumps). Overrides of one
layer must not overlap (the catalog reports it with a line; the constructor refuses it), so a
bisect finds the one that matters. A returned `Shift` is clipped so that `end` is the next moment
the schedule changes (handoff, override start or end) and `start` the previous one; consecutive
shifts tile time. They are not merged when the same person follows themself (one-member layers
never end).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.core.local_time import local_to_utc
from bot.core.notify_rules import NotifyRule

_DAY = timedelta(days=1)
HandoffRule = Literal["clock", "elapsed"]


def keeps_clock_time(shift: timedelta) -> bool:
    """Whether handoffs of this length can stay at the same local times: it divides a day or is
    whole days. Other lengths are elapsed time (and `incidentbot check` warns about them)."""
    return shift > timedelta(0) and (_DAY % shift == timedelta(0) or shift % _DAY == timedelta(0))


@dataclass(frozen=True)
class Person:
    name: str  # the key used in rotation files
    slack_id: str | None = None  # None: looked up by email (users.lookupByEmail) and cached elsewhere
    email: str | None = None
    timezone: str | None = None
    display_name: str | None = None
    # Other ways to reach them (issue 18): E.164 phone (sms, voice), an ntfy topic or topic URL,
    # a Pushover user key, a webhook URL; and their own notification rules (None: the defaults).
    phone: str | None = None
    ntfy: str | None = None
    pushover: str | None = None
    webhook: str | None = None
    notify: tuple[NotifyRule, ...] | None = None


@dataclass(frozen=True)
class Override:
    layer: str
    who: str
    start: datetime  # aware; normalised to UTC
    end: datetime  # exclusive
    ref: str | None = None  # where it comes from when not the file: "db:<id>" (see core/schedule.py)

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
    ref: str | None = None  # the override's `ref` (None: the file's own, or no override)


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
    handoff_rule: HandoffRule = "clock"  # "clock" keeps local times where the length allows it
    # Who may change its on-call from Slack besides the people concerned (people keys, Slack user
    # IDs or user-group IDs `S…`), and the channel swap requests are posted in.
    admins: tuple[str, ...] = ()
    channel: str | None = None
    # Handoff notices (issue 19): remind the incoming person this long before (0: no reminder);
    # Slack user groups kept equal to who is on call: group ID (`S…`) -> the layers it holds.
    handoff_reminder: timedelta = timedelta(hours=1)
    slack_usergroups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Precomputed in __post_init__ so a query is a handful of arithmetic operations and bisects.
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _clock: bool = field(init=False, repr=False, compare=False)
    _first: datetime | None = field(init=False, repr=False, compare=False)
    _by_layer: dict[str, _LayerOverrides] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = ZoneInfo(self.timezone)
        if self.start is not None and self.start.tzinfo is not None:
            raise ValueError("rotation start is a naive local time (its zone is `timezone`)")
        if self.shift is not None and self.shift <= timedelta(0):
            raise ValueError("rotation shift must be positive")
        if self.handoff_rule not in ("clock", "elapsed"):
            raise ValueError(f"rotation handoff rule must be 'clock' or 'elapsed', not {self.handoff_rule!r}")
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
        clock = self.handoff_rule == "clock" and self.shift is not None and keeps_clock_time(self.shift)
        set_(self, "_clock", clock)
        # The start keeps the fold the file gave it (an explicit offset in a repeated DST hour).
        set_(self, "_first", None if self.start is None else local_to_utc(self.start, zone))
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
        """The UTC instant shift k starts (k may be negative); never earlier than handoff(k - 1)."""
        start, shift, first = self._schedule()
        if not self._clock:
            return first + k * shift
        if k == 0:
            return first  # the instant written, fold included
        local = start + k * shift  # naive arithmetic: fold 0, i.e. a repeated time's first occurrence
        at = local_to_utc(local, self._zone)
        if k > 0 and at < first:  # start written as the second occurrence of a repeated time
            at = local.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        return at

    def shift_index(self, at: datetime) -> int:
        """k such that handoff(k) <= at < handoff(k+1), computed arithmetically."""
        return self.shift_span(_utc(at, "query time"))[0]

    def shift_span(self, at: datetime) -> tuple[int, datetime, datetime]:
        """(k, handoff(k), handoff(k+1)) for the shift holding `at` (aware UTC): the largest k with
        handoff(k) <= at, so an empty shift (two coinciding handoffs) is never the answer."""
        start, shift, first = self._schedule()
        if not self._clock:
            k = (at - first) // shift
            begin = first + k * shift
            return k, begin, begin + shift
        # Estimate from the local wall time: right, or off by one (more only when the shift is
        # shorter than the DST change); the search then computes a few handoffs, never all since start.
        estimate = (at.astimezone(self._zone).replace(tzinfo=None) - start) // shift
        return _last_handoff_at_or_before(self.handoff, estimate, at)

    def _schedule(self) -> tuple[datetime, timedelta, datetime]:
        start, shift, first = self.start, self.shift, self._first
        if start is None or shift is None or first is None:
            raise ValueError(f"rotation {self.name!r} has no schedule of its own (source: {self.source})")
        return start, shift, first


def _last_handoff_at_or_before(
    handoff: Callable[[int], datetime], k: int, at: datetime
) -> tuple[int, datetime, datetime]:
    """(k, handoff(k), handoff(k+1)) for the largest k with handoff(k) <= at, for a non-decreasing
    `handoff`, starting from a guess: gallop outwards until bracketed, then bisect."""
    lo, lo_at = k, handoff(k)
    hi, hi_at, step = k + 1, None, 1
    while lo_at > at:  # the guess is too late
        hi, hi_at = lo, lo_at
        lo -= step
        lo_at, step = handoff(lo), step * 2
    hi_at = handoff(hi) if hi_at is None else hi_at
    step = 1
    while hi_at <= at:  # the guess is too early
        lo, lo_at = hi, hi_at
        hi += step
        hi_at, step = handoff(hi), step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        mid_at = handoff(mid)
        if mid_at <= at:
            lo, lo_at = mid, mid_at
        else:
            hi, hi_at = mid, mid_at
    return lo, lo_at, hi_at


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
            return Shift(o.who, o.start, o.end, layer, override=True, ref=o.ref)
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
