"""Loading a good manifest: defaults, overrides and built-in defaults resolve as DESIGN §2 says."""

from __future__ import annotations

from pathlib import Path

from runner.manifest.document import load_manifest
from runner.manifest.takes import ImageKind

TEXT = """\
version: 1
name: harbor-previz
provider: runware
concurrency: 2
budget_usd: 25
deadline: 06:30
output_dir: renders
defaults:
  prompt: Shared prompt
  image: a.jpg
  takes: 2
  ratio: 4:3
  tags: [act1]
shots:
  - id: inherits
  - id: overrides
    provider: aimlapi
    prompt: Own prompt
    image: https://example.com/x.jpg
    last_image: b.png
    duration: 10
    ratio: 1:1
    seeds: [7, 8, 9]
    tags: []
  - id: nulls-inherit
    ratio: ~
"""


def test_defaults_overrides_and_builtins(images: Path) -> None:
    (images / "harbor.yaml").write_text(TEXT)
    manifest = load_manifest(images / "harbor.yaml")
    assert (manifest.name, manifest.provider, manifest.model) == ("harbor-previz", "runware", "gen4_turbo")
    assert (manifest.concurrency, manifest.budget_usd, manifest.deadline) == (2, 25.0, "06:30")
    assert manifest.run_dir == images / "renders" / "harbor-previz", "relative to the manifest (DESIGN §3)"
    assert manifest.simulate is False
    inherits, overrides, nulls = manifest.shots
    assert (inherits.provider, inherits.prompt, inherits.ratio, inherits.duration) == (
        "runware",
        "Shared prompt",
        "4:3",
        5,
    )
    assert (inherits.takes, inherits.seeds, inherits.tags) == (2, None, ("act1",))
    assert inherits.image.kind is ImageKind.FILE and inherits.image.path == (images / "a.jpg").resolve()
    assert (overrides.provider, overrides.prompt, overrides.duration, overrides.ratio) == (
        "aimlapi",
        "Own prompt",
        10,
        "1:1",
    )
    assert (overrides.seeds, overrides.takes, overrides.tags) == ((7, 8, 9), None, ())
    assert overrides.image.kind is ImageKind.URL
    assert overrides.last_image is not None and overrides.last_image.mime == "image/png"
    assert nulls.ratio == "4:3"  # null means "not written here": the default applies
    assert [t.label for t in manifest.takes()] == [
        "inherits#t01",
        "inherits#t02",
        "overrides#t01",
        "overrides#t02",
        "overrides#t03",
        "nulls-inherit#t01",
        "nulls-inherit#t02",
    ]
    assert manifest.take_count() == 7


def test_neither_seeds_nor_takes_is_one_take(images: Path) -> None:
    text = "version: 1\nname: one\nprovider: runway\nshots:\n  - id: a\n    prompt: A\n    image: c.webp\n"
    (images / "one.yaml").write_text(text)
    shot = load_manifest(images / "one.yaml").shots[0]
    assert (shot.seeds, shot.takes, shot.duration, shot.ratio) == (None, None, 5, "16:9")
    assert len(list(shot.expand())) == 1
