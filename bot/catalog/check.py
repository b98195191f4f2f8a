"""`incidentbot check`: every problem in rotations/ and runbooks/, with file and line, and the
warnings (doubtful settings that still load, e.g. a 36h shift without `handoff: elapsed`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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


def check(rotations_dir: Path, runbooks_dir: Path) -> Checked:
    warnings: list[ConfigProblem] = []
    rotations, problems = load_rotations(rotations_dir, warnings)
    runbooks, runbook_problems = load_runbooks(runbooks_dir)
    problems = [*problems, *runbook_problems]
    if rotations is not None:
        refs = [
            (f"{rotations_dir.name}/routes.yaml", r.runbook, r.line) for r in rotations.routes if r.runbook
        ]
        problems += check_runbook_references(runbooks, refs)
    return Checked(rotations, runbooks, problems, warnings)
