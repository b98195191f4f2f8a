"""Issue 19: a post-mortem names who was actually on call when the incident opened, overrides made
from Slack included, also one removed later (the part that happened stays)."""

from __future__ import annotations

from datetime import timedelta

from bot.service import postmortem
from bot.store.db import transaction
from bot.store.tables import OncallOverride
from tests.test_postmortem_service import T0, add_incident, ctx  # noqa: F401  (fixture)


def test_the_draft_names_who_was_on_call_with_overrides(ctx) -> None:  # noqa: F811
    with transaction(ctx.engine) as s:
        s.add(
            OncallOverride(
                rotation="platform",
                layer="primary",
                who="mike",
                starts_at=T0 - timedelta(hours=1),
                ends_at=T0 + timedelta(hours=3),
                created_by="U01DAVID",
                created_at=T0 - timedelta(hours=1),
                removed_at=T0 + timedelta(minutes=30),
                removed_by="slack:U01DAVID",
            )
        )
    text = postmortem.render(ctx, add_incident(ctx), None)
    line = next((x for x in text.splitlines() if "On call when the incident opened" in x), "")
    assert "primary: mike (override)" in line and "secondary: sarah" in line, line
