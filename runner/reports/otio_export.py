"""``previz export``: the selects as an editorial timeline, through OpenTimelineIO (the ASWF library).

Why OpenTimelineIO and not an EDL written by hand: it is what editorial tools read and convert
(Resolve, Premiere and Avid through their adapters, Nuke Studio, RV), it carries metadata a CMX 3600
EDL has no room for — each take's seed, prompt, provider, task id and cost travel with the clip —
and its own CMX 3600 adapter writes the EDL from the same timeline, so the two cannot disagree.

The timeline: one video track, one clip per shot in the manifest's order (the shot's select; with
``--all`` every done take, in take order). A clip's length is the file's own — the frame count and
rate of its video track, read from the MP4's ``moov`` (:func:`runner.engine.mp4.timing`) — never
the seconds that were asked for. A shot without a select (or whose clip is missing on disk) is left
out with a warning, or with ``--gaps`` held by a gap of the shot's duration, so the cut keeps time.

Media references point at the clip files: relative to the timeline's folder when the timeline is
written inside the run directory (the folder can be moved or zipped whole), absolute ``file://``
URLs otherwise; the timeline's own ``previz`` metadata says which. OpenTimelineIO is imported here
and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import opentimelineio as otio

from runner.engine.mp4 import Mp4Error, Timing, timing
from runner.errors import InputError
from runner.manifest.document import Manifest
from runner.reports.atomic import write_text
from runner.reports.origin import RunTakes, read_takes
from runner.store.records import Record

DEFAULT_RATE = 24.0


@dataclass
class Exported:
    """What was written, and what the user should be told."""

    otio: Path
    edl: Path | None
    clips: int
    gaps: int
    relative: bool  # media references relative to the timeline (inside the run directory)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Take:
    record: Record
    clip: Path
    timing: Timing


def export(
    run_dir: Path,
    manifest: Manifest,
    otio_path: Path,
    *,
    edl_path: Path | None = None,
    every_take: bool = False,
    gaps: bool = False,
) -> Exported:
    """Write the timeline (and the EDL); InputError, nothing written, when a path cannot be used."""
    for path in (otio_path, edl_path):
        if path is not None:
            _check_target(path)
    takes = read_takes(run_dir)
    relative = _inside(otio_path, run_dir)
    done = Exported(otio_path, edl_path, 0, 0, relative)
    timeline = _timeline(manifest, takes, done, every_take=every_take, gaps=gaps)
    if done.clips == 0:
        raise InputError(
            f"{run_dir}: no clip to export ({'no done take' if every_take else 'no select'}; "
            "circle takes with previz select, or export every done take with --all)"
        )
    edl = _edl(timeline, done) if edl_path is not None else None  # before either file is written
    write_text(otio_path, otio.adapters.write_to_string(timeline, "otio_json"))
    if edl_path is not None and edl is not None:
        write_text(edl_path, edl)
    return done


def _timeline(manifest: Manifest, takes: RunTakes, done: Exported, *, every_take: bool, gaps: bool) -> Any:
    timeline = otio.schema.Timeline(name=manifest.name)
    track = otio.schema.Track(name="previz", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    chosen = list(_chosen(manifest, takes, every_take, gaps, done.warnings))
    rate = next((t.timing.rate for _, ts in chosen for t in ts), DEFAULT_RATE)
    for number, (shot, found) in enumerate(chosen, start=1):
        if not found and gaps:
            duration = otio.opentime.RationalTime(round(shot.duration * rate), rate)
            span = otio.opentime.TimeRange(duration=duration)
            track.append(otio.schema.Gap(name=shot.id, source_range=span))
            done.gaps += 1
        for take in found:
            track.append(_clip(take, number, takes, done))
            done.clips += 1
    timeline.metadata["previz"] = {
        "run_dir": str(takes.run_dir),
        "manifest": str(manifest.path),
        "media": "relative to this timeline" if done.relative else "absolute file URLs",
        "takes": "every done take" if every_take else "selects",
    }
    return timeline


def _chosen(
    manifest: Manifest, takes: RunTakes, every_take: bool, gaps: bool, warnings: list[str]
) -> Iterator[tuple[Any, list[_Take]]]:
    """Each shot of the manifest, in order, with the takes that go in (maybe none)."""
    selected = takes.selected()
    for shot in manifest.shots:
        if every_take:
            numbered = sorted(takes.by_number.items())
            records = [r for (s, _), r in numbered if s == shot.id and r.state == "done"]
        else:
            records = [selected[shot.id]] if shot.id in selected else []
        found = [t for t in (_on_disk(r, takes.run_dir, warnings) for r in records) if t is not None]
        if not records:
            kept = (
                f"a gap of {shot.duration} s holds its place" if gaps else "left out (--gaps: a gap instead)"
            )
            warnings.append(f"shot {shot.id}: {'no done take' if every_take else 'no select'}; {kept}")
        yield shot, found


def _on_disk(record: Record, run_dir: Path, warnings: list[str]) -> _Take | None:
    clip = run_dir / (record.output or "")
    try:
        return _Take(record, clip, timing(clip))
    except (OSError, Mp4Error) as exc:
        why = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc})"
        warnings.append(f"{record.label}: clip {why} ({clip}); left out — previz run fetches a missing clip")
        return None


def _clip(take: _Take, number: int, takes: RunTakes, done: Exported) -> Any:
    record, spec, length = take.record, take.record.spec, take.timing
    span = otio.opentime.TimeRange(
        start_time=otio.opentime.RationalTime(0, length.rate),
        duration=otio.opentime.RationalTime(length.frames, length.rate),
    )
    if done.relative:
        target = Path(os.path.relpath(take.clip, done.otio.resolve().parent)).as_posix()
    else:
        target = take.clip.resolve().as_uri()
    media = otio.schema.ExternalReference(target_url=target, available_range=span)
    clip = otio.schema.Clip(name=record.label, media_reference=media, source_range=span)
    who, at = takes.selects.get(record.key, (None, None))
    clip.metadata["previz"] = {
        "shot": spec.get("shot"),
        "take": spec.get("take"),
        "seed": spec.get("seed"),
        "prompt": spec.get("prompt"),
        "provider": record.provider,
        "model": spec.get("model"),
        "task_id": record.handle,
        "cost_usd": record.cost_usd,
        "tags": [t for t in str(spec.get("tags") or "").split(";") if t],
        "key": record.key,
        "file": record.output,
        "frames": length.frames,
        "rate": length.rate,
        "selected_by": who,
        "selected_at": at,
    }
    take_no = int(spec.get("take") or 0)
    clip.metadata["cmx_3600"] = {"reel": f"P{number:03d}T{take_no % 100:02d}"}
    return clip


def _edl(timeline: Any, done: Exported) -> str:
    """The CMX 3600 EDL of the same timeline, at the first clip's rate (an EDL has one rate)."""
    rates = sorted({c.source_range.duration.rate for c in timeline.find_clips()})
    if len(rates) > 1:
        done.warnings.append(f"clips at {len(rates)} frame rates; the EDL counts frames at {rates[0]:g} fps")
    try:
        text: str = otio.adapters.write_to_string(timeline, "cmx_3600", rate=rates[0], style="avid")
    except otio.exceptions.OTIOError as exc:  # the adapter is a plugin: it may be missing
        raise InputError(
            f"{done.edl}: cannot write a CMX 3600 EDL ({exc}); pip install otio-cmx3600-adapter"
        ) from None
    return text


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name for the timeline")
    if not path.resolve().parent.is_dir():
        raise InputError(f"{path}: its folder {path.resolve().parent} does not exist")


def _inside(path: Path, run_dir: Path) -> bool:
    return path.resolve().parent.is_relative_to(run_dir.resolve())
