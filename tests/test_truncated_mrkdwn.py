"""Escaped text is cut without splitting an entity or a link (`&amp;` must not become `&a…`). Found by
audit: the card header, topic and sections were cut with `truncate` after escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.slack import views

# An entity cut short: `&` followed by letters and then not a `;` (e.g. "&a…", "&am…", "&l…").
BROKEN = re.compile(r"&(?:a|am|amp|l|lt|g|gt)(?![a-z;])")


def _view(title: str) -> views.IncidentView:
    return views.IncidentView(
        id=1,
        title=title,
        severity="SEV2",
        status="triggered",
        source="alertmanager",
        created_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
    )


def test_card_header_does_not_cut_an_entity_in_half():
    prefix = "SEV2 · "
    # Place "&" so that its "&amp;" straddles the 150-character cut of the header.
    title = "x" * (147 - len(prefix)) + "&" + "y" * 30
    header = views.card(_view(title))[0].to_dict()["text"]["text"]
    assert not BROKEN.search(header), header


def test_topic_does_not_cut_an_entity_in_half():
    prefix = "SEV2 | triggered | "
    title = "x" * (247 - len(prefix)) + "<" + "y" * 30
    topic = views.topic(_view(title))
    assert not BROKEN.search(topic), topic
