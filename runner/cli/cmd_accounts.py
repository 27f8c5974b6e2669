"""``previz accounts``: the provider accounts a team store knows, and their shared slots.

An account is a provider plus a keyed fingerprint of its key (never the key): every run on the
store, of any manifest, on any machine, holds one of its slots from submit until the task ends.
``set PROVIDER --slots N`` fixes the count; without it the first run to use the account sets it
from the manifest's ``concurrency``.
"""

from __future__ import annotations

import argparse
import os

from runner.cli.common import EXIT_OK, ArgParser, at_least_one, command
from runner.errors import ConfigError


def add(sub: argparse._SubParsersAction[ArgParser]) -> None:
    acc = command(
        sub,
        "accounts",
        "list a team store's provider accounts and their shared slots, or set an account's slots",
        "previz accounts set aimlapi --slots 8 --store postgresql://previz@db/previz",
    )
    acc.add_argument("action", nargs="?", choices=("set",), help="set: change an account's slots")
    acc.add_argument(
        "provider", nargs="?", help="with set: aimlapi, runware or runway (its key from the environment)"
    )
    acc.add_argument("--slots", type=at_least_one, help="with set: tasks in flight at once at this account")
    acc.add_argument("--store", metavar="URL", help="the team's postgresql:// store (also PREVIZ_STORE)")
    acc.set_defaults(func=_cmd_accounts)


def _cmd_accounts(args: argparse.Namespace) -> int:
    url = _store(args.store)
    from runner.store import pgslots

    if args.action == "set":
        if not args.provider or args.slots is None:
            raise ConfigError("accounts set needs PROVIDER and --slots N")
        account = _account(args.provider)
        pgslots.set_slots(url, account, args.slots)
        print(f"{account}: {args.slots} slots for every run on the store")
        return EXIT_OK
    found = pgslots.accounts(url)
    if not found:
        print("no accounts yet: a run on this store adds its providers' accounts")
    for account, slots, held in found:
        print(f"{account:<36} {held} of {slots} slots in flight")
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
