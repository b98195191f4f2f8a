"""`incidentbot check`: every problem in rotations/ and runbooks/, with file and line, and the
warnings (doubtful settings that still load, e.g. a 36h shift without `handoff: elapsed`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.catalog.people import provider_problems
from bot.catalog.rotations import Catalog, load_rotations
from bot.catalog.runbooks import check_runbook_references, load_runbooks
from bot.core.errors import ConfigProblem
from bot.core.runbook_links import RunbookCatalog


@dataclass(frozen=True)
class Checked:
    rotations: Catalog | None
    runbooks: RunbookCatalog
    problems: list[ConfigProblem]
    warnings: list[ConfigProblem] = field(default_factory=list)
    # Notification rules naming a method whose provider settings are missing (issue 18):
    # `incidentbot check` fails on them; `serve` logs them and falls through to the next rule.
    provider_problems: list[ConfigProblem] = field(default_factory=list)


def check(
    rotations_dir: Path, runbooks_dir: Path, missing_providers: dict[str, str] | None = None
) -> Checked:
    """`missing_providers`: method -> the settings it needs, for methods not configured."""
    warnings: list[ConfigProblem] = []
    rotations, problems = load_rotations(rotations_dir, warnings)
    runbooks, runbook_problems = load_runbooks(runbooks_dir)
    problems = [*problems, *runbook_problems]
    if rotations is not None:
        refs = [
            (f"{rotations_dir.name}/routes.yaml", r.runbook, r.line) for r in rotations.routes if r.runbook
        ]
        problems += check_runbook_references(runbooks, refs)
    providers = []
    if rotations is not None and missing_providers:
        people, defaults = rotations.people, rotations.default_notify
        providers = provider_problems(rotations.people_file, people, defaults, missing_providers)
    return Checked(rotations, runbooks, problems, warnings, providers)
