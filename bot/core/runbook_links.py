"""Which runbook goes with an alert, and why.

Rules, first match wins:
  1. the alert's `runbook` label, then its `runbook` annotation (a slug);
  2. the `runbook_url` annotation: its last path segment without extension is the slug
     (the URL itself is always kept so it can be shown even when we have no such file);
  3. a runbook whose front matter `alerts:` lists the alertname;
  4. a runbook file named after the alertname (`HighApiErrorRate` -> `high-api-error-rate.md`),
     so the file we suggest creating really is picked up once it exists.
A reference that could leave `runbooks/` (`..`, absolute paths, backslashes, `%2F`) is refused
before any lookup and reported in `RunbookLink.refused` for the caller to log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from bot.core.errors import ConfigProblem
from bot.core.runbooks import Runbook, is_valid_slug
from bot.core.text import slugify

RUNBOOKS_DIR = "runbooks"

# RunbookLink.reason values: which rule produced the result.
BY_LABEL = "runbook label"
BY_ANNOTATION = "runbook annotation"
BY_URL = "runbook_url annotation"
BY_FRONT_MATTER = "alerts: in runbook front matter"
BY_FILE_NAME = "runbook file named after the alert"
NOT_FOUND = "no runbook found"


@dataclass(frozen=True)
class RunbookCatalog:
    """All loaded runbooks by slug, plus the alertname -> slug index from front matter."""

    runbooks: Mapping[str, Runbook] = field(default_factory=dict)
    alert_index: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, runbooks: Iterable[Runbook]) -> tuple[RunbookCatalog, list[ConfigProblem]]:
        """Index runbooks; the first claim of an alert (by slug order) wins, later ones are problems."""
        by_slug: dict[str, Runbook] = {}
        index: dict[str, str] = {}
        problems: list[ConfigProblem] = []
        for runbook in sorted(runbooks, key=lambda r: r.slug):
            if runbook.slug in by_slug:
                message = f"duplicate runbook slug {runbook.slug!r}"
                problems.append(ConfigProblem(runbook.source_file, 0, message))
                continue
            by_slug[runbook.slug] = runbook
            lines = runbook.alert_lines or (0,) * len(runbook.alerts)
            for alert, line in zip(runbook.alerts, lines, strict=False):
                owner = index.setdefault(alert, runbook.slug)
                if owner != runbook.slug:
                    problems.append(
                        ConfigProblem(
                            runbook.source_file,
                            line,
                            (
                                f"alert {alert!r} is already claimed by {by_slug[owner].source_file}; "
                                "an alert can have only one runbook"
                            ),
                        )
                    )
        return cls(by_slug, index), problems

    def by_slug(self, slug: str) -> Runbook | None:
        return self.runbooks.get(slug) if is_valid_slug(slug) else None

    def for_alert(self, alertname: str) -> Runbook | None:
        slug = self.alert_index.get(alertname)
        return self.runbooks.get(slug) if slug else None

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self.runbooks.values())

    def __len__(self) -> int:
        return len(self.runbooks)


@dataclass(frozen=True)
class RunbookLink:
    runbook: Runbook | None
    url: str | None  # the alert's runbook_url when it is an http(s) link, shown even without a file
    reason: str  # one of BY_* or NOT_FOUND
    suggested_file: str | None = None  # when nothing was found: the file to create
    refused: str | None = None  # references refused as unsafe, for the caller to log
    alertname: str = ""


def reference_problem(ref: str) -> str | None:
    """Why `ref` may not be looked up as a runbook slug, or None when it may."""
    decoded = ref
    for _ in range(3):  # undo (double) percent-encoding: `..%2F` and `..%252F` are `../`
        decoded = unquote(decoded)
    if "\x00" in decoded:
        return "contains a NUL byte"
    if decoded.startswith(("/", "~")) or (len(decoded) > 1 and decoded[1] == ":"):
        return f"is an absolute path and would leave {RUNBOOKS_DIR}/"
    if "\\" in decoded:
        return "contains a backslash"
    if ".." in decoded:
        return f"contains '..' and would leave {RUNBOOKS_DIR}/"
    if "/" in decoded:
        return "is a path, not a runbook slug"
    if not is_valid_slug(ref):
        return "is not a valid runbook slug (lowercase a-z, 0-9, '.', '_', '-')"
    return None


def link_runbook(
    labels: Mapping[str, str], annotations: Mapping[str, str], catalog: RunbookCatalog
) -> RunbookLink:
    alertname = labels.get("alertname", "")
    refused: list[str] = []
    missing: str | None = None  # a valid slug an alert points at that we do not have

    url, url_slug = _from_runbook_url(annotations.get("runbook_url", ""), refused)

    def found(runbook: Runbook, reason: str) -> RunbookLink:
        return RunbookLink(runbook, url, reason, None, "; ".join(refused) or None, alertname)

    for reason, source in ((BY_LABEL, labels), (BY_ANNOTATION, annotations)):
        ref = source.get("runbook", "").strip()
        if not ref:
            continue
        slug = ref.removesuffix(".md")
        why = reference_problem(slug)
        if why:
            refused.append(f"{reason} {ref!r} {why}")
        elif runbook := catalog.by_slug(slug):
            return found(runbook, reason)
        else:
            missing = missing or slug
    if url_slug and (runbook := catalog.by_slug(url_slug)):
        return found(runbook, BY_URL)
    if alertname:
        if runbook := catalog.for_alert(alertname):
            return found(runbook, BY_FRONT_MATTER)
        if runbook := catalog.by_slug(slugify(alertname)):
            return found(runbook, BY_FILE_NAME)
    # The alert already names a slug: creating that file is what links it. Otherwise the alertname.
    suggested = missing or (slugify(alertname) if alertname else None)
    return RunbookLink(
        None,
        url,
        NOT_FOUND,
        f"{RUNBOOKS_DIR}/{suggested}.md" if suggested else None,
        "; ".join(refused) or None,
        alertname,
    )


def _from_runbook_url(raw: str, refused: list[str]) -> tuple[str | None, str | None]:
    """(link to show, slug to look up) from a runbook_url annotation."""
    raw = raw.strip()
    if not raw:
        return None, None
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.netloc:
        url: str | None = raw
    elif not scheme and not parts.netloc:
        # A bare path such as `runbooks/x.md`: the whole path must stay inside runbooks/.
        url = None
        path = unquote(unquote(parts.path))
        if path.startswith(("/", "~")) or "\\" in path or ".." in path:
            refused.append(f"{BY_URL} {raw!r} would leave {RUNBOOKS_DIR}/")
            return None, None
    else:
        refused.append(f"{BY_URL} {raw!r} has an unsupported scheme {scheme!r}")
        return None, None
    segment = parts.path.rstrip("/").rsplit("/", 1)[-1]
    decoded = unquote(unquote(segment))
    if any(bad in decoded for bad in ("..", "/", "\\", "\x00")):
        refused.append(f"{BY_URL} {raw!r} ends in a path that would leave {RUNBOOKS_DIR}/")
        return url, None
    slug = PurePosixPath(segment).stem if segment else ""
    return url, slug if is_valid_slug(slug) else None
