"""A standalone ``previz simulate`` and ``previz run`` as real subprocesses, for kill tests.

The simulator runs in its own process (as a user would run it), so killing the runner never
touches the provider's side: ``/_sim/stats`` afterwards is the bill a real account would show.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KEYS = {"aimlapi": "sim-aimlapi-key", "runware": "sim-runware-key", "runway": "sim-runway-key"}
KEY_VARS = {"aimlapi": "AIMLAPI_API_KEY", "runware": "RUNWARE_API_KEY", "runway": "RUNWAYML_API_SECRET"}
URL_VARS = {"aimlapi": "AIMLAPI_BASE_URL", "runware": "RUNWARE_BASE_URL", "runway": "RUNWAYML_BASE_URL"}
URL = re.compile(r"http://127\.0\.0\.1:\d+")


@contextmanager
def simulator(profile: str, *, time_scale: float, seed: int = 0, **knobs: float) -> Iterator[str]:
    """``previz simulate`` on a free port, ``knobs`` as its ``--set``; yields its base URL, then stops it."""
    argv = [sys.executable, "-m", "runner", "simulate", "--port", "0", "--profile", profile]
    argv += ["--time-scale", str(time_scale), "--seed", str(seed)]
    argv += [f"--set={name}={value}" for name, value in knobs.items()]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"the simulator ended early: {proc.stderr.read() if proc.stderr else ''}"
            found = URL.search(line)
            if found:
                yield found.group(0)
                return
        raise AssertionError("the simulator printed no URL")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/_sim/stats", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def env_for(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*KEY_VARS.values(), *URL_VARS.values())}
    for name in KEYS:
        env[KEY_VARS[name]] = KEYS[name]
        env[URL_VARS[name]] = base_url
    env["TERM"] = "dumb"
    return env


def start_run(manifest: Path, base_url: str, *extra: str, clock_scale: float) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "runner", "run", str(manifest), "--clock-scale", str(clock_scale), *extra]
    return subprocess.Popen(
        argv, env=env_for(base_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@contextmanager
def started(
    manifest: Path, base_url: str, *extra: str, clock_scale: float
) -> Iterator[subprocess.Popen[str]]:
    """A run for the block; killed and reaped on the way out if the test left it running."""
    proc = start_run(manifest, base_url, *extra, clock_scale=clock_scale)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the run did not end in {timeout} s:\n{out}\n{err}") from None
    return proc.returncode, out, err


def run(manifest: Path, base_url: str, *extra: str, clock_scale: float) -> tuple[int, str, str]:
    return finish(start_run(manifest, base_url, *extra, clock_scale=clock_scale))


def previz(*argv: str, url: str) -> subprocess.CompletedProcess[str]:
    """Any other ``previz`` command (status, report, accounts…) against the simulator at ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv],
        env=env_for(url),
        capture_output=True,
        text=True,
        timeout=60,
    )


def ledger(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "ledger.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def by_provider(rows: Sequence[Mapping[str, Any]], provider: str) -> list[Mapping[str, Any]]:
    return [r for r in rows if r["provider"] == provider]
