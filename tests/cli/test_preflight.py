"""Pre-flight against the simulator: a wrong key stops everything in seconds, naming its variable;
Runway's tier, daily cap and credit become findings with the figure to act on; ``plan`` prints them."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runner.cli.preflight import FindingKind, PreflightReport, preflight, render_preflight
from runner.errors import ConfigError
from runner.manifest.takes import Take
from runner.providers.base import ProviderConfig
from runner.providers.registry import simulated_config
from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.providers.helpers import make_take

pytestmark = pytest.mark.anyio

PROVIDERS = ("aimlapi", "runware", "runway")
KEY_VARS = {"aimlapi": "AIMLAPI_API_KEY", "runware": "RUNWARE_API_KEY", "runway": "RUNWAYML_API_SECRET"}


def takes_for(provider: str, count: int, duration: int = 5) -> list[Take]:
    return [make_take(provider, index=i + 1, duration=duration) for i in range(count)]


def configs(sim: Simulator, *names: str, **keys: str) -> dict[str, ProviderConfig]:
    return {n: simulated_config(n, sim.base_url, keys.get(n, sim.keys[n])) for n in names}


async def run_preflight(
    sim: Simulator, takes: list[Take], concurrency: int = 4, **keys: str
) -> PreflightReport:
    names = sorted({t.provider for t in takes})
    async with aiohttp.ClientSession() as session:
        return await preflight(configs(sim, *names, **keys), session, takes=takes, concurrency=concurrency)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_wrong_key_is_a_config_error_naming_the_variable(sim: Simulator, name: str) -> None:
    config = replace(simulated_config(name, sim.base_url, "wrong-key"), key_source=KEY_VARS[name])
    others = {n: simulated_config(n, sim.base_url, sim.keys[n]) for n in PROVIDERS if n != name}
    takes = [t for n in PROVIDERS for t in takes_for(n, 2)]
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigError) as caught:
            await preflight({name: config, **others}, session, takes=takes, concurrency=2)
    elapsed = time.monotonic() - started
    assert elapsed < 5.0
    message = str(caught.value)
    assert KEY_VARS[name] in message and "wrong-key" not in message
    stats = sim.stats()
    assert all(p["submissions"] == 0 for p in stats["providers"].values())
    assert all(p["account_checks"] == 1 for p in stats["providers"].values())


async def test_good_keys_pass_with_no_findings(sim: Simulator) -> None:
    takes = [t for n in PROVIDERS for t in takes_for(n, 2)]
    report = await run_preflight(sim, takes)
    assert [c.provider for c in report.checks] == list(PROVIDERS)
    assert all(c.account is not None for c in report.checks)
    assert report.findings == ()
    assert report.slots("runway", 4) == 4 and report.submit_cap("runway") is None
    assert sum(p["submissions"] for p in sim.stats()["providers"].values()) == 0


async def test_runway_tier_below_concurrency_gives_the_slot_figure(sim_factory: SimFactory) -> None:
    async with sim_factory(runway_concurrency=2) as sim:
        report = await run_preflight(sim, takes_for("runway", 5), concurrency=8)
    (finding,) = report.findings
    assert (finding.provider, finding.kind, finding.limit) == ("runway", FindingKind.CONCURRENCY, 2)
    assert "concurrency 8" in finding.message and "2 slots" in finding.message
    assert report.slots("runway", 8) == 2
    assert report.slots("runway", 1) == 1
    assert report.slots("runware", 8) == 8


async def test_runway_daily_cap_says_how_many_may_be_submitted(sim_factory: SimFactory) -> None:
    async with sim_factory(runway_daily_limit=3) as sim:
        report = await run_preflight(sim, takes_for("runway", 5), concurrency=2)
    (finding,) = report.findings
    assert (finding.kind, finding.limit) == (FindingKind.DAILY_LIMIT, 3)
    assert "3 may be submitted" in finding.message and "other 2" in finding.message
    assert report.submit_cap("runway") == 3


async def test_runway_daily_cap_counts_what_was_used_today(sim_factory: SimFactory) -> None:
    async with sim_factory(runway_daily_limit=10, runway_daily_used=8) as sim:
        report = await run_preflight(sim, takes_for("runway", 5), concurrency=2)
    assert report.submit_cap("runway") == 2
    async with sim_factory(runway_daily_limit=10, runway_daily_used=5) as sim:
        report = await run_preflight(sim, takes_for("runway", 5), concurrency=2)
    assert report.findings == () and report.submit_cap("runway") is None


async def test_runway_estimate_over_credit_balance(sim_factory: SimFactory) -> None:
    async with sim_factory(runway_credits=100) as sim:  # 1.00 USD; 5 takes of 5 s estimate 1.25
        report = await run_preflight(sim, takes_for("runway", 5), concurrency=2)
    (finding,) = report.findings
    assert finding.kind is FindingKind.CREDITS
    assert "1.25" in finding.message and "1.00" in finding.message
    async with sim_factory(runway_credits=125) as sim:
        assert (await run_preflight(sim, takes_for("runway", 5), concurrency=2)).findings == ()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_provider_is_a_finding_not_an_error(sim: Simulator) -> None:
    dead = simulated_config("runware", f"http://127.0.0.1:{closed_port()}", "k")
    live = simulated_config("runway", sim.base_url, sim.keys["runway"])
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        report = await preflight(
            {"runware": dead, "runway": live},
            session,
            takes=takes_for("runware", 1) + takes_for("runway", 1),
            concurrency=1,
        )
    assert time.monotonic() - started < 5.0
    (finding,) = report.findings
    assert (finding.provider, finding.kind) == ("runware", FindingKind.UNCHECKED)
    assert {c.provider: c.account is not None for c in report.checks} == {"runware": False, "runway": True}


async def test_report_renders_every_check_and_finding(sim_factory: SimFactory) -> None:
    async with sim_factory(runway_concurrency=2, runway_daily_limit=3) as sim:
        report = await run_preflight(sim, takes_for("runway", 5) + takes_for("runware", 1), concurrency=8)
    text = render_preflight(report)
    assert "runway: key accepted (GET /v1/organization); tier 2 concurrent" in text
    assert "runware: key accepted" in text
    assert sum(line.startswith("warning: ") for line in text.splitlines()) == 2
    doc = json.loads(json.dumps(report.to_json()))
    assert {f["kind"] for f in doc["findings"]} == {"concurrency", "daily_limit"}


# --- previz plan, as a user runs it ----------------------------------------------------------------

MANIFEST = """\
version: 1
name: pf
provider: runway
model: gen4_turbo
concurrency: 8
defaults:
  duration: 5
  ratio: "16:9"
shots:
  - id: ice
    prompt: The camera glides along an ice ridge
    image: frame.png
    takes: 5
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (64, 36), "white").save(tmp_path / "frame.png")
    path = tmp_path / "pf.yaml"
    path.write_text(MANIFEST)
    return path


async def plan(manifest: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``previz plan`` in a subprocess (the simulator keeps serving in this test's loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runner",
        "plan",
        *args,
        str(manifest),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=manifest.parent,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def env_for(sim: Simulator, key: str) -> dict[str, Any]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_SECRET", "_BASE_URL"))}
    return {**base, "RUNWAYML_BASE_URL": sim.base_url, "RUNWAYML_API_SECRET": key}


async def test_plan_prints_the_findings(sim_factory: SimFactory, manifest: Path) -> None:
    async with sim_factory(runway_concurrency=2, runway_daily_limit=3) as sim:
        code, out, err = await plan(manifest, env_for(sim, sim.keys["runway"]))
        assert code == 0, err
        assert "warning: Runway: concurrency 8 is above the tier's 2 concurrent generations" in out
        assert "3 may be submitted" in out
        code, out, err = await plan(manifest, env_for(sim, sim.keys["runway"]), "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert {(f["kind"], f["limit"]) for f in doc["preflight"]["findings"]} == {
            ("concurrency", 2),
            ("daily_limit", 3),
        }
        assert sim.stats()["providers"]["runway"]["submissions"] == 0


async def test_plan_with_a_wrong_key_exits_2_naming_the_variable(sim: Simulator, manifest: Path) -> None:
    code, out, err = await plan(manifest, env_for(sim, "sk-wrong-0000"))
    assert code == 2
    assert "RUNWAYML_API_SECRET" in err and "sk-wrong-0000" not in err + out
    assert "--offline" in err
    code, out, _err = await plan(manifest, env_for(sim, "sk-wrong-0000"), "--offline")
    assert code == 0 and "pre-flight" not in out
    assert sim.stats()["providers"]["runway"]["account_checks"] == 1  # --offline asked nothing


def keyless_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_SECRET", "_BASE_URL"))}


async def test_plan_without_a_key_prints_the_plan_and_names_the_variable_run_needs(manifest: Path) -> None:
    """A plan is what a user runs before getting keys: exit 0, the plan, the skipped pre-flight."""
    code, out, err = await plan(manifest, keyless_env())
    assert code == 0, err
    assert "plan for pf" in out and "total" in out
    skipped = [line for line in out.splitlines() if "skipped" in line]
    assert skipped == [
        "  runway: key check skipped (no key set); `previz run` will need RUNWAYML_API_SECRET (or --simulate)"
    ]
    code, out, err = await plan(manifest, keyless_env(), "--json")
    assert code == 0, err
    doc = json.loads(out)
    skip = {"provider": "runway", "takes": 5, "needs": ["RUNWAYML_API_SECRET"]}
    assert doc["preflight"]["skipped"] == [skip]
    assert doc["preflight"]["checks"] == []


@pytest.fixture
def two_providers(manifest: Path) -> Path:
    extra = "  - id: dragon\n    provider: aimlapi\n    prompt: A dragon\n    image: frame.png\n"
    manifest.write_text(manifest.read_text() + extra)
    return manifest


async def test_plan_checks_the_keys_that_are_set_and_skips_the_others(
    sim: Simulator, two_providers: Path
) -> None:
    """Runway's key (set, right) is checked; AIML's (unset) is skipped, naming both its variables."""
    code, out, err = await plan(two_providers, env_for(sim, sim.keys["runway"]), "--json")
    assert code == 0, err
    doc = json.loads(out)["preflight"]
    assert [c["provider"] for c in doc["checks"]] == ["runway"]
    skip = {"provider": "aimlapi", "takes": 1, "needs": ["AIMLAPI_API_KEY", "AIML_API_KEY"]}
    assert doc["skipped"] == [skip]
    assert sim.stats()["providers"]["runway"]["account_checks"] == 1


async def test_a_provider_that_never_answers_is_given_up_in_seconds() -> None:
    from runner.cli.preflight import REQUEST_TIMEOUT
    from tests.providers.helpers import canned, hang

    async with canned(hang) as server, aiohttp.ClientSession() as session:
        config = simulated_config("runway", server.base_url, "k", request_timeout=60.0)
        started = time.monotonic()
        report = await preflight({"runway": config}, session, takes=takes_for("runway", 1), concurrency=1)
        elapsed = time.monotonic() - started
    assert elapsed < REQUEST_TIMEOUT + 1.5  # the check's own timeout, not the run's 60 s
    (finding,) = report.findings
    assert finding.kind is FindingKind.UNCHECKED
    assert [seen.path for seen in server.seen] == ["/v1/organization"]
