"""Checks that need more than one field: a shot's effective values against its provider's limits.

A shot field's value comes from the shot, else ``defaults``, else the top level (provider and
model only), else a built-in default; a ``null`` counts as not written. Problems point at the node
where the offending value was written — a bad ``defaults.duration`` is reported at that line, naming
the shot that inherits it. A value whose own shape was already reported (``bad``) is not checked
again, but every other check still runs, so one pass reports everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from runner.errors import Problem
from runner.manifest.images import ImageChecker, ImageProblem, size_problem
from runner.manifest.limits import LIMITS, PROVIDERS, RATIO_SIZES, RATIOS
from runner.manifest.messages import shown
from runner.manifest.outdir import output_dir_problem
from runner.manifest.schema import (
    AUTO_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_RATIO,
)
from runner.manifest.takes import ImageRef
from runner.manifest.yamlpos import Loc, Located, format_loc
from runner.textcheck import describe_control, first_control

#: Shot fields that a manifest's top level sets for every shot (below ``defaults``).
_TOP_LEVEL = frozenset({"provider", "model", "ratio", "moderation"})
#: An explicit ratio further than this from the first frame's own shape earns a warning.
MISMATCH = 1.25
_BUILTIN: dict[str, Any] = {"duration": DEFAULT_DURATION, "ratio": DEFAULT_RATIO, "model": DEFAULT_MODEL}
_IMAGE_FORMS = "a local file relative to the manifest, an https URL or a data: URI"


class Src(NamedTuple):
    """A shot field's effective value and where it was written (``loc`` None: built-in default).

    A NamedTuple, not a frozen dataclass: 10,000 shots make 100,000 of these, at a third the cost.
    """

    value: Any
    loc: Loc | None


@dataclass(frozen=True)
class RuleResult:
    problems: tuple[Problem, ...]
    shots: tuple[dict[str, Any], ...]  # each shot's effective fields; complete only without problems
    warnings: tuple[Problem, ...] = ()  # worth a look, not an error (e.g. a ratio unlike the plate's)


@dataclass
class _Ctx:
    located: Located
    file: str
    bad: frozenset[Loc]
    images: ImageChecker
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: The mappings a shot inherits from, read directly: 10,000 shots look up ten fields each.
    defaults: dict[str, Any] = field(init=False)
    top: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        data = self.located.data
        self.top = data if isinstance(data, dict) else {}
        defaults = self.top.get("defaults")
        self.defaults = defaults if isinstance(defaults, dict) else {}

    def usable(self, loc: Loc) -> bool:
        """False when this value, a part of it or a container of it already has a shape problem."""
        return not self.bad or not any(loc[: len(b)] == b or b[: len(loc)] == loc for b in self.bad)

    def report(self, loc: Loc, message: str, *, warning: bool = False) -> None:
        line, column = self.located.where(loc)
        found = Problem(self.file, line, column, format_loc(loc), message)
        (self.warnings if warning else self.problems).append(found)

    def value_at(self, loc: Loc) -> Any:
        node = self.located.data
        for part in loc:
            node = node[part]
        return node


class _Shot:
    """One shot's view of the manifest: effective values with their origin."""

    def __init__(self, ctx: _Ctx, index: int, raw: dict[str, Any]) -> None:
        self.ctx = ctx
        self.loc: Loc = ("shots", index)
        self.raw = raw  # the shot's mapping, as written
        self._got: dict[str, Src | None] = {}

    def get(self, name: str) -> Src | None:
        """The effective value; None when it is unusable (its problem is already reported)."""
        if name not in self._got:
            self._got[name] = self._lookup(name)
        return self._got[name]

    def _lookup(self, name: str) -> Src | None:
        """Shot, then defaults, then top level: a key that is absent or null there is not written."""
        value = self.raw.get(name)
        if value is not None:
            return self._written(value, (*self.loc, name))
        value = self.ctx.defaults.get(name)
        if value is not None:
            return self._written(value, ("defaults", name))
        value = self.ctx.top.get(name) if name in _TOP_LEVEL else None
        if value is not None:
            return self._written(value, (name,))
        return Src(_BUILTIN.get(name), None)

    def _written(self, value: Any, loc: Loc) -> Src | None:
        return Src(value, loc) if self.ctx.usable(loc) else None

    def where(self, src: Src, name: str) -> Loc:
        return src.loc if src.loc is not None else (*self.loc, name)

    def inherited(self, src: Src) -> str:
        """Suffix naming the shot when the value was written in defaults or at the top level."""
        if src.loc is None or src.loc[0] == "shots":
            return ""
        shot_id = self.raw.get("id")
        return f" (inherited by {format_loc(self.loc)} {shown(shot_id)})"


def _allowed_durations(durations: tuple[int, ...]) -> str:
    contiguous = len(durations) > 2 and durations == tuple(range(durations[0], durations[-1] + 1))
    return f"{durations[0]}–{durations[-1]}" if contiguous else ", ".join(map(str, durations))


def _provider_model(shot: _Shot) -> tuple[str, str] | None:
    provider, model = shot.get("provider"), shot.get("model")
    if provider is None or provider.value is None:
        return None
    if provider.value not in LIMITS:
        message = f"unknown provider {shown(provider.value)} (allowed: {', '.join(PROVIDERS)})"
        shot.ctx.report(shot.where(provider, "provider"), message)
        return None
    models = LIMITS[provider.value].models
    if model is None:
        return None
    if model.value in models:
        return provider.value, model.value
    hint = next((f"; write the neutral name {n}" for n, wire in models.items() if wire == model.value), "")
    message = f"unknown model {shown(model.value)} for {provider.value} (allowed: {', '.join(models)}){hint}"
    shot.ctx.report(shot.where(model, "model"), message)
    return None


def _duration(shot: _Shot, pm: tuple[str, str] | None) -> None:
    src = shot.get("duration")
    if src is None or pm is None or src.value in LIMITS[pm[0]].durations:
        return
    allowed = _allowed_durations(LIMITS[pm[0]].durations)
    message = f"{shown(src.value)} is not allowed for {pm[0]} {pm[1]} (allowed: {allowed})"
    shot.ctx.report(shot.where(src, "duration"), message + shot.inherited(src))


def _ratio(shot: _Shot, pm: tuple[str, str] | None) -> None:
    src = shot.get("ratio")
    if src is None or src.value in RATIOS or src.value == AUTO_RATIO:
        return
    target = f" for {pm[0]} {pm[1]}" if pm else ""
    pixels = {f"{w}:{h}": name for name, (w, h) in RATIO_SIZES.items()}
    hint = f"; {src.value} is the pixel size of {pixels[src.value]}" if src.value in pixels else ""
    message = f"{shown(src.value)} is not allowed{target} (allowed: {', '.join(RATIOS)}){hint}"
    shot.ctx.report(shot.where(src, "ratio"), message + shot.inherited(src))


def _prompt(shot: _Shot, pm: tuple[str, str] | None) -> None:
    src = shot.get("prompt")
    if src is None:
        return
    where = shot.where(src, "prompt")
    if src.value is None or not src.value.strip():
        what = "is required (set it on the shot or in defaults)" if src.value is None else "is blank"
        shot.ctx.report(where, what)
        return
    limits = LIMITS[pm[0]] if pm else None
    if limits is None or limits.prompt_length(src.value) <= limits.max_prompt:
        return
    length, cap = limits.prompt_length(src.value), limits.max_prompt
    if limits.prompt_utf16:
        message = (
            f"is {length} UTF-16 code units long; {limits.name} allows at most {cap} "
            "(emoji and other characters outside the Basic Multilingual Plane count as 2)"
        )
    else:
        message = f"is {length} characters long; {limits.name} allows at most {cap}"
    shot.ctx.report(where, message + shot.inherited(src))


def _control_characters(shot: _Shot) -> None:
    """Prompts keep newline and tab only; tags none: a NUL or an ANSI escape is never meant."""
    for name, allow in (("prompt", "\n\t"), ("tags", "")):
        src = shot.get(name)
        if src is None or src.value is None:
            continue
        texts = [src.value] if name == "prompt" else src.value
        for i, text in enumerate(texts):
            bad = first_control(text, allow) if isinstance(text, str) else None
            if bad is None:
                continue
            where = shot.where(src, name) if name == "prompt" else (*shot.where(src, name), i)
            what = "newline and tab are the only control characters allowed" if allow else "none allowed"
            message = f"holds a control character ({describe_control(text, bad)}); {what}"
            shot.ctx.report(where, message + shot.inherited(src))


def _duplicate_tags(shot: _Shot) -> None:
    """``tags: [a, a]`` is a typo (the second meant something else): a warning at the repeat.

    Tags written in ``defaults`` or at the top level are checked once, not once per shot.
    """
    src = shot.get("tags")
    if src is None or not isinstance(src.value, list):
        return
    base = shot.where(src, "tags")
    said = {w.path for w in shot.ctx.warnings}
    first: dict[str, int] = {}
    for i, tag in enumerate(src.value):
        if not isinstance(tag, str):
            continue
        if tag in first and format_loc((*base, i)) not in said:
            where = format_loc((*base, first[tag]))
            shot.ctx.report((*base, i), f"duplicate tag {tag!r} (already {where}); remove one", warning=True)
        first.setdefault(tag, i)


def _image(shot: _Shot, name: str, pm: tuple[str, str] | None) -> ImageRef | None:
    src = shot.get(name)
    if src is None or src.value is None:
        if src is not None and name == "image":
            shot.ctx.report((*shot.loc, name), f"is required: the first frame, {_IMAGE_FORMS}")
        return None
    where = shot.where(src, name)
    try:
        ref = shot.ctx.images.check(src.value)
    except ImageProblem as problem:
        shot.ctx.report(where, str(problem))
        return None
    too_big = size_problem(ref, pm[0]) if pm else None
    if too_big:
        shot.ctx.report(where, too_big)
    return ref


def _last_frame_support(shot: _Shot, pm: tuple[str, str] | None) -> None:
    src = shot.get("last_image")
    if src is None or src.value is None or pm is None or LIMITS[pm[0]].last_image:
        return
    able = ", ".join(n for n, lim in LIMITS.items() if lim.last_image)
    message = f"{pm[0]} has no last frame; last_image works only with {able}"
    shot.ctx.report(shot.where(src, "last_image"), message + shot.inherited(src))


def _seeds_takes(shot: _Shot) -> tuple[tuple[int, ...] | None, int | None]:
    """Seeds or takes from the nearest level that sets either; both on one level is an error."""
    ctx = shot.ctx
    for mapping, level in ((shot.raw, shot.loc), (ctx.defaults, ("defaults",))):
        seeds_loc, takes_loc = (*level, "seeds"), (*level, "takes")
        has_seeds, has_takes = mapping.get("seeds") is not None, mapping.get("takes") is not None
        if has_seeds:
            _repeated_seeds(ctx, seeds_loc)
        if has_seeds and has_takes:
            message = "give either seeds (one take per seed) or takes (N takes, seeds derived), not both"
            ctx.report(takes_loc, message)
        if has_seeds or has_takes:
            seeds = tuple(mapping["seeds"]) if has_seeds and ctx.usable(seeds_loc) else None
            takes = mapping["takes"] if has_takes and ctx.usable(takes_loc) else None
            return seeds, takes
    return None, None


def _repeated_seeds(ctx: _Ctx, loc: Loc) -> None:
    """A seed listed twice would be the same take twice; checked even if other items are bad."""
    seeds = ctx.value_at(loc)
    if not isinstance(seeds, list):
        return
    seen: set[int] = set()
    for j, seed in enumerate(seeds):
        if not isinstance(seed, int) or not ctx.usable((*loc, j)):
            continue
        if seed in seen:
            ctx.report((*loc, j), f"seed {seed} is listed twice (a repeated seed would be the same take)")
        seen.add(seed)


def _resolve(shot: _Shot) -> dict[str, Any]:
    pm = _provider_model(shot)
    _duration(shot, pm)
    _ratio(shot, pm)
    _prompt(shot, pm)
    _control_characters(shot)
    _duplicate_tags(shot)
    _last_frame_support(shot, pm)
    seeds, takes = _seeds_takes(shot)
    values = {name: getattr(shot.get(name), "value", None) for name in ("id", "prompt", "duration", "tags")}
    provider, model = pm if pm else (None, None)
    image = _image(shot, "image", pm)
    return values | {
        "ratio": _shape(shot, image),
        "moderation": _moderation(shot, pm),
        "image": image,
        "last_image": _image(shot, "last_image", pm),
        "provider": provider,
        "model": model,
        "seeds": seeds,
        "takes": takes,
        "tags": tuple(values["tags"] or ()),
    }


def nearest_ratio(width: int, height: int) -> str:
    """The allowed ratio closest to ``width``/``height``, by distance between log-ratios."""
    shape = math.log(width / height)
    return min(RATIOS, key=lambda name: abs(math.log(_as_number(name)) - shape))


def _as_number(ratio: str) -> float:
    w, h = ratio.split(":")
    return int(w) / int(h)


def _shape(shot: _Shot, image: ImageRef | None) -> str | None:
    """The ratio to send: as written, or ``auto`` resolved from the first frame's real size."""
    src = shot.get("ratio")
    if src is None or image is None or src.value not in (*RATIOS, AUTO_RATIO):
        return None if src is None else src.value
    known = image.width is not None and image.height is not None and image.height > 0
    if src.value != AUTO_RATIO:
        if known:
            _mismatch(shot, src, image)
        return str(src.value)
    if not known:
        message = (
            f"ratio auto needs the first frame's size, and previz does not fetch {image.source}: "
            "write the ratio (16:9, 9:16, 4:3, 3:4, 1:1 or 21:9), or use a local copy of the image"
        )
        shot.ctx.report(shot.where(src, "ratio"), message + shot.inherited(src))
        return None
    return nearest_ratio(image.width or 1, image.height or 1)


def _mismatch(shot: _Shot, src: Src, image: ImageRef) -> None:
    """A 16:9 plate asked for 9:16 is probably a slip: say so, naming both (a warning)."""
    plate = (image.width or 1) / (image.height or 1)
    asked = _as_number(str(src.value))
    if max(plate, asked) / min(plate, asked) <= MISMATCH:
        return
    message = (
        f"ratio {src.value} is unlike the first frame {image.source} ({image.width}×{image.height}, "
        f"nearest {nearest_ratio(image.width or 1, image.height or 1)}); ratio auto follows the image"
    )
    shot.ctx.report(shot.where(src, "ratio"), message + shot.inherited(src), warning=True)


def _moderation(shot: _Shot, pm: tuple[str, str] | None) -> str | None:
    """Runway's public-figure threshold; refused for AIML, whose API has no such setting."""
    src = shot.get("moderation")
    if src is None or not isinstance(src.value, dict):
        return None
    if pm is not None and pm[0] == "aimlapi":
        message = "aimlapi has no content-moderation setting (its API takes none); remove moderation here"
        shot.ctx.report(shot.where(src, "moderation"), message + shot.inherited(src))
        return None
    threshold = src.value.get("public_figure_threshold")
    return threshold if isinstance(threshold, str) else None


def _unique_ids(ctx: _Ctx, shots: list[Any]) -> None:
    first: dict[str, int] = {}
    for i, raw in enumerate(shots):
        loc: Loc = ("shots", i, "id")
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not ctx.usable(loc):
            continue
        shot_id: str = raw["id"]
        j = first.setdefault(shot_id.casefold(), i)
        if j == i:
            continue
        other, line = shots[j]["id"], ctx.located.where(("shots", j, "id"))[0]
        if other == shot_id:
            ctx.report(loc, f"duplicate shot id '{shot_id}' (first used on line {line})")
        else:
            message = f"shot id '{shot_id}' differs from '{other}' (line {line}) only in letter case"
            ctx.report(loc, message + "; ids name folders, so they must differ by more")


def _output_dir(ctx: _Ctx, base_dir: Path) -> None:
    """The run directory as ``run`` will check it, so ``validate`` and ``plan`` refuse what it refuses."""
    loc: Loc = ("output_dir",)
    written = ctx.top.get("output_dir", DEFAULT_OUTPUT_DIR)
    if not isinstance(written, str) or not ctx.usable(loc):
        return
    name = ctx.top.get("name")
    run_dir = base_dir / written
    if isinstance(name, str) and ctx.usable(("name",)):
        run_dir /= name
    problem = output_dir_problem(run_dir)
    if problem is not None:
        ctx.report(loc, problem)


def check_rules(located: Located, file: str, bad: frozenset[Loc], base_dir: Path) -> RuleResult:
    """Cross-field checks of every shot, images included; returns problems and resolved shots."""
    ctx = _Ctx(located, file, bad, ImageChecker(base_dir))
    _output_dir(ctx, base_dir)
    data = located.data
    shots = data.get("shots") if isinstance(data, dict) else None
    if not isinstance(shots, list):
        return RuleResult(tuple(ctx.problems), ())
    resolved = tuple(
        _resolve(_Shot(ctx, i, raw))
        for i, raw in enumerate(shots)
        if isinstance(raw, dict) and ("shots", i) not in bad
    )
    _unique_ids(ctx, shots)
    return RuleResult(tuple(ctx.problems), resolved, tuple(ctx.warnings))
