"""The CLI as a user starts it: `python -m runner` is the same program as `previz`."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys

import aiohttp
import pytest

from runner import __version__


def test_python_dash_m_runner_is_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runner", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"previz-runner {__version__}"


def test_unknown_command_is_exit_2_without_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runner", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.anyio
async def test_previz_simulate_serves_and_stops_on_ctrl_c() -> None:
    argv = ["-m", "runner", "simulate", "--port", "0", "--profile", "flaky", "--time-scale", "0.01"]
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(sys.executable, *argv, stdout=pipe, stderr=pipe)
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        assert "flaky" in first
        async with aiohttp.ClientSession() as session, session.get(f"{match.group(1)}/_sim/stats") as resp:
            assert resp.status == 200
            assert set((await resp.json())["providers"]) == {"aimlapi", "runware", "runway"}
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert b"Traceback" not in err
    assert b"export RUNWARE_BASE_URL=" in out


def test_every_option_of_every_command_has_help_and_an_example() -> None:
    """Help is written for a user: each subcommand has an example, each option says what it does."""
    import argparse

    from runner.cli.main import _parser

    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) >= {
        "validate",
        "plan",
        "run",
        "status",
        "cancel",
        "report",
        "simulate",
        "schema",
        "init",
    }
    for name, command in commands.choices.items():
        assert command.epilog and "example:" in command.epilog and f"previz {name}" in command.epilog, name
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"previz {name}: {action.option_strings or action.dest} has no help text"


def test_dash_capital_v_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli.main import main

    assert main(["-V"]) == 0
    assert capsys.readouterr().out.startswith("previz-runner ")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--deadline", ""], "--deadline: is empty"),
        (["--max-clip-mb", "inf"], "--max-clip-mb: 'inf' is not a finite number"),
    ],
)
def test_empty_deadline_and_infinite_clip_cap_are_one_line(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22 points 7 and 10: ``--deadline ""`` ran with no deadline, ``inf`` gave a traceback."""
    from runner.cli.main import main

    assert main(["run", "--simulate", *argv, "missing.yaml"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
