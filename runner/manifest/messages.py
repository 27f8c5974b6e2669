"""Pydantic's validation errors → Problems located in the YAML and saying what is allowed.

Pydantic's own words ("Input should be a valid integer", "String should match pattern …") are
written for programmers; a previz TD reading them at 11 p.m. needs the field, the value they wrote
and what would have been accepted. Each error type gets a message here; a few fields get their own.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from runner.errors import Problem
from runner.manifest.limits import PROVIDERS
from runner.manifest.schema import MAX_CONCURRENCY, MAX_NAME, MAX_TAKES, ManifestDoc, allowed_keys
from runner.manifest.takes import SEED_MAX
from runner.manifest.yamlpos import Loc, Located, format_loc

_Msg = Callable[[ErrorDetails], str]


@dataclass(frozen=True)
class ShapeResult:
    """The validated document when the shape is right, else the problems and where they sit."""

    doc: ManifestDoc | None
    problems: tuple[Problem, ...]
    bad: frozenset[Loc]


def check_shape(located: Located, file: str) -> ShapeResult:
    """Validate the document's shape; every error becomes a Problem at its YAML node."""
    if located.data is None:
        empty = Problem(file, 1, 1, "", "the file is empty; a manifest starts with `version: 1`")
        return ShapeResult(None, (empty,), frozenset({()}))
    try:
        doc = ManifestDoc.model_validate(located.data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = tuple(_problem(located, file, err) for err in errors)
        return ShapeResult(None, problems, frozenset(tuple(err["loc"]) for err in errors))
    return ShapeResult(doc, (), frozenset())


def _problem(located: Located, file: str, err: ErrorDetails) -> Problem:
    loc: Loc = tuple(err["loc"])
    line, column = located.key_where(loc) if err["type"] == "extra_forbidden" else located.where(loc)
    return Problem(file, line, column, format_loc(loc), message_for(err))


def message_for(err: ErrorDetails) -> str:
    """The user-facing message of one pydantic error: field-specific first, then by error type."""
    special = _SPECIAL.get((_field(tuple(err["loc"])), err["type"]))
    if special is not None:
        return special(err)
    generic = _GENERIC.get(err["type"])
    return generic(err) if generic is not None else str(err["msg"])


def _field(loc: Loc) -> str:
    """The field an error is about: ``seeds[]`` for an item of ``seeds``, ``""`` for the root."""
    if not loc:
        return ""
    if isinstance(loc[-1], int):
        return f"{loc[-2]}[]" if len(loc) > 1 else "[]"
    return loc[-1]


def shown(value: Any) -> str:
    """A value as the user wrote it, short enough for one line."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _ctx(err: ErrorDetails, name: str) -> Any:
    return err.get("ctx", {}).get(name)


def _unknown_key(err: ErrorDetails) -> str:
    loc: Loc = tuple(err["loc"])
    key = str(loc[-1])
    if loc[:-1] == ("defaults",) and key == "id":
        return "id cannot be a default: every shot has its own id"
    allowed = allowed_keys(loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.7)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{key}'{guess} (allowed here: {', '.join(allowed)})"


def _as_text(err: ErrorDetails) -> str:
    value = err["input"]
    quote = " — put it in quotes" if isinstance(value, int | float) else ""
    return f"must be text, got {shown(value)}{quote}"


_REQUIRED_HINT = {
    "version": "write `version: 1`",
    "name": "a run name like harbor-previz; it names the run directory",
    "provider": f"the default provider for every shot: {', '.join(PROVIDERS)}",
    "shots": "the list of shots",
    "id": "every shot needs a unique id",
}

_GENERIC: dict[str, _Msg] = {
    "missing": lambda e: f"is required ({_REQUIRED_HINT.get(_field(tuple(e['loc'])), 'no default')})",
    "extra_forbidden": _unknown_key,
    "int_type": lambda e: f"must be a whole number, got {shown(e['input'])}",
    "float_type": lambda e: f"must be a number, got {shown(e['input'])}",
    "string_type": _as_text,
    "bool_type": lambda e: f"must be true or false, got {shown(e['input'])}",
    "list_type": lambda e: f"must be a list like [a, b], got {shown(e['input'])}",
    "model_type": lambda e: f"must be a mapping of `key: value` lines, got {shown(e['input'])}",
    "dict_type": lambda e: f"must be a mapping of `key: value` lines, got {shown(e['input'])}",
    "string_too_short": lambda e: "must not be empty",
    "string_too_long": lambda e: (
        f"is {len(e['input'])} characters long; at most {_ctx(e, 'max_length')} allowed"
    ),
    "too_short": lambda e: "must not be empty",
    "too_long": lambda e: f"has {_ctx(e, 'actual_length')} items; at most {_ctx(e, 'max_length')} allowed",
    "greater_than_equal": lambda e: f"must be at least {_ctx(e, 'ge')}, got {shown(e['input'])}",
    "greater_than": lambda e: f"must be more than {_ctx(e, 'gt')}, got {shown(e['input'])}",
    "less_than_equal": lambda e: f"must be at most {_ctx(e, 'le')}, got {shown(e['input'])}",
    "finite_number": lambda e: f"must be a finite number, got {shown(e['input'])}",
    "literal_error": lambda e: f"must be {_ctx(e, 'expected')}, got {shown(e['input'])}",
    "value_error": lambda e: str(_ctx(e, "error")),
    "string_pattern_mismatch": lambda e: f"{shown(e['input'])} does not match {_ctx(e, 'pattern')}",
}


def _seed_range(err: ErrorDetails) -> str:
    return f"seed {shown(err['input'])} is out of range (allowed: 0…{SEED_MAX})"


_SPECIAL: dict[tuple[str, str], _Msg] = {
    ("", "model_type"): lambda e: (
        f"a manifest must be a mapping of keys (version, name, provider, shots, …), got {shown(e['input'])}"
    ),
    ("version", "literal_error"): lambda e: (
        f"must be 1, got {shown(e['input'])} (this runner reads manifest version 1)"
    ),
    ("name", "string_pattern_mismatch"): lambda e: (
        f"{shown(e['input'])} is not a valid run name (allowed: lowercase letters, digits, '-' and '_', "
        "starting with a letter or digit; it names the run directory)"
    ),
    ("id", "string_pattern_mismatch"): lambda e: (
        f"{shown(e['input'])} is not a valid shot id (allowed: letters, digits, '-' and '_', "
        "starting with a letter or digit; it names the shot's folder and files)"
    ),
    ("name", "string_too_long"): lambda e: (
        f"is {len(e['input'])} characters long; a run name is at most {MAX_NAME} (it names the run directory)"
    ),
    ("id", "string_too_long"): lambda e: (
        f"is {len(e['input'])} characters long; a shot id is at most {MAX_NAME} (it names folders and files)"
    ),
    ("shots[]", "model_type"): lambda e: (
        f"each shot must be a mapping with id, prompt, image, …; got {shown(e['input'])}"
    ),
    ("shots", "too_short"): lambda e: "is empty; a manifest needs at least one shot",
    ("seeds", "too_short"): lambda e: "is empty; list at least one seed, or use `takes: N`",
    ("seeds", "too_long"): lambda e: (
        f"lists {_ctx(e, 'actual_length')} seeds; at most {MAX_TAKES} takes per shot"
    ),
    ("seeds[]", "greater_than_equal"): _seed_range,
    ("seeds[]", "less_than_equal"): _seed_range,
    ("takes", "greater_than_equal"): lambda e: (
        f"must be at least 1, got {shown(e['input'])} (leave takes out for one take)"
    ),
    ("takes", "less_than_equal"): lambda e: f"must be at most {MAX_TAKES} per shot, got {shown(e['input'])}",
    ("concurrency", "greater_than_equal"): lambda e: (
        f"must be at least 1, got {shown(e['input'])} (tasks in flight at each provider)"
    ),
    ("concurrency", "less_than_equal"): lambda e: (
        f"must be at most {MAX_CONCURRENCY}, got {shown(e['input'])} (tasks in flight at each provider)"
    ),
    ("budget_usd", "greater_than"): lambda e: (
        f"must be more than 0, got {shown(e['input'])} (leave budget_usd out for no cap)"
    ),
}
