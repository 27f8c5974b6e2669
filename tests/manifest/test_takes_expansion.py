"""Takes expansion: deterministic (a rerun finds the same takes), keys stable and sensitive to every field."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.manifest.document import Manifest, load_manifest
from runner.manifest.limits import PROVIDERS, RATIOS
from runner.manifest.takes import SEED_MAX, derive_seed, take_key

SHOT_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,11}", fullmatch=True)
PROMPTS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(str.strip)
COUNTS = st.one_of(
    st.just({}),
    st.builds(
        lambda s: {"seeds": s}, st.lists(st.integers(0, SEED_MAX), min_size=1, max_size=4, unique=True)
    ),
    st.builds(lambda n: {"takes": n}, st.integers(1, 4)),
)
IMAGES = st.sampled_from(["a.jpg", "b.png", "https://example.com/x.jpg"])
SHOTS = st.lists(
    st.tuples(SHOT_IDS, PROMPTS, st.sampled_from(PROVIDERS), st.sampled_from(RATIOS), IMAGES, COUNTS),
    min_size=1,
    max_size=4,
    unique_by=lambda shot: shot[0].casefold(),
)  # fmt: skip


def _write(folder: Path, shots: list[tuple[Any, ...]]) -> Path:
    doc = {
        "version": 1,
        "name": "prop",
        "provider": "runware",
        "defaults": {"duration": 5},
        "shots": [
            {"id": i, "prompt": p, "provider": prov, "ratio": r, "image": img, **count}
            for i, p, prov, r, img, count in shots
        ],
    }
    path = folder / "prop.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _expanded(manifest: Manifest) -> list[tuple[str, int, int, str]]:
    return [(t.shot, t.index, t.seed, t.key) for t in manifest.takes()]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shots=SHOTS)
def test_expansion_is_deterministic(image_bank: Path, shots: list[tuple[Any, ...]]) -> None:
    path = _write(image_bank, shots)
    first, second = load_manifest(path), load_manifest(path)
    assert _expanded(first) == _expanded(second)
    takes = list(first.takes())
    assert len(takes) == first.take_count()
    for (shot_id, prompt, *_rest, count), shot in zip(shots, first.shots, strict=True):
        mine = [t for t in takes if t.shot == shot_id]
        assert [t.index for t in mine] == list(range(1, len(mine) + 1))
        assert all(t.prompt == prompt for t in mine)
        if "seeds" in count:
            assert [t.seed for t in mine] == count["seeds"]
        else:
            assert [t.seed for t in mine] == [
                derive_seed(shot_id, n) for n in range(1, count.get("takes", 1) + 1)
            ]
        assert shot.id == shot_id
    assert len({t.key for t in takes}) == len(takes)


FIELDS: dict[str, Any] = {
    "provider": "runware",
    "model": "gen4_turbo",
    "prompt": "A dragon rushes toward the camera",
    "image": "https://example.com/mountains.jpg",
    "last_image": None,
    "duration": 5,
    "ratio": "16:9",
    "seed": 101,
}


def test_a_known_take_key_is_stable() -> None:
    """Pinned: changing the key recipe would make every rerun resubmit (and pay for) done takes."""
    canonical = (
        '{"duration":5,"image":"https://example.com/mountains.jpg","last_image":null,"model":"gen4_turbo",'
        '"prompt":"A dragon rushes toward the camera","provider":"runware","ratio":"16:9","seed":101,"v":1}'
    )
    assert take_key(**FIELDS) == hashlib.sha256(canonical.encode()).hexdigest()
    assert take_key(**FIELDS) == "9a36c07d3cf2a4406b18417e224f81b119f2ff7b41d4d4a4a2edf04d95757866"
    assert derive_seed("dragon-approach", 1) == 1316172866


ALTERED = st.sampled_from(sorted(FIELDS)).flatmap(
    lambda name: st.tuples(
        st.just(name),
        {
            "provider": st.sampled_from(PROVIDERS),
            "model": st.text(min_size=1, max_size=12),
            "prompt": st.text(max_size=30),
            "image": st.text(min_size=1, max_size=30),
            "last_image": st.one_of(st.none(), st.text(min_size=1, max_size=30)),
            "duration": st.integers(2, 10),
            "ratio": st.sampled_from(RATIOS),
            "seed": st.integers(0, SEED_MAX),
        }[name],
    )
)


@given(change=ALTERED)
def test_keys_differ_when_any_field_differs(change: tuple[str, Any]) -> None:
    name, value = change
    altered = FIELDS | {name: value}
    if value == FIELDS[name]:
        assert take_key(**altered) == take_key(**FIELDS)
    else:
        assert take_key(**altered) != take_key(**FIELDS)


def test_editing_a_prompt_keeps_seeds_but_changes_keys(image_bank: Path) -> None:
    shots: list[tuple[Any, ...]] = [("dragon", "A dragon", "runware", "16:9", "a.jpg", {"takes": 3})]
    before = list(load_manifest(_write(image_bank, shots)).takes())
    shots = [("dragon", "A bigger dragon", "runware", "16:9", "a.jpg", {"takes": 3})]
    after = list(load_manifest(_write(image_bank, shots)).takes())
    assert [t.seed for t in before] == [t.seed for t in after]
    assert not {t.key for t in before} & {t.key for t in after}


def test_image_key_is_content_not_name(image_bank: Path, tmp_path: Path) -> None:
    """The same bytes under another name are the same take; other bytes are a new one."""
    base: list[tuple[Any, ...]] = [("dragon", "A dragon", "aimlapi", "16:9", "a.jpg", {})]
    key = next(load_manifest(_write(image_bank, base)).takes()).key
    (tmp_path / "renamed.jpg").write_bytes((image_bank / "a.jpg").read_bytes())
    renamed: list[tuple[Any, ...]] = [
        ("dragon", "A dragon", "aimlapi", "16:9", str(tmp_path / "renamed.jpg"), {})
    ]
    assert next(load_manifest(_write(image_bank, renamed)).takes()).key == key
    other: list[tuple[Any, ...]] = [("dragon", "A dragon", "aimlapi", "16:9", "b.png", {})]
    assert next(load_manifest(_write(image_bank, other)).takes()).key != key
