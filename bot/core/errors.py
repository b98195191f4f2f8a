"""What a user can get wrong, named so adapters can turn each into a clear message.

IncidentBotError
 ├── ConfigError            a runbook/rotation/route file is invalid (file, line, what)
 ├── UnknownIncident        a command or button names an incident we do not have
 ├── IllegalTransition      e.g. acknowledging a resolved incident
 └── BadInput               a payload or command argument we cannot use
      └── NotAllowed        this person may not do this (the message says who may)
"""

from __future__ import annotations

from dataclasses import dataclass


class IncidentBotError(Exception):
    """Base of every error a user can cause; the message is safe to show them."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in one configuration file, at a line (1-based; 0 when unknown)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ConfigError(IncidentBotError):
    def __init__(self, problems: list[ConfigProblem] | ConfigProblem) -> None:
        self.problems = [problems] if isinstance(problems, ConfigProblem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownIncident(IncidentBotError):
    pass


class IllegalTransition(IncidentBotError):
    pass


class BadInput(IncidentBotError):
    pass


class NotAllowed(BadInput):
    """Refused by the permission policy (`core/permissions.py`); the message says who may.

    `if_member`: being a member of the incident channel `channel_id` would allow it, so an adapter
    that can ask Slack who is in the channel may learn that and try once more."""

    def __init__(self, message: str, *, if_member: bool = False, channel_id: str | None = None) -> None:
        super().__init__(message)
        self.if_member = if_member
        self.channel_id = channel_id
