"""`ratio: auto` from the first frame, the mismatch warning, and `moderation` (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from runner.errors import ManifestError
from runner.manifest.document import load_manifest
from runner.manifest.rules import nearest_ratio
from runner.providers.aimlapi import build_body as aiml_body
from runner.providers.base import SubmitRequest
from runner.providers.runware import build_task
from runner.providers.runway import build_body as runway_body
from tests.manifest.conftest import Result


def _plate(folder: Path, width: int, height: int) -> str:
    name = f"plate_{width}x{height}.png"
    Image.new("RGB", (width, height), (40, 90, 160)).save(folder / name)
    return name


def _manifest(folder: Path, body: str, *, top: str = "", provider: str = "runway") -> Path:
    path = folder / "m.yaml"
    text = f"version: 1\nname: m\nprovider: {provider}\n{top}shots:\n{body}"
    path.write_text(text, encoding="utf-8")
    return path


def _shot(image: str, extra: str = "", sid: str = "a") -> str:
    return f"  - id: {sid}\n    prompt: a slow push in\n    image: {image}\n    duration: 5\n{extra}"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), "16:9"),
        ((720, 1280), "9:16"),
        ((1104, 832), "4:3"),
        ((832, 1104), "3:4"),
        ((960, 960), "1:1"),
        ((1000, 500), "16:9"),  # the widest plate allowed (2.0) is nearer 16:9 (1.78) than 21:9 (2.36)
        ((500, 1000), "9:16"),  # the tallest (0.5)
        ((1400, 700), "16:9"),
    ],
)
def test_auto_resolves_to_the_nearest_allowed_ratio(
    tmp_path: Path, size: tuple[int, int], expected: str
) -> None:
    image = _plate(tmp_path, *size)
    manifest = load_manifest(_manifest(tmp_path, _shot(image, "    ratio: auto\n")))
    (take,) = manifest.takes()
    assert take.ratio == expected
    assert nearest_ratio(*size) == expected


def test_21_9_is_never_auto_because_such_a_plate_is_refused(tmp_path: Path) -> None:
    """Plates must be within width/height 0.5–2 (DESIGN §2); 21:9 is 2.36, so only explicit."""
    image = _plate(tmp_path, 1584, 672)
    with pytest.raises(ManifestError) as refused:
        load_manifest(_manifest(tmp_path, _shot(image, "    ratio: auto\n")))
    assert "allowed width/height ratio 0.5–2" in str(refused.value)


def test_auto_at_the_top_level_and_in_defaults(tmp_path: Path) -> None:
    wide, tall = _plate(tmp_path, 1280, 720), _plate(tmp_path, 720, 1280)
    body = _shot(wide, sid="wide") + _shot(tall, sid="tall")
    top = load_manifest(_manifest(tmp_path, body, top="ratio: auto\n"))
    assert [t.ratio for t in top.takes()] == ["16:9", "9:16"]
    defaults = load_manifest(_manifest(tmp_path, body, top="defaults:\n  ratio: auto\n"))
    assert [t.ratio for t in defaults.takes()] == ["16:9", "9:16"]


def test_auto_keys_are_stable_and_equal_to_the_explicit_ratio(tmp_path: Path) -> None:
    tall = _plate(tmp_path, 720, 1280)
    auto = load_manifest(_manifest(tmp_path, _shot(tall, "    ratio: auto\n")))
    again = load_manifest(_manifest(tmp_path, _shot(tall, "    ratio: auto\n")))
    explicit = load_manifest(_manifest(tmp_path, _shot(tall, '    ratio: "9:16"\n')))
    keys = [[t.key for t in m.takes()] for m in (auto, again, explicit)]
    assert keys[0] == keys[1] == keys[2], "the key holds the resolved ratio, so a rerun resumes"


def test_a_manifest_that_says_nothing_keeps_16_9_and_its_keys(tmp_path: Path) -> None:
    """Keys from before ratio auto and moderation existed: an existing night must still resume."""
    from runner.manifest.takes import take_key

    tall = _plate(tmp_path, 720, 1280)
    manifest = load_manifest(_manifest(tmp_path, _shot(tall)))
    (take,) = manifest.takes()
    assert take.ratio == "16:9"
    old = take_key(
        provider="runway", model="gen4_turbo", prompt="a slow push in", image=take.image.content_id,
        last_image=None, duration=5, ratio="16:9", seed=take.seed,
    )  # fmt: skip
    assert take.key == old


def test_auto_with_an_https_image_names_the_fix(tmp_path: Path) -> None:
    path = _manifest(tmp_path, _shot("https://example.com/plate.jpg", "    ratio: auto\n"))
    with pytest.raises(ManifestError) as refused:
        load_manifest(path)
    (problem,) = refused.value.problems
    assert (problem.line, problem.path) == (9, "shots[0].ratio")
    assert "does not fetch https://example.com/plate.jpg" in problem.message
    assert "write the ratio" in problem.message


def test_a_ratio_unlike_the_plate_is_a_warning_naming_both(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    wide, near = _plate(tmp_path, 1280, 720), _plate(tmp_path, 1400, 800)
    shots = _shot(wide, '    ratio: "9:16"\n') + _shot(near, '    ratio: "16:9"\n', sid="b")
    path = _manifest(tmp_path, shots)
    manifest = load_manifest(path)
    (warning,) = manifest.warnings  # a 1.75 plate asked for 16:9 (1.78) is fine; 16:9 for 9:16 is not
    assert warning.path == "shots[0].ratio"
    assert "ratio 9:16 is unlike the first frame" in warning.message and "1280×720" in warning.message
    result = cli("validate", str(path))
    assert result.code == 0
    assert "warning: " in result.err and "9:16" in result.err
    planned = cli("plan", "--offline", str(path))
    assert planned.code == 0 and "warning: " in planned.err
    doc = json.loads(cli("plan", "--offline", "--json", str(path)).out)
    (said,) = doc["warnings"]
    assert "shots[0].ratio" in said and "9:16" in said


# -- moderation ----------------------------------------------------------------------------------


def _request(manifest_path: Path) -> SubmitRequest:
    (take,) = load_manifest(manifest_path).takes()
    return SubmitRequest(take, image="https://example.com/plate.jpg")


def test_moderation_in_runway_and_runware_bodies(tmp_path: Path) -> None:
    """As Runway's API takes it, and as the Runware page's five examples send it."""
    image = _plate(tmp_path, 1280, 720)
    extra = "    moderation: {public_figure_threshold: low}\n"
    runway = runway_body(_request(_manifest(tmp_path, _shot(image, extra))))
    assert runway["contentModeration"] == {"publicFigureThreshold": "low"}
    task = build_task(_request(_manifest(tmp_path, _shot(image, extra), provider="runware")))
    assert task["providerSettings"] == {"runway": {"contentModeration": {"publicFigureThreshold": "low"}}}
    plain = runway_body(_request(_manifest(tmp_path, _shot(image))))
    assert "contentModeration" not in plain, "not said: not sent"
    from runner.manifest.plan import build_plan

    (row,) = build_plan(load_manifest(_manifest(tmp_path, _shot(image, extra))), set()).rows
    assert row.moderation == "low", "plan shows it"


def test_moderation_is_part_of_the_key_only_when_set(tmp_path: Path) -> None:
    image = _plate(tmp_path, 1280, 720)
    keys = {}
    for value in (
        "",
        "    moderation: {public_figure_threshold: auto}\n",
        "    moderation: {public_figure_threshold: low}\n",
    ):
        (take,) = load_manifest(_manifest(tmp_path, _shot(image, value))).takes()
        keys[value] = take.key
    assert len(set(keys.values())) == 3


def test_moderation_is_refused_for_aimlapi_with_its_position(tmp_path: Path) -> None:
    image = _plate(tmp_path, 1280, 720)
    path = _manifest(
        tmp_path, _shot(image), top="moderation:\n  public_figure_threshold: auto\n", provider="aimlapi"
    )
    with pytest.raises(ManifestError) as refused:
        load_manifest(path)
    (problem,) = refused.value.problems
    assert (problem.file, problem.line, problem.column) == (str(path), 5, 3)
    assert "aimlapi has no content-moderation setting" in problem.message
    assert "inherited by shots[0]" in problem.message
    assert "contentModeration" not in json.dumps(
        aiml_body(_request(_manifest(tmp_path, _shot(image), provider="aimlapi")))
    )


@pytest.mark.parametrize(("value", "words"), [("medium", "auto"), ("", "auto")])
def test_a_bad_threshold_is_refused_where_it_is_written(tmp_path: Path, value: str, words: str) -> None:
    image = _plate(tmp_path, 1280, 720)
    path = _manifest(tmp_path, _shot(image, f"    moderation: {{public_figure_threshold: '{value}'}}\n"))
    with pytest.raises(ManifestError) as refused:
        load_manifest(path)
    (problem,) = refused.value.problems
    assert problem.path.startswith("shots[0].moderation")
    assert words in problem.message


def test_an_unknown_moderation_key_is_refused(tmp_path: Path) -> None:
    image = _plate(tmp_path, 1280, 720)
    path = _manifest(tmp_path, _shot(image, "    moderation: {public_figure: low}\n"))
    with pytest.raises(ManifestError) as refused:
        load_manifest(path)
    assert "public_figure_threshold" in str(refused.value)


@pytest.mark.anyio
async def test_a_run_on_the_simulator_with_auto_and_moderation(tmp_path: Path) -> None:
    """Both providers that take moderation accept it over the wire; auto picks each plate's shape."""
    from runner.simulator import SimConfig, running_simulator
    from tests.engine.helpers import ledger_rows, run_against

    wide, tall = _plate(tmp_path, 1280, 720), _plate(tmp_path, 720, 1280)
    body = _shot(wide, "    provider: runway\n", sid="wide") + _shot(
        tall, "    provider: runware\n", sid="tall"
    )
    top = f"ratio: auto\nmoderation: {{public_figure_threshold: low}}\noutput_dir: {tmp_path / 'out'}\n"
    path = _manifest(tmp_path, body, top=top)
    async with running_simulator(SimConfig.from_profile("clean", time_scale=0.01)) as sim:
        summary, run_dir = await run_against(sim, path)
        stats = sim.stats()["providers"]
    assert summary.done == 2
    assert stats["runway"]["rejected"] == 0 and stats["runware"]["rejected"] == 0
    assert sorted(r["ratio"] for r in ledger_rows(run_dir)) == ["16:9", "9:16"]
