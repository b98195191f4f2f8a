"""A page is labelled with the layer its step targets (shown in the DM as "<layer>, step N" and in
the post-mortem), not with the first layer the person holds. Found by audit: with an override making
alex primary in a week where alex is also secondary, the secondary step's page said "primary"."""

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.core.incident import Severity
from bot.service.context import Context
from bot.service.declare import declare
from bot.service.timers import fire_due
from bot.store.db import reading
from bot.store.tables import Page
from tests.harness import FixedClock, service_context

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 17, 18, 0, tzinfo=UTC)  # week 3: primary david, secondary alex


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    d = tmp_path / "rotations"
    shutil.copytree(ROOT / "rotations", d)
    p = d / "platform.yaml"
    p.write_text(
        p.read_text().replace(
            "  overrides:\n",
            "  overrides:\n"
            "    - {layer: primary, who: alex, from: 2026-11-17T00:00, until: 2026-11-18T00:00}\n",
        )
    )
    ctx = service_context(tmp_path, FixedClock(T0), rotations_dir=d)
    yield ctx
    ctx.engine.dispose()


def test_page_is_labelled_with_the_layer_the_step_targets(ctx: Context) -> None:
    declare(ctx, "U0X", "api down", Severity.SEV2, rotation="platform")
    ctx.clock.t = T0 + timedelta(minutes=15)  # type: ignore[attr-defined]
    fire_due(ctx)
    with reading(ctx.engine) as s:
        rows = [(p.step_key, p.person, p.layer) for p in s.exec(select(Page).order_by(col(Page.id)))]
    assert rows[0] == ("c0r0s0", "alex", "primary")
    assert rows[1] == ("c0r0s1", "alex", "secondary"), rows
