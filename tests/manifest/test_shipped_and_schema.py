"""Shipped manifests validate; `previz schema` is valid JSON for editors; prices and deadlines."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.manifest.document import json_schema, load_manifest, parse_deadline
from runner.manifest.prices import PRICES, estimate_usd, expected_generation_s
from tests.manifest.conftest import Result

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([ROOT / "manifests" / "demo.yaml", *(ROOT / "manifests" / "examples").glob("*.yaml")])


def test_there_is_an_example_per_provider() -> None:
    assert {p.stem for p in SHIPPED} == {"demo", "aimlapi", "runware", "runway"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_manifest_validates(path: Path, cli: Callable[..., Result]) -> None:
    result = cli("validate", str(path))
    assert result.code == 0, result.err
    manifest = load_manifest(path)
    assert result.out == f"{path}: ok — {len(manifest.shots)} shots, {manifest.take_count()} takes\n"


def test_demo_uses_every_provider_on_the_simulator() -> None:
    demo = load_manifest(ROOT / "manifests" / "demo.yaml")
    assert demo.simulate and demo.budget_usd is not None
    assert {s.provider for s in demo.shots} == {"aimlapi", "runware", "runway"}
    assert {s.image.mime for s in demo.shots} == {"image/jpeg", "image/png", "image/webp"}
    assert demo.run_dir == ROOT / "outputs" / "demo", "the demo lands in the top-level outputs/"


def test_runware_example_is_the_source_document() -> None:
    """Five shots, their seeds and durations; the price table reproduces the reported 1.6210 USD."""
    example = load_manifest(ROOT / "manifests" / "examples" / "runware.yaml")
    takes = list(example.takes())
    assert [t.seed for t in takes] == [29718, 6390, 38621, 8192, 97753]
    assert [t.duration for t in takes] == [6, 6, 6, 6, 8]
    assert [t.ratio for t in takes] == ["16:9", "4:3", "16:9", "16:9", "21:9"]
    assert takes[0].prompt.startswith("Animate the frozen cavern expedition with graceful cinematic motion:")
    assert takes[0].prompt.endswith("epic fantasy realism, atmospheric and immersive")
    assert sum(estimate_usd(t.provider, t.model, t.duration) for t in takes) == pytest.approx(1.6210)


def test_schema_command_prints_json_schema(cli: Callable[..., Result]) -> None:
    result = cli("schema")
    assert result.code == 0
    schema = json.loads(result.out)
    top = {"version", "name", "provider", "model", "concurrency", "budget_usd", "deadline", "simulate"}
    assert top | {"ratio", "moderation", "output_dir", "defaults", "shots"} == set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"version", "name", "provider", "shots"}
    shot = schema["$defs"]["ShotDoc"]
    assert shot["properties"]["ratio"]["enum"] == ["16:9", "9:16", "4:3", "3:4", "1:1", "21:9", "auto"]
    assert shot["properties"]["moderation"]["$ref"] == "#/$defs/Moderation"
    assert shot["properties"]["seeds"]["items"]["maximum"] == 4294967295
    assert "anyOf" not in json.dumps(schema)  # optional fields are offered as their type, not "or null"
    assert schema == json_schema()


@pytest.mark.parametrize(
    ("provider", "duration", "usd"),
    [
        ("runware", 6, 0.3042),
        ("runware", 8, 0.4042),
        ("runway", 5, 0.25),
        ("aimlapi", 5, 0.25),
        ("aimlapi", 10, 0.5),
    ],
)
def test_price_table(provider: str, duration: int, usd: float) -> None:
    assert estimate_usd(provider, "gen4_turbo", duration) == pytest.approx(usd)


def test_price_rows_name_their_source_and_prior() -> None:
    assert all(row.source and row.as_of for row in PRICES.values())
    assert PRICES[("aimlapi", "gen4_turbo")].assumption
    assert expected_generation_s("aimlapi", "gen4_turbo", 5) == pytest.approx(65.0)
    with pytest.raises(ValueError, match="no price for acme/gen4_turbo"):
        estimate_usd("acme", "gen4_turbo", 5)


def test_deadline_time_of_day_is_the_next_one() -> None:
    now = datetime(2026, 5, 1, 5, 0)
    assert parse_deadline("06:30", now) == datetime(2026, 5, 1, 6, 30)
    assert parse_deadline("06:30", now.replace(hour=7)) == datetime(2026, 5, 2, 6, 30)
    assert parse_deadline("6:30", now.replace(hour=6, minute=30)) == datetime(2026, 5, 2, 6, 30)


def test_deadline_iso_and_aware_now() -> None:
    now = datetime(2026, 5, 1, 5, 0, tzinfo=UTC)
    moment = parse_deadline("2026-05-01T06:30:00+02:00", now)
    assert moment == datetime(2026, 5, 1, 4, 30, tzinfo=UTC)
    later = parse_deadline("23:59", now)
    assert later.tzinfo is not None
    assert timedelta(0) < later - now <= timedelta(days=1)


@pytest.mark.parametrize("value", ["25:00", "6:60", "tomorrow", "", "06:30pm"])
def test_bad_deadlines_say_what_is_allowed(value: str) -> None:
    with pytest.raises(ConfigError, match='"HH:MM"'):
        parse_deadline(value, datetime(2026, 5, 1))
