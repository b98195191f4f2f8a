"""Micro-benchmark: µs per `on_call` query on a year-long rotation with 100 overrides.

Run: .venv/bin/python bench/oncall_query.py   (target: well under 50 µs per query)
"""

from __future__ import annotations

import random
import timeit
from datetime import UTC, datetime, timedelta
from itertools import cycle

from bot.core.rotations import Override, Rotation, on_call, on_call_all

YEAR_START = datetime(2026, 1, 5, 9)  # a Monday, local time
LAYERS = {
    "primary": ("alex", "sarah", "david", "alex"),
    "secondary": ("sarah", "david", "alex", "sarah"),
    "manager": ("mike", "mike", "lisa", "lisa"),
}


def build(shift: timedelta, overrides: int = 100, seed: int = 1) -> Rotation:
    rng = random.Random(seed)
    first = datetime(2026, 1, 5, 17, tzinfo=UTC)
    # 100 one-day overrides on distinct days of the year, spread over the layers (no overlaps).
    days = rng.sample(range(365), overrides)
    items = tuple(
        Override(
            list(LAYERS)[i % len(LAYERS)],
            rng.choice(["priya", "tom", "wei"]),
            first + timedelta(days=d),
            first + timedelta(days=d + 1),
        )
        for i, d in enumerate(days)
    )
    return Rotation("bench", "America/Los_Angeles", YEAR_START, shift, LAYERS, items)


def main() -> None:
    rng = random.Random(2)
    span = timedelta(days=365).total_seconds()
    instants = [
        datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, span)) for _ in range(10_000)
    ]
    number = 100_000
    for label, shift in (
        ("weekly (clock)", timedelta(weeks=1)),
        ("12h (clock)", timedelta(hours=12)),
        ("1h (clock)", timedelta(hours=1)),
        ("36h (elapsed)", timedelta(hours=36)),
    ):
        rotation = build(shift)
        times = cycle(instants)
        best = min(
            timeit.repeat(lambda r=rotation, t=times: on_call(r, "primary", next(t)), number=number, repeat=5)
        )
        print(f"on_call, {label}, 100 overrides: {best / number * 1e6:.2f} µs/query")
        best = min(
            timeit.repeat(lambda r=rotation, t=times: on_call_all(r, next(t)), number=number, repeat=5)
        )
        print(f"on_call_all (3 layers), {label}: {best / number * 1e6:.2f} µs/query")


if __name__ == "__main__":
    main()
