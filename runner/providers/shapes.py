"""Reading the providers' answers and shaping what is sent: the adapters' shared vocabulary.

Why apart from ``_http``: that module is the wire (one request, its failures translated); this one
is about JSON that may be any shape — a field that should be a string may be a number, a list may
be missing — and about the neutral take's limits per provider. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any

from runner.errors import FailureKind, TerminalError
from runner.manifest.limits import LIMITS, RATIO_SIZES
from runner.providers.base import NOT_FOUND, SubmitRequest, TaskState, TaskStatus

_MODERATION_WORDS = ("moderat", "safety", "nsfw", "contentpolicy", "unsafe")


def mentions_moderation(*texts: str | None) -> bool:
    """True when a provider's error name/code/message speaks of moderation or safety filters."""
    squashed = "".join(t for t in texts if t).lower().replace("_", "").replace("-", "").replace(" ", "")
    return any(word in squashed for word in _MODERATION_WORDS)


# --- lenient JSON access -------------------------------------------------------------------------


def as_dict(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def as_int(value: object) -> int | None:
    """An integer (seeds), never a bool."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    """A number, or a numeric string (providers are loose about this); never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def dig(value: object, *path: str) -> object:
    """``value[p0][p1]...`` through dicts, or None as soon as a step is missing."""
    for step in path:
        node = as_dict(value)
        if node is None:
            return None
        value = node.get(step)
    return value


def message_of(data: object, text: str) -> str:
    """The human message in an error body, whichever provider's envelope it uses."""
    node = as_dict(data)
    if node is not None:
        errors = as_list(node.get("errors"))
        first_error = errors[0] if errors else None
        for candidate in (node.get("message"), node.get("error"), node.get("detail"), first_error):
            found = _message_text(candidate)
            if found:
                return found
    return text.strip() or "(empty body)"


def _message_text(candidate: object) -> str | None:
    if isinstance(candidate, str) and candidate:
        return candidate
    if isinstance(candidate, list) and candidate:
        return "; ".join(str(item) for item in candidate)
    node = as_dict(candidate)
    if node is not None:
        parts = [as_str(node.get(k)) for k in ("code", "name", "message")]
        return ": ".join(p for p in parts if p) or None
    return None


def not_found_status(handle: str) -> TaskStatus:
    """A task the provider does not know (404 on its poll): it ended, and nothing will change that."""
    return TaskStatus(
        handle=handle,
        state=TaskState.FAILED,
        raw_status=NOT_FOUND,
        failure_kind=FailureKind.PROVIDER,
        failure_message="the provider does not know this task (HTTP 404)",
    )


# --- the neutral take, checked before anything is spent ------------------------------------------


def model_id(provider: str, request: SubmitRequest) -> str:
    """The provider's model id for the take, after checking what the provider cannot accept.

    ``validate`` catches these offline; checking again here keeps an adapter from sending
    something the provider would reject, or silently ignore (a last frame, an odd duration).
    """
    take, limits = request.take, LIMITS[provider]
    problem: str | None = None
    if take.model not in limits.models:
        problem = f"model {take.model!r} is not offered (offered: {', '.join(limits.models)})"
    elif take.duration not in limits.durations:
        problem = f"duration {take.duration} is not allowed (allowed: {limits.durations})"
    elif take.ratio not in RATIO_SIZES:
        problem = f"ratio {take.ratio!r} is not allowed (allowed: {', '.join(RATIO_SIZES)})"
    elif request.last_image is not None and not limits.last_image:
        problem = "a last frame is not supported"
    if problem:
        raise TerminalError(problem, kind=FailureKind.INPUT, provider=provider, take=take.label)
    return limits.models[take.model]
