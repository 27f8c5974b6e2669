"""``previz accounts``: the provider accounts a team store knows, and their shared slots.

An account is a provider plus a keyed fingerprint of its key (never the key): every run on the
store, of any manifest, on any machine, holds one of its slots from submit until the task ends.
``set PROVIDER --slots N`` fixes the count; without it the first run to use the account sets it
from the manifest's ``concurrency``. ``--daily-usd X`` caps what the account may spend in a UTC
day, every manifest on the store together (runner.store.pgmoney); ``--daily-usd none`` lifts it.
"""

from __future__ import annotations

import argparse
import math
import os

from runner.cli.common import EXIT_OK, ArgParser, at_least_one, command, number
from runner.errors import ConfigError

#: ``--daily-usd`` not given (``none`` is given: it lifts the cap).
_UNSET = object()


def add(sub: argparse._SubParsersAction[ArgParser]) -> None:
    acc = command(
        sub,
        "accounts",
        "list a team store's provider accounts (slots, today's spend, daily cap), or set an account's",
        "previz accounts set aimlapi --slots 8 --daily-usd 150 --store postgresql://previz@db/previz",
    )
    acc.add_argument("action", nargs="?", choices=("set",), help="set: change an account's slots or cap")
    acc.add_argument(
        "provider", nargs="?", help="with set: aimlapi, runware or runway (its key from the environment)"
    )
    acc.add_argument("--slots", type=at_least_one, help="with set: tasks in flight at once at this account")
    acc.add_argument(
        "--daily-usd",
        type=_daily_usd,
        default=_UNSET,
        metavar="USD|none",
        help="with set: what the account may spend in a UTC day, every manifest together (none: no cap)",
    )
    acc.add_argument("--store", metavar="URL", help="the team's postgresql:// store (also PREVIZ_STORE)")
    acc.set_defaults(func=_cmd_accounts)


def _daily_usd(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    value = float(number(text, float))
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or more US dollars, or none; got {text}")
    return value


def _cmd_accounts(args: argparse.Namespace) -> int:
    url = _store(args.store)
    if args.action == "set":
        return _set(url, args)
    from runner.reports.studio import account_line
    from runner.store.pgstudio import Studio

    studio = Studio.open(url)
    try:
        found = studio.snapshot().accounts
    finally:
        studio.close()
    if not found:
        print("no accounts yet: a run on this store adds its providers' accounts")
    for account in found:
        print(account_line(vars(account)).removeprefix("account "))
    return EXIT_OK


def _set(url: str, args: argparse.Namespace) -> int:
    from runner.store import pgslots

    given = args.daily_usd is not _UNSET
    if not args.provider or (args.slots is None and not given):
        raise ConfigError("accounts set needs PROVIDER and --slots N or --daily-usd USD|none")
    account = _account(args.provider)
    cap = args.daily_usd if given else pgslots.KEEP
    pgslots.set_account(url, account, slots=args.slots, daily_usd=cap)
    said = [f"{args.slots} slots"] if args.slots is not None else []
    if given:
        said.append("no daily cap" if args.daily_usd is None else f"a daily cap of ${args.daily_usd:.2f}")
    print(f"{account}: {' and '.join(said)} for every run on the store")
    return EXIT_OK


def _store(given: str | None) -> str:
    from runner.store.factory import POSTGRES
    from runner.store.storeurl import shown

    url = given or os.environ.get("PREVIZ_STORE", "")
    if not url:
        raise ConfigError("accounts needs a team store: --store postgresql://… or PREVIZ_STORE")
    if not url.startswith(POSTGRES):
        raise ConfigError(f"--store / PREVIZ_STORE: {shown(url)} is not a postgresql:// URL")
    try:
        from runner.store.pgschema import prepare_database
    except ImportError as exc:  # the 'team' extra was not installed
        raise ConfigError("a postgresql:// store needs psycopg: pip install 'previz-runner[team]'") from exc
    prepare_database(url)
    return url


def _account(provider: str) -> str:
    from runner.providers.registry import provider_config_from_env
    from runner.store.pgslots import account_of

    config = provider_config_from_env(provider)
    return account_of(provider, config.api_key.reveal())
