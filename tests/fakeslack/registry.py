"""The method table: Slack method name -> handler.

Handlers take the workspace and the call's arguments and return the success body (without ``ok``), or
raise :class:`~tests.fakeslack.model.SlackError`. Keeping them as plain functions over plain state keeps
each method's Slack semantics readable in isolation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .args import Args
from .workspace import Workspace

Handler = Callable[[Workspace, Args], dict[str, Any]]
HANDLERS: dict[str, Handler] = {}


def api_method(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for a Slack Web API method name."""

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register
