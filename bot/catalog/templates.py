"""Templates shipped with the bot as package data (`bot/templates/`).

Reading them is I/O, so it lives here rather than in `bot.core`; rendering is
`bot.core.postmortem.render_postmortem`.
"""

from __future__ import annotations

from importlib import resources

POSTMORTEM_TEMPLATE = "postmortem.md.j2"


def default_template() -> str:
    """The text of the default post-mortem template (`bot/templates/postmortem.md.j2`)."""
    return resources.files("bot").joinpath("templates", POSTMORTEM_TEMPLATE).read_text(encoding="utf-8")
