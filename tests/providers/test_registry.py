"""Providers from the environment (DESIGN §1): keys, base URLs, the http refusal, no key in any message."""

from __future__ import annotations

import aiohttp
import pytest

from runner.errors import ConfigError
from runner.providers.aimlapi import AimlApiProvider
from runner.providers.guard import GuardedProvider
from runner.providers.registry import (
    DEFAULT_URLS,
    build_provider,
    check_base_url,
    provider_config_from_env,
    simulated_config,
)
from runner.providers.runware import RunwareProvider
from runner.providers.runway import RunwayProvider

SECRET = "sk-live-DO-NOT-PRINT-31337"


@pytest.mark.parametrize(
    ("name", "var"),
    [
        ("aimlapi", "AIMLAPI_API_KEY"),
        ("aimlapi", "AIML_API_KEY"),
        ("runware", "RUNWARE_API_KEY"),
        ("runway", "RUNWAYML_API_SECRET"),
    ],
)
def test_key_and_default_url(name: str, var: str) -> None:
    config = provider_config_from_env(name, {var: f"  {SECRET}\n"})
    assert config.name == name
    assert config.api_key.reveal() == SECRET
    assert config.base_url == DEFAULT_URLS[name]
    assert SECRET not in repr(config)


def test_defaults_are_the_public_urls() -> None:
    assert DEFAULT_URLS == {
        "aimlapi": "https://api.aimlapi.com",
        "runware": "https://api.runware.ai",
        "runway": "https://api.dev.runwayml.com",
    }


def test_aimlapi_prefers_its_documented_name() -> None:
    env = {"AIMLAPI_API_KEY": "first-key-0001", "AIML_API_KEY": "second-key-0002"}
    assert provider_config_from_env("aimlapi", env).api_key.reveal() == "first-key-0001"


@pytest.mark.parametrize(
    ("name", "var"),
    [("aimlapi", "AIMLAPI_API_KEY"), ("runware", "RUNWARE_API_KEY"), ("runway", "RUNWAYML_API_SECRET")],
)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_key_names_the_variable_and_simulate(name: str, var: str, value: str | None) -> None:
    env = {} if value is None else {var: value}
    with pytest.raises(ConfigError) as caught:
        provider_config_from_env(name, env)
    assert var in str(caught.value)
    assert "--simulate" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "var"),
    [("aimlapi", "AIMLAPI_BASE_URL"), ("runware", "RUNWARE_BASE_URL"), ("runway", "RUNWAYML_BASE_URL")],
)
def test_base_url_override(name: str, var: str) -> None:
    keys = {"aimlapi": "AIMLAPI_API_KEY", "runware": "RUNWARE_API_KEY", "runway": "RUNWAYML_API_SECRET"}
    env = {keys[name]: SECRET, var: "https://proxy.example.com/gen4/"}
    assert provider_config_from_env(name, env).base_url == "https://proxy.example.com/gen4"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.3.4.5",
        "http://localhost:9000/",
        "http://[::1]:8000",
        "https://x.example",
    ],
)
def test_allowed_base_urls(url: str) -> None:
    assert check_base_url(url, "RUNWARE_BASE_URL") == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://api.runware.ai", "plain http"),
        ("http://10.0.0.5:8080", "plain http"),
        ("http://localhost.evil.example", "plain http"),
        ("ftp://api.runware.ai", "https"),
        ("api.runware.ai", "https"),
        ("https://user:pw@api.runware.ai", "credentials"),
        ("https://api.runware.ai/?key=1", "query"),
        ("https://api.runware.ai:99999", "not a valid URL"),
    ],
)
def test_refused_base_urls(url: str, why: str) -> None:
    env = {"RUNWARE_API_KEY": SECRET, "RUNWARE_BASE_URL": url}
    with pytest.raises(ConfigError, match=why) as caught:
        provider_config_from_env("runware", env)
    assert "RUNWARE_BASE_URL" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert "pw" not in str(caught.value)


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'runaway'"):
        provider_config_from_env("runaway", {})


def test_key_never_in_any_registry_error() -> None:
    failures: list[str] = []
    cases = [
        ("runware", {"RUNWARE_API_KEY": SECRET, "RUNWARE_BASE_URL": "http://example.com"}),
        ("runway", {"RUNWAYML_API_SECRET": SECRET, "RUNWAYML_BASE_URL": f"https://{SECRET}@x.example"}),
        ("aimlapi", {"RUNWAYML_API_SECRET": SECRET}),
    ]
    for name, env in cases:
        with pytest.raises(ConfigError) as caught:
            provider_config_from_env(name, env)
        failures.append(str(caught.value))
    assert all(SECRET not in message for message in failures)


def test_simulated_config_accepts_loopback_only() -> None:
    config = simulated_config("runway", "http://127.0.0.1:5555", "sim-runway-key")
    assert (config.base_url, config.api_key.reveal()) == ("http://127.0.0.1:5555", "sim-runway-key")
    with pytest.raises(ConfigError):
        simulated_config("runway", "http://sim.example:5555", "k")


@pytest.mark.anyio
async def test_build_provider_picks_the_adapter() -> None:
    async with aiohttp.ClientSession() as session:
        built = [
            build_provider(simulated_config(name, "http://127.0.0.1:1", "k"), session)
            for name in ("aimlapi", "runware", "runway")
        ]
    assert all(isinstance(p, GuardedProvider) for p in built), "provider text crosses the guard"
    adapters = [p.adapter for p in built if isinstance(p, GuardedProvider)]
    assert [type(a) for a in adapters] == [AimlApiProvider, RunwareProvider, RunwayProvider]
    assert [p.name for p in built] == ["aimlapi", "runware", "runway"]
