"""The manifest's shape (DESIGN §2) as pydantic models: one source for validation and JSON Schema.

These models check what can be checked field by field — types, patterns, ranges, unknown keys —
in strict mode (YAML ``"5"`` is not the number 5). Everything that depends on another field (the
shot's provider, defaults, images) is :mod:`runner.manifest.rules`' job. Pydantic's error words are
not shown to users: :mod:`runner.manifest.messages` rewrites each error to say what is allowed.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runner.errors import ConfigError
from runner.manifest.limits import PROVIDERS, RATIOS
from runner.manifest.takes import SEED_MAX

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
#: Longest run name and shot id: they name folders and files, and a clip's file name must fit (errno 36).
MAX_NAME = 64
#: Names Windows reserves for devices in any case and with any extension: never a folder or file name.
WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)}
)
MODELS = ("gen4_turbo",)
DEFAULT_MODEL = "gen4_turbo"
DEFAULT_CONCURRENCY = 4
#: Most tasks in flight at one provider: Runway's tiers allow 1–20 concurrent generations, so 64 is
#: beyond any account, and a typo'd ``concurrency: 10000`` is refused before it is planned or run.
MAX_CONCURRENCY = 64
DEFAULT_DURATION = 5  # the one duration every provider accepts
DEFAULT_RATIO = "16:9"  # every provider's own default
AUTO_RATIO = "auto"  # the allowed ratio nearest the first frame's width/height
DEFAULT_OUTPUT_DIR = "outputs"
#: Guard against a typo'd ``takes: 1000``: an overnight batch never needs more takes of one shot.
MAX_TAKES = 100

_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
DEADLINE_FORMS = 'a local time "HH:MM" like "06:30", or an ISO datetime like "2026-05-01T06:30:00+02:00"'


def parse_deadline(value: str, now: datetime) -> datetime:
    """``"06:30"`` → the next 06:30 local time after ``now``; an ISO datetime → itself.

    A naive ``now`` gets a naive local answer; an aware ``now`` an aware one. Naive ISO datetimes
    are local time. Raises ConfigError (exit 2) with the accepted forms when ``value`` is neither.
    """
    match = _TIME_OF_DAY.match(value.strip())
    if match:
        hour, minute, second = (int(g or 0) for g in match.groups())
        return _next_local_time(time(hour, minute, second), now)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"deadline {value!r} is not {DEADLINE_FORMS}") from None
    if now.tzinfo is None:
        return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment
    return (moment if moment.tzinfo else moment.astimezone()).astimezone(now.tzinfo)


def _next_local_time(at: time, now: datetime) -> datetime:
    local_now = now.astimezone().replace(tzinfo=None) if now.tzinfo else now
    candidate = datetime.combine(local_now.date(), at)
    if candidate <= local_now:
        candidate += timedelta(days=1)
    return candidate.astimezone(now.tzinfo) if now.tzinfo else candidate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
Tag = Annotated[str, Field(min_length=1)]


class Moderation(_Strict):
    """Runway's content moderation, as Runway and Runware take it (AIML has no such setting)."""

    public_figure_threshold: Literal["auto", "low"] = Field(
        description="auto (the provider's default) or low: fewer refusals of plates showing real people."
    )


class ShotFields(_Strict):
    """What a shot may set — and so what ``defaults`` may set for every shot."""

    prompt: str | None = Field(
        None, min_length=1, description="What happens in the clip (≤ 1000 characters)."
    )
    image: str | None = Field(
        None,
        min_length=1,
        description="First frame: a local file (relative to the manifest), https URL or data: URI.",
    )
    last_image: str | None = Field(
        None, min_length=1, description="Last frame; only providers with a last frame (aimlapi)."
    )
    duration: int | None = Field(None, description="Clip seconds: aimlapi 5 or 10; runware and runway 2–10.")
    ratio: str | None = Field(
        None,
        description="Aspect ratio, or auto: the allowed ratio nearest the first frame's own shape.",
        json_schema_extra={"enum": [*RATIOS, AUTO_RATIO]},
    )
    moderation: Moderation | None = Field(None, description="Content moderation (runway and runware only).")
    provider: str | None = Field(
        None, description="Provider for this shot.", json_schema_extra={"enum": list(PROVIDERS)}
    )
    model: str | None = Field(
        None, description="Neutral model name.", json_schema_extra={"enum": list(MODELS)}
    )
    seeds: list[Seed] | None = Field(
        None, min_length=1, max_length=MAX_TAKES, description="One take per seed."
    )
    takes: int | None = Field(
        None,
        ge=1,
        le=MAX_TAKES,
        description="Number of takes with seeds derived by the runner (exclusive with seeds).",
    )
    tags: list[Tag] | None = Field(None, description="Free labels for reports.")


class ShotDoc(ShotFields):
    """One shot as written in ``shots:``."""

    id: str = Field(
        pattern=ID_PATTERN, max_length=MAX_NAME, description="Unique shot id; names the shot's folder."
    )

    @field_validator("id")
    @classmethod
    def _not_a_device(cls, value: str) -> str:
        """A shot's folder named ``CON`` or ``lpt1`` cannot be made, copied or opened on Windows."""
        if value.split(".", 1)[0].upper() in WINDOWS_DEVICES:
            raise ValueError(
                f"{value!r} is a Windows device name (CON, PRN, AUX, NUL, COM1–9, LPT1–9); "
                "it names the shot's folder, which Windows cannot make: choose another id"
            )
        return value


class ManifestDoc(_Strict):
    """A manifest file, version 1, as written."""

    version: Literal[1] = Field(description="Manifest format version; must be 1.")
    name: str = Field(
        pattern=NAME_PATTERN, max_length=MAX_NAME, description="Run name; names the run directory."
    )
    provider: str = Field(
        description="Default provider for every shot.", json_schema_extra={"enum": list(PROVIDERS)}
    )
    model: str = Field(DEFAULT_MODEL, description="Default model.", json_schema_extra={"enum": list(MODELS)})
    ratio: str | None = Field(
        None,
        description="Default aspect ratio for every shot, or auto (from each first frame).",
        json_schema_extra={"enum": [*RATIOS, AUTO_RATIO]},
    )
    moderation: Moderation | None = Field(None, description="Default content moderation for every shot.")
    concurrency: int = Field(
        DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY, description="Tasks in flight at each provider (1–64)."
    )
    budget_usd: float | None = Field(
        None, gt=0, description="Hard cap on spend for this manifest, all runs together."
    )
    deadline: str | None = Field(None, description="No new submissions after this: " + DEADLINE_FORMS + ".")
    simulate: bool = Field(False, description="Run against the built-in simulator.")
    output_dir: str = Field(
        DEFAULT_OUTPUT_DIR, min_length=1, description="Relative to the manifest's folder."
    )
    defaults: ShotFields = Field(default_factory=ShotFields, description="Any shot field, for every shot.")
    shots: list[ShotDoc] = Field(min_length=1, description="The shots, in order.")

    @field_validator("deadline")
    @classmethod
    def _deadline_form(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_deadline(value, datetime(2000, 1, 1))
            except ConfigError:
                raise ValueError(f"{value!r} is not {DEADLINE_FORMS}") from None
        return value


def _drop_null(node: Any) -> Any:
    """Optional fields are ``X | None`` for pydantic, but editors should offer only X."""
    if isinstance(node, list):
        return [_drop_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        merged = rest[0] if len(rest) == 1 else {"anyOf": rest}
        kept = {k: v for k, v in node.items() if k != "anyOf" and not (k == "default" and v is None)}
        node = kept | merged
    return {k: _drop_null(v) for k, v in node.items()}


def json_schema() -> dict[str, Any]:
    """JSON Schema of a version 1 manifest, for editors (``previz schema``)."""
    schema: dict[str, Any] = _drop_null(ManifestDoc.model_json_schema())
    schema["title"] = "previz-runner manifest, version 1"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def allowed_keys(loc: tuple[str | int, ...]) -> tuple[str, ...]:
    """The keys a mapping at ``loc`` may hold: top level, ``defaults`` or a shot."""
    if not loc:
        return tuple(ManifestDoc.model_fields)
    if loc[-1] == "moderation":
        return tuple(Moderation.model_fields)
    if loc[0] == "defaults":
        return tuple(ShotFields.model_fields)
    return ("id", *ShotFields.model_fields)
