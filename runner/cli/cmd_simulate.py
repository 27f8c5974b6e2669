"""``previz simulate``: the built-in simulator as a standalone server, with paste-ready exports."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from runner.cli.common import EXIT_OK, ArgParser, command, port, time_scale
from runner.errors import ConfigError


def add(sub: argparse._SubParsersAction[ArgParser]) -> None:
    sim = command(
        sub,
        "simulate",
        "run the built-in provider simulator as a server",
        "previz simulate --profile flaky --time-scale 0.1",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=port, default=8765, help="port (default 8765; 0 picks a free one)")
    sim.add_argument(
        "--profile",
        default="clean",
        choices=("clean", "flaky", "hostile"),
        help="faults: none, transient ones, or all (default clean)",
    )
    sim.add_argument(
        "--time-scale",
        type=time_scale,
        default=1.0,
        dest="time_scale",
        help="1.0 is real time; 0.1 makes a 60 s generation last 6 s",
    )
    sim.add_argument(
        "--seed", type=int, default=0, help="seed of the faults and timings (same seed, same night)"
    )
    sim.add_argument(
        "--key",
        action="append",
        metavar="NAME=VALUE",
        help="key the simulator accepts, e.g. RUNWAYML_API_SECRET=my-test-key (repeatable)",
    )
    sim.add_argument(
        "--set",
        action="append",
        default=[],
        dest="knobs",
        metavar="KNOB=N",
        help="a simulator knob (see runner/simulator/README.md), e.g. gen_min_s=40; repeatable",
    )
    sim.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from runner.simulator import SimConfig, serve

    keys = _sim_keys(args.key)
    knobs = dict(_knob(text) for text in args.knobs)
    try:
        config = SimConfig.from_profile(
            args.profile, time_scale=args.time_scale, seed=args.seed, keys=keys, **knobs
        )
    except ValueError as exc:
        raise ConfigError(f"simulate: {exc}") from None

    def ready(base_url: str) -> None:
        print(f"previz simulator ({args.profile}, time scale {args.time_scale}) on {base_url}")
        for var in ("AIMLAPI_BASE_URL", "RUNWARE_BASE_URL", "RUNWAYML_BASE_URL"):
            print(f"  export {var}={base_url}")
        for var, provider in SIM_KEY_VARS.items():
            print(f"  export {var}={shlex.quote(config.keys[provider])}")
        print(f"  stats: {base_url}/_sim/stats — Ctrl-C stops")
        sys.stdout.flush()

    serve(config, host=args.host, port=args.port, on_ready=ready)
    return EXIT_OK


#: The variable ``previz run`` reads each provider's key from, and so what ``simulate`` prints.
SIM_KEY_VARS = {"AIMLAPI_API_KEY": "aimlapi", "RUNWARE_API_KEY": "runware", "RUNWAYML_API_SECRET": "runway"}


def _sim_keys(pairs: Sequence[str] | None) -> dict[str, str]:
    """``--key NAME=VALUE`` options over the simulator's default keys; NAME is a variable or a provider."""
    from runner.errors import ConfigError
    from runner.simulator.config import DEFAULT_KEYS

    keys = dict(DEFAULT_KEYS)
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        provider = SIM_KEY_VARS.get(name, name)
        if not sep or not value or provider not in keys:
            known = ", ".join([*SIM_KEY_VARS, *keys])
            raise ConfigError(f"--key {name or pair!r}: expected NAME=VALUE with NAME one of {known}")
        keys[provider] = value
    return keys


def _knob(text: str) -> tuple[str, float | int]:
    """``NAME=NUMBER`` from ``previz simulate --set`` (an integer where it is written as one)."""
    name, _, value = text.partition("=")
    try:
        return name.strip(), int(value) if value.strip().lstrip("-").isdigit() else float(value)
    except ValueError:
        raise ConfigError(f"--set {text}: expected NAME=NUMBER") from None
