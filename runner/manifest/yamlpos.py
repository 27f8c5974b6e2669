"""YAML → plain data, plus where every value and key was written.

Why not ``yaml.safe_load``: it forgets positions (we need ``file:line:column`` for every problem)
and silently keeps the last of two duplicate keys (a typo'd second ``duration:`` must not win
quietly). So the document is *composed* into nodes, which carry marks, and walked here.

Scalars follow YAML 1.2's core schema rather than PyYAML's 1.1 defaults, because the 1.1 rules
bite previz manifests: ``ratio: 16:9`` would be the sexagesimal integer 969, ``deadline: 06:30``
the integer 390, a date would become a ``datetime``, ``yes``/``no``/``on``/``off`` booleans and
``010`` the octal 8, ``0x5`` and ``1_0`` the integers 5 and 10. Here those stay strings (so a
``duration: 0x5`` is refused as not a whole number, at its line); booleans are ``true``/``false``
only; numbers are plain decimals (no leading zeros, no ``_``) and floats with a dot. Every
non-string form is also a non-string in YAML 1.1, so whatever ``yaml.safe_dump`` leaves unquoted is
read back as a string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.errors import ManifestError, Problem

Loc = tuple[str | int, ...]
Pos = tuple[int, int]

#: Alias expansion guard ("billion laughs"): a manifest never needs this many nodes.
MAX_NODES = 200_000

_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(
    r"^(?:[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9]+(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_REPLACED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_DROPPED = _REPLACED | {"tag:yaml.org,2002:timestamp"}


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalar resolution (see the module docstring)."""


#: libyaml's parser where PyYAML was built with it (about 10× faster on big manifests), else None.
_CBase: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def _core_schema(loader: type[yaml.SafeLoader]) -> None:
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in pairs if tag not in _DROPPED]
        for first, pairs in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
    loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
    loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


_core_schema(_Loader)
_CLoader: type[yaml.SafeLoader] | None = None
if _CBase is not None:
    _CLoader = type("_CLoader", (_CBase,), {"__doc__": "CSafeLoader with the same core schema."})
    _core_schema(_CLoader)


#: Scalar constructors that return their value directly (no generator, no recursion).
_PLAIN: dict[str, Callable[[Any, Node], Any]] = {
    f"tag:yaml.org,2002:{name}": yaml.SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("str", "int", "float", "bool", "null")
}


@dataclass(frozen=True)
class Located:
    """A parsed document and the 1-based position of every value (and mapping key) in it."""

    data: Any
    values: Mapping[Loc, Pos]
    keys: Mapping[Loc, Pos]
    problems: tuple[Problem, ...]

    def where(self, loc: Loc) -> Pos:
        """Where the value at ``loc`` was written, or its nearest written ancestor."""
        for n in range(len(loc), -1, -1):
            pos = self.values.get(loc[:n])
            if pos is not None:
                return pos
        return (1, 1)

    def key_where(self, loc: Loc) -> Pos:
        """Where the key of the entry at ``loc`` was written (for unknown or duplicate keys)."""
        return self.keys.get(loc) or self.where(loc)

    def has(self, loc: Loc) -> bool:
        return loc in self.values


def format_loc(loc: Loc) -> str:
    """``("shots", 1, "duration")`` → ``shots[1].duration``: the field path users see."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _pos(node: Node) -> Pos:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    """Turns composed nodes into plain data while recording positions and duplicate keys."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.values: dict[Loc, Pos] = {}
        self.keys: dict[Loc, Pos] = {}
        self.problems: list[Problem] = []
        self._own_keys: dict[int, set[int]] = {}
        self._active: set[int] = set()
        self._count = 0

    def problem(self, pos: Pos, loc: Loc, message: str) -> None:
        self.problems.append(Problem(self.file, pos[0], pos[1], format_loc(loc), message))

    def walk(self, node: Node, loc: Loc) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            raise _TooBig(_pos(node))
        self.values[loc] = _pos(node)
        if type(node) is ScalarNode:  # the common case, and one that cannot recurse
            return self._scalar(node, loc)
        if id(node) in self._active:
            self.problem(_pos(node), loc, "an alias refers to itself (recursive YAML structure)")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, loc)
            if isinstance(node, SequenceNode):
                return [self.walk(item, (*loc, i)) for i, item in enumerate(node.value)]
            return self._scalar(node, loc)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: Node, loc: Loc) -> Any:
        plain = _PLAIN.get(node.tag)
        try:
            if plain is not None:  # what construct_object would call, minus its bookkeeping
                return plain(self.loader, node)
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problem(_pos(node), loc, f"cannot read this value: {getattr(exc, 'problem', exc)}")
            return None

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        own = self._own_keys.setdefault(id(node), {id(k) for k, _ in node.value})
        try:
            self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        except yaml.YAMLError as exc:
            self.problem(_pos(node), loc, f"bad merge key: {getattr(exc, 'problem', exc)}")
        out: dict[str, Any] = {}
        first: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, loc)
            if key is None:
                continue
            earlier = first.get(key)
            if earlier is not None and id(earlier) in own and id(key_node) in own:
                line = earlier.start_mark.line + 1
                self.problem(
                    _pos(key_node), (*loc, key), f"duplicate key '{key}' (first given on line {line})"
                )
            first.setdefault(key, key_node)
            self.keys[(*loc, key)] = _pos(key_node)
            out[key] = self.walk(value_node, (*loc, key))
        return out

    def _key(self, node: Node, loc: Loc) -> str | None:
        if isinstance(node, ScalarNode):
            return str(node.value)
        self.problem(_pos(node), loc, "a key must be a plain word, not a list or mapping")
        return None


class _TooBig(Exception):
    def __init__(self, pos: Pos) -> None:
        self.pos = pos


def _syntax_problem(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    """One clear message for a YAML syntax error, at the mark where the parser gave up."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return Problem(
            file, line, column, "", f"YAML syntax error: character U+{int(exc.character):04X} is not allowed"
        )
    mark = getattr(exc, "problem_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    what = str(getattr(exc, "problem", None) or exc)
    if "another document" in what:
        return Problem(file, line, column, "", "a manifest is one YAML document; found a second one (---)")
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        what += f" ({context} on line {context_mark.line + 1})"
    if "\\t" in what or "\t" in what:
        what += "; indent YAML with spaces, not tabs"
    return Problem(file, line, column, "", f"YAML syntax error: {what}")


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document. Syntax errors raise ManifestError; duplicate keys are collected.

    Composes with libyaml where it is available. On any YAML error the pure-Python parser reads
    the text again, so every message (wording, line, column) is the one it has always given —
    libyaml words its errors differently, and a broken manifest is small and rare.
    """
    if _CLoader is not None:
        try:
            return _load_with(_CLoader, text, file)
        except ManifestError:
            pass
    return _load_with(_Loader, text, file)


def _load_with(loader_class: type[yaml.SafeLoader], text: str, file: str) -> Located:
    try:
        loader = loader_class(text)
    except yaml.YAMLError as exc:
        raise ManifestError([_syntax_problem(file, text, exc)]) from None
    try:
        root = loader.get_single_node()
        walker = _Walker(loader, file)
        data = walker.walk(root, ()) if root is not None else None
    except yaml.YAMLError as exc:
        raise ManifestError([_syntax_problem(file, text, exc)]) from None
    except _TooBig as exc:
        message = f"the document expands to more than {MAX_NODES} values (aliases?)"
        raise ManifestError([Problem(file, exc.pos[0], exc.pos[1], "", message)]) from None
    finally:
        loader.dispose()
    values: dict[Loc, Pos] = walker.values if root is not None else {(): (1, 1)}
    return Located(data, values, walker.keys, tuple(walker.problems))
