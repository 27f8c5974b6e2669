"""Limits a manifest must meet before it is parsed into nodes: size, nesting depth, node count.

Composing YAML into nodes is recursive and slow: ``[[[[…`` ten thousand deep ends in a
RecursionError, and a 50 MB file takes most of a minute. The guard runs first and cheaply — the
file's size is checked before it is read (:mod:`runner.manifest.regular_file`), and depth and node count are
measured on the flat stream of parse *events*, which needs no recursion and stops at the first
excess — so every oversized or over-nested manifest is refused in well under a second with a
``file:line:column`` message. Syntax errors are left to :mod:`runner.manifest.yamlpos`, which words them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import yaml
from yaml.events import CollectionEndEvent, CollectionStartEvent, ScalarEvent

from runner.errors import InputError, ManifestError, Problem
from runner.manifest.regular_file import Refused, TooBig, read_regular
from runner.manifest.yamlfast import read_plain
from runner.manifest.yamlpos import MAX_NODES, Located, load_located

#: A manifest of a few thousand shots is well under 1 MB; 5 MB leaves room and bounds parse time.
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
#: A manifest is 4 levels deep (shots → shot → seeds → seed); 20 leaves room for anchors and merges.
MAX_DEPTH = 20


class _Mark(Protocol):
    """Where libyaml or PyYAML stopped (their Mark classes differ; both have these)."""

    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...


_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_manifest(path: Path) -> bytes:
    """The manifest's bytes: a regular file under the size cap, or one-line InputError naming it."""
    try:
        return read_regular(path, MAX_MANIFEST_BYTES)
    except TooBig as why:
        raise InputError(f"manifest {path} {why} (split a batch this large into several manifests)") from None
    except Refused as why:
        raise InputError(f"manifest {path} {why}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the manifest: {exc.strerror or exc}") from None


def _problem(file: str, mark: _Mark | None, message: str) -> ManifestError:
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return ManifestError([Problem(file, line, column, "", message)])


def _too_deep(file: str, mark: _Mark | None) -> ManifestError:
    return _problem(file, mark, f"lists and mappings are nested more than {MAX_DEPTH} deep here")


def check_structure(text: str, file: str) -> None:
    """ManifestError at the first collection nested deeper than MAX_DEPTH or past MAX_NODES nodes."""
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=_Parser):
            if isinstance(event, CollectionStartEvent | ScalarEvent):
                nodes += 1  # keys too: every key has a value, so values > nodes / 2
                if nodes > 2 * MAX_NODES:
                    raise _problem(
                        file,
                        event.start_mark,
                        f"the document has more than {MAX_NODES} values; split a batch this large",
                    )
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _too_deep(file, event.start_mark)
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # libyaml stops at 1000 levels, sometimes before it hands over a single event of them
        if "nesting depth" in str(exc.problem):
            raise _too_deep(file, exc.problem_mark) from None
    except yaml.YAMLError:
        pass  # any other syntax error: load_located reports it in its own words


def compose_guarded(text: str, file: str) -> Located:
    """:func:`load_located` after :func:`check_structure`; a RecursionError left over is still exit 2.

    A plain manifest (no anchors, aliases, tags or merge keys; within the limits) is read in one
    pass instead (:mod:`runner.manifest.yamlfast`, the same result in half the time); anything else, and
    every manifest with a problem of YAML or of size, takes the general path below.
    """
    plain = read_plain(text, file, MAX_DEPTH)
    if plain is not None:
        return plain
    check_structure(text, file)
    try:
        return load_located(text, file)
    except RecursionError:
        raise _too_deep(file, None) from None
