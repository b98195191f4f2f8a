"""A rotation `start` written with an offset in the repeated hour of a DST fall-back means the
instant written (found by audit: it was read back as the first 01:30, so the first handoff, and
for elapsed-time shifts such as 12h every handoff, was an hour early; issue 21: whole-day shifts
still started an hour early)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.catalog.rotations import load_rotations

PEOPLE = "people:\n  a: {slack: U0AAA}\n  b: {slack: U0BBB}\n"
ROT = """rotation:
  name: r
  timezone: America/New_York
  start: "2026-11-01T01:30-05:00"
  shift: 12h
  layers:
    primary: [a, b]
"""


@pytest.mark.parametrize(
    ("shift", "tenth"),
    [
        ("12h", datetime(2026, 11, 6, 6, 30, tzinfo=UTC)),  # 01:30 EST five days later
        ("1d", datetime(2026, 11, 11, 6, 30, tzinfo=UTC)),
        ("1w", datetime(2027, 1, 10, 6, 30, tzinfo=UTC)),
        ("36h", datetime(2026, 11, 16, 6, 30, tzinfo=UTC)),  # elapsed: 360 hours on
    ],
)
def test_start_with_explicit_offset_in_a_fold_is_honoured(
    tmp_path: Path, shift: str, tenth: datetime
) -> None:
    (tmp_path / "people.yaml").write_text(PEOPLE)
    (tmp_path / "r.yaml").write_text(ROT.replace("shift: 12h", f"shift: {shift}"))
    catalog, problems = load_rotations(tmp_path)
    assert not problems and catalog is not None, problems
    rotation = catalog.rotations["r"]
    written = datetime.fromisoformat("2026-11-01T01:30-05:00").astimezone(UTC)  # 06:30 UTC
    assert rotation.handoff(0) == written
    assert rotation.handoff(10) == tenth
