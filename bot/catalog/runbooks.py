"""Load `runbooks/*.md` from disk into a `RunbookCatalog`, refusing anything outside the directory.

Runbooks come from a reviewed repository, but a symlink (or a slug taken from an alert label)
must still never make the bot read `/etc/passwd` into a Slack channel: every path is resolved
and checked against the resolved runbooks directory before it is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from bot.core.errors import ConfigProblem
from bot.core.runbook_links import RunbookCatalog, RunbookLink, link_runbook, reference_problem
from bot.core.runbooks import Runbook, is_valid_slug, parse_runbook

log = logging.getLogger(__name__)

MAX_RUNBOOK_BYTES = 512 * 1024  # a runbook is read by people under stress; this is generous
_SKIPPED = {"readme.md"}


def load_runbooks(directory: Path) -> tuple[RunbookCatalog, list[ConfigProblem]]:
    """Every usable runbook in `directory`, plus every problem found (empty when all is well)."""
    label = directory.name or str(directory)
    if not directory.is_dir():
        return RunbookCatalog(), [ConfigProblem(label, 0, f"runbooks directory {directory} not found")]
    base = directory.resolve()
    runbooks: list[Runbook] = []
    problems: list[ConfigProblem] = []
    for path in sorted(directory.iterdir()):
        if path.suffix != ".md" or path.name.lower() in _SKIPPED or path.name.startswith("."):
            continue  # dotfiles: editor lock/swap files, never runbooks
        runbook = _load_one(base, path, f"{label}/{path.name}", problems)
        if runbook is not None:
            runbooks.append(runbook)
    catalog, claim_problems = RunbookCatalog.build(runbooks)
    return catalog, problems + claim_problems


def safe_runbook_path(directory: Path, slug: str) -> Path | None:
    """`directory/<slug>.md` resolved, or None when the slug or a symlink would leave `directory`."""
    if reference_problem(slug) is not None:
        return None
    base = directory.resolve()
    target = (directory / f"{slug}.md").resolve()
    return target if _inside(target, base) else None


def check_runbook_references(
    catalog: RunbookCatalog, slugs: Iterable[tuple[str, str, int]]
) -> list[ConfigProblem]:
    """Problems for other config (routes, rotations, ...) naming runbooks: `(file, slug, line)`."""
    problems: list[ConfigProblem] = []
    for file, slug, line in slugs:
        why = reference_problem(slug)
        if why:
            problems.append(ConfigProblem(file, line, f"runbook {slug!r} {why}"))
        elif catalog.by_slug(slug) is None:
            message = f"runbook {slug!r} does not exist (runbooks/{slug}.md)"
            problems.append(ConfigProblem(file, line, message))
    return problems


def link_alert(
    labels: Mapping[str, str], annotations: Mapping[str, str], catalog: RunbookCatalog
) -> RunbookLink:
    """`link_runbook`, logging any reference refused as unsafe (the core stays free of I/O)."""
    result = link_runbook(labels, annotations, catalog)
    if result.refused:
        log.warning("runbook reference refused for alert %r: %s", result.alertname, result.refused)
    return result


def _load_one(base: Path, path: Path, file: str, problems: list[ConfigProblem]) -> Runbook | None:
    slug = path.stem
    if not is_valid_slug(slug):
        problems.append(
            ConfigProblem(
                file,
                0,
                f"file name {path.name!r} is not a valid runbook slug "
                "(lowercase a-z, 0-9, '.', '_', '-', then .md)",
            )
        )
        return None
    target = path.resolve()
    if not _inside(target, base):
        log.warning("refusing runbook %s: it resolves to %s, outside %s", path, target, base)
        problems.append(ConfigProblem(file, 0, "symlink points outside the runbooks directory; refused"))
        return None
    if not target.is_file():
        problems.append(ConfigProblem(file, 0, "not a regular file"))
        return None
    if target.stat().st_size > MAX_RUNBOOK_BYTES:
        problems.append(ConfigProblem(file, 0, f"larger than {MAX_RUNBOOK_BYTES // 1024} KiB"))
        return None
    try:
        text = target.read_text(encoding="utf-8")  # read the checked target, not the link
    except UnicodeDecodeError as exc:
        problems.append(ConfigProblem(file, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return None
    except OSError as exc:
        problems.append(ConfigProblem(file, 0, f"cannot be read: {exc.strerror or exc}"))
        return None
    runbook, found = parse_runbook(slug, text, file)
    problems.extend(found)
    return runbook


def _inside(target: Path, base: Path) -> bool:
    return target != base and target.is_relative_to(base)
