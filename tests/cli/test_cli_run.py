"""`previz run` through the CLI: exit codes, messages, and keys that never leak."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from runner.cli.main import main
from runner.simulator import SimConfig, Simulator, running_simulator
from tests.conftest import TEST_TIME_SCALE
from tests.engine.helpers import KEY_VARS, URL_VARS, ledger_rows, shot, write_manifest


@contextmanager
def threaded_sim(**knobs: Any) -> Iterator[Simulator]:
    """A simulator on its own thread and event loop, so the synchronous CLI can talk to it."""
    box: dict[str, Simulator] = {}
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        config = SimConfig.from_profile("clean", time_scale=TEST_TIME_SCALE, **knobs)
        async with running_simulator(config) as sim:
            box["sim"] = sim
            ready.set()
            await anyio.to_thread.run_sync(stop.wait)

    thread = threading.Thread(target=anyio.run, args=(serve,), daemon=True)
    thread.start()
    assert ready.wait(10), "simulator did not start"
    try:
        yield box["sim"]
    finally:
        stop.set()
        thread.join(10)


def test_simulated_run_with_moderation_failure_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shots = [shot("fine", "runware"), shot("flagged", "runware", prompt="[sim:moderate] a crowd")]
    manifest = write_manifest(tmp_path, shots, simulate=True)
    code = main(["run", str(manifest), "--sim-time-scale", "0.01"])
    out = capsys.readouterr().out
    assert code == 1
    assert "run directory:" in out
    assert "moderation" in out
    rows = ledger_rows(tmp_path / "out" / "t")
    assert sorted(r["status"] for r in rows) == ["done", "failed"]


def test_missing_key_is_exit_2_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("RUNWARE_API_KEY",):
        monkeypatch.delenv(var, raising=False)
    manifest = write_manifest(tmp_path, [shot("a", "runware")])
    assert main(["run", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "RUNWARE_API_KEY" in err and "--simulate" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists(), "nothing may be written before the input is known good"


def test_keys_never_leak_into_files_or_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    keys = {
        "aimlapi": "sk-aiml-S3CRET-4f9a1c",
        "runware": "rw-S3CRET-77b2e0d",
        "runway": "key_S3CRET_9d8c7b6a",
    }
    wrong_runway = "key_WRONG_S3CRET_0a1b2c"
    shots = [shot("a", "aimlapi"), shot("b", "runware", prompt="[sim:moderate] x"), shot("c", "runway")]
    manifest = write_manifest(tmp_path, shots)
    with threaded_sim(keys=keys) as sim:
        for provider in ("aimlapi", "runware"):
            monkeypatch.setenv(KEY_VARS[provider], keys[provider])
        monkeypatch.setenv(KEY_VARS["runway"], wrong_runway)  # a rejected key shows up in error paths
        for var in URL_VARS.values():
            monkeypatch.setenv(var, sim.base_url)
        code = main(["run", str(manifest)])
        refused_out, refused_err = capfd.readouterr()
        assert code == 2, "the pre-flight refuses the key before anything is sent"
        assert "RUNWAYML_API_SECRET" in refused_err
        assert sim.stats()["providers"]["runway"]["submissions"] == 0
        monkeypatch.setenv(KEY_VARS["runway"], keys["runway"])
        code = main(["run", str(manifest)])
    out, err = capfd.readouterr()
    assert code == 1  # the moderated take
    out, err = out + refused_out, err + refused_err
    blobs = [out, err] + [p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()]
    for secret in [*keys.values(), wrong_runway]:
        assert all(secret not in blob for blob in blobs), secret


def test_second_run_of_same_manifest_gets_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import fcntl

    manifest = write_manifest(tmp_path, [shot("a", "runware")], simulate=True)
    run_dir = tmp_path / "out" / "t"
    run_dir.mkdir(parents=True)
    with (run_dir / ".lock").open("a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["run", str(manifest)]) == 4
    assert "another run" in capsys.readouterr().err
