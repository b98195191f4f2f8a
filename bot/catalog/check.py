"""`incidentbot check`: every problem in rotations/ and runbooks/, with file and line."""

from __future__ import annotations

from dataclasses import dataclass
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


def check(rotations_dir: Path, runbooks_dir: Path) -> Checked:
    rotations, problems = load_rotations(rotations_dir)
    runbooks, runbook_problems = load_runbooks(runbooks_dir)
    problems = [*problems, *runbook_problems]
    if rotations is not None:
        refs = [
            (f"{rotations_dir.name}/routes.yaml", r.runbook, r.line) for r in rotations.routes if r.runbook
        ]
        problems += check_runbook_references(runbooks, refs)
    return Checked(rotations, runbooks, problems)
