"""Profiles and knobs: the names other tests and ``previz simulate`` rely on."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from runner.simulator import Faults, SimConfig

TRANSIENT = ("http_5xx", "http_429", "reset", "slow", "truncate", "expire")


def test_clean_profile_injects_nothing() -> None:
    config = SimConfig.from_profile("clean")
    assert config.faults == Faults()
    assert all(
        getattr(config.faults, name) == 0.0 for name in (*TRANSIENT, "moderation", "submit_lost_answer")
    )
    assert dict(config.keys) == {
        "aimlapi": "sim-aimlapi-key",
        "runware": "sim-runware-key",
        "runway": "sim-runway-key",
    }
    assert (config.aiml_concurrency, config.runway_concurrency, config.runware_capacity) == (4, 4, 50)
    assert config.url_ttl is None and config.clip_bytes is None


def test_flaky_is_transient_only() -> None:
    faults = SimConfig.from_profile("flaky").faults
    assert all(getattr(faults, name) > 0 for name in TRANSIENT)
    assert 0 < faults.retry_after_share < 1
    assert faults.moderation == 0 and faults.submit_lost_answer == 0


def test_hostile_is_worse_than_flaky_and_adds_terminal_faults() -> None:
    flaky = SimConfig.from_profile("flaky").faults
    hostile = SimConfig.from_profile("hostile").faults
    assert all(getattr(hostile, name) > getattr(flaky, name) for name in TRANSIENT)
    assert hostile.moderation > 0 and hostile.submit_lost_answer > 0


def test_knobs_override_config_and_fault_fields() -> None:
    config = SimConfig.from_profile(
        "flaky", time_scale=0.5, seed=9, moderation=1.0, runway_concurrency=2, url_ttl=5.0, http_5xx=0.0
    )
    assert config.time_scale == 0.5 and config.seed == 9
    assert config.faults.moderation == 1.0 and config.faults.http_5xx == 0.0
    assert config.faults.http_429 == SimConfig.from_profile("flaky").faults.http_429  # untouched
    assert config.runway_concurrency == 2 and config.url_ttl == 5.0
    assert config.profile == "flaky"


def test_a_whole_faults_value_can_be_given() -> None:
    config = SimConfig.from_profile("hostile", faults=Faults(reset=1.0))
    assert config.faults == Faults(reset=1.0)


@pytest.mark.parametrize(
    ("name", "knobs"),
    [
        ("clean", {"modration": 1.0}),
        ("clean", {"concurrency": 3}),
        ("calm", {}),
        ("clean", {"moderation": 1.5}),
        ("clean", {"http_429": -0.1}),
        ("clean", {"runway_concurrency": 0}),
        ("clean", {"time_scale": 0.0}),
        ("clean", {"keys": {"aimlapi": "k"}}),
    ],
)
def test_bad_profiles_and_knobs_are_value_errors(name: str, knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimConfig.from_profile(name, **knobs)


def test_config_is_frozen() -> None:
    config = SimConfig.from_profile("clean")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.faults.reset = 1.0  # type: ignore[misc]
