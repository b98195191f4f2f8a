"""YAML with line numbers: config values plus where each was written, for line-precise problems.

PyYAML's `compose` keeps marks on nodes; we turn the node tree into plain dicts/lists that remember
lines (`YMap.line_of(key)`, `YList.lines[i]`) and each scalar's source text (`raw`), so checks can
say `rotations/platform.yaml:12: unknown key 'shfit'`. Deliberate differences from `safe_load`:
keys are always their source text (`007:` stays '007', `on:` stays 'on'); timestamps stay text
(we parse them with the rotation's time zone); duplicate keys are reported instead of silently
keeping the last one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.core.durations import parse_duration
from bot.core.errors import ConfigProblem

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class YMap(dict[str, Any]):
    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}
        self.value_lines: dict[str, int] = {}
        self.raw: dict[str, str] = {}  # source text of scalar values

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class YList(list[Any]):
    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []
        self.raw: list[str | None] = []


def load_yaml(path: Path, display: str, problems: list[ConfigProblem]) -> Any:
    """Parse one file; on any error append a problem and return None. An empty file is None too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ConfigProblem(display, 0, f"cannot read file: {exc}"))
        return None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _convert(node, loader, display, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        context = exc.context or ""
        if exc.context_mark is not None and exc.context_mark.line + 1 != line:
            context += f" (line {exc.context_mark.line + 1})"
        what = " ".join(s for s in (context, exc.problem) if s) or "invalid YAML"
        problems.append(ConfigProblem(display, line, f"YAML syntax error: {what}"))
    except yaml.YAMLError as exc:
        problems.append(ConfigProblem(display, 0, f"YAML error: {exc}"))
    finally:
        loader.dispose()
    return None


def _convert(
    node: yaml.Node,
    loader: yaml.SafeLoader,
    display: str,
    problems: list[ConfigProblem],
    memo: dict[int, Any] | None = None,
) -> Any:
    # Aliases share one node: convert it once (also stops "billion laughs" and recursive aliases).
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        loader.flatten_mapping(node)  # apply `<<:` merge keys like safe_load would
        merged = len(node.value) - own  # merged pairs come first; explicit keys may override them
        out = memo[id(node)] = YMap(line)
        for index, (key_node, value_node) in enumerate(node.value):
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(ConfigProblem(display, key_line, "a key must be plain text"))
                continue
            key = str(key_node.value)
            if key in out and index >= merged and out.key_lines[key] >= 0:
                first = out.key_lines[key]
                problems.append(
                    ConfigProblem(display, key_line, f"duplicate key {key!r} (first at line {first})")
                )
                continue
            out[key] = _convert(value_node, loader, display, problems, memo)
            # A merged key's line is where the anchor defines it; mark it so an override is no duplicate.
            out.key_lines[key] = key_line if index >= merged else -key_line
            out.value_lines[key] = value_node.start_mark.line + 1
            if isinstance(value_node, yaml.ScalarNode):
                out.raw[key] = str(value_node.value)
            else:
                out.raw.pop(key, None)
        out.key_lines = {k: abs(v) for k, v in out.key_lines.items()}
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = memo[id(node)] = YList(line)
        for item in node.value:
            seq.append(_convert(item, loader, display, problems, memo))
            seq.lines.append(item.start_mark.line + 1)
            seq.raw.append(str(item.value) if isinstance(item, yaml.ScalarNode) else None)
        return seq
    if node.tag == _TIMESTAMP:
        return str(node.value)
    return loader.construct_object(node, deep=True)


class Checker:
    """Reads typed fields out of a YMap, appending a ConfigProblem (file, line, what) for each fault
    to `problems`, and for each doubtful but valid setting to `warnings`."""

    def __init__(
        self, file: str, problems: list[ConfigProblem], warnings: list[ConfigProblem] | None = None
    ) -> None:
        self.file = file
        self.problems = problems
        self.warnings = [] if warnings is None else warnings

    def problem(self, line: int, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, line, message))

    def warning(self, line: int, message: str) -> None:
        """Worth a look, but the file still loads (a problem stops the start; a warning never does)."""
        self.warnings.append(ConfigProblem(self.file, line, message))

    def mapping(self, value: Any, line: int, what: str) -> YMap | None:
        if isinstance(value, YMap):
            return value
        self.problem(line, f"{what} must be a mapping of `key: value`, not {_kind(value)}")
        return None

    def keys(self, m: YMap, what: str, required: Iterable[str] = (), optional: Iterable[str] = ()) -> bool:
        """Report unknown keys (with a 'did you mean') and missing ones; True when all is well."""
        required, allowed = list(required), list(dict.fromkeys([*required, *optional]))
        ok, suggested = True, set()
        for key in m:
            if key not in allowed:
                close = difflib.get_close_matches(key, [a for a in allowed if a not in m], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (expected: {', '.join(allowed)})"
                self.problem(m.line_of(key), f"unknown key {key!r} in {what}{hint}")
                suggested.update(close)
                ok = False
        for key in required:
            if key not in m and key not in suggested:  # a misspelling is reported once, as above
                self.problem(m.line, f"{what} is missing required key {key!r}")
                ok = False
        return ok

    def text(self, m: YMap, key: str, what: str) -> str | None:
        """A non-empty scalar, as its source text (so `code: 0500` stays '0500'); None if absent/bad."""
        if key not in m:
            return None
        value = m[key]
        if isinstance(value, YMap | YList) or value is None or key not in m.raw or not m.raw[key].strip():
            self.problem(m.line_of(key), f"{what} `{key}` must be non-empty text, not {_kind(value)}")
            return None
        return m.raw[key].strip()

    def duration(self, m: YMap, key: str, what: str, positive: bool = True) -> timedelta | None:
        raw = self.text(m, key, what)
        if raw is None:
            return None
        try:
            value = parse_duration(raw)
        except ValueError as exc:
            self.problem(m.line_of(key), f"{what} `{key}`: {exc}")
            return None
        if positive and value <= timedelta(0):
            self.problem(m.line_of(key), f"{what} `{key}` must be longer than 0")
            return None
        return value

    def zone(self, m: YMap, key: str, what: str) -> str | None:
        name = self.text(m, key, what)
        if name is None:
            return None
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.problem(
                m.line_of(key),
                f"{what} `{key}`: unknown time zone {name!r} (use an IANA name like Europe/Berlin)",
            )
            return None
        return name


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, YMap):
        return "a mapping"
    if isinstance(value, YList):
        return "a list"
    return f"{type(value).__name__} {value!r}"
