"""`/oncall` says until when a person is on call: the end of their stretch of duty, not the next
rotation boundary when they follow themselves (platform's manager layer is [mike, mike, lisa, lisa];
data-platform has one secondary). Found by audit: it named handoffs that do not happen."""

from datetime import UTC, datetime
from pathlib import Path

from bot.catalog.rotations import load_rotations
from bot.core.rotations import on_call
from bot.service.oncall import describe

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 3, 17, 0, tzinfo=UTC)


def test_until_is_when_the_person_actually_hands_over() -> None:
    catalog, problems = load_rotations(ROOT / "rotations")
    assert not problems and catalog is not None
    platform = catalog.rotations["platform"]
    # mike is manager in weeks 1 and 2: paged on Nov 10 too.
    assert on_call(platform, "manager", datetime(2026, 11, 10, 18, tzinfo=UTC)).person == "mike"
    text = describe(catalog, "platform", AT, slack=False)
    line = next(x for x in text.splitlines() if "manager" in x)
    assert "Nov 16" in line, f"/oncall claims mike hands over a week early: {line!r}"


def test_one_member_layer_never_hands_over() -> None:
    catalog, _ = load_rotations(ROOT / "rotations")
    assert catalog is not None
    text = describe(catalog, "data-platform", AT, slack=False)
    line = next(x for x in text.splitlines() if "secondary" in x)
    assert "until" not in line, f"david is the only secondary, yet: {line!r}"
