"""What team mode adds to a run (DESIGN §7): the store's URL, and the accounts' shared slots.

Apart from :mod:`runner.cli.run` so the default path — one machine, ``journal.sqlite`` — reads
without it, and nothing of PostgreSQL is imported unless a store is given.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

from runner.engine.shared import Account
from runner.errors import ConfigError
from runner.providers.base import ProviderConfig
from runner.store.base import Store
from runner.store.factory import POSTGRES
from runner.store.storeurl import shown


def store_url(given: str | None, lease_s: float, env: Mapping[str, str]) -> str | None:
    """``--store``, else ``PREVIZ_STORE``; refused unless it is a postgresql:// URL (exit 2)."""
    url = given if given is not None else env.get("PREVIZ_STORE")
    if not url:
        return None
    if not url.startswith(POSTGRES):
        raise ConfigError(f"--store / PREVIZ_STORE: {shown(url)} is not a postgresql:// URL")
    if not 0 < lease_s < math.inf:
        raise ConfigError(f"--lease-seconds must be more than 0, got {lease_s}")
    return url


def accounts(
    url: str | None,
    configs: Mapping[str, ProviderConfig],
    slots: Mapping[str, int],
    run: str,
    scope: str,
    times: tuple[float, float],
    stack: contextlib.ExitStack,
) -> dict[str, Account]:
    """Each provider account's slots on the store, shared by every run of any manifest; the first
    run to use an account sets its count from ``slots`` (``previz accounts set`` changes it).
    ``scope``: the manifest (slots are shared fairly between manifests). ``times``: the lease,
    and how long the store may be away, in seconds."""
    if not url:
        return {}
    from runner.store.pgconn import Outage
    from runner.store.pgslots import AccountSlots, account_of

    lease_s, outage = times[0], Outage(window_s=times[1])

    found: dict[str, Account] = {}
    for name, config in configs.items():
        account = account_of(name, config.api_key.reveal())
        shared = AccountSlots(url, account, run, slots.get(name, 1), lease_s, outage, scope=scope)
        stack.callback(shared.close)
        found[name] = shared
    return found


def join(journal: Store, found: Mapping[str, Account], budget_usd: float | None) -> None:
    """Tell a team store the run's accounts (whose daily spend cap a take counts against) and the
    manifest's budget (``status --store`` shows spend against it); nothing for ``journal.sqlite``."""
    if not found:
        return
    from runner.store.postgres import PostgresStore

    if isinstance(journal, PostgresStore):
        journal.use_accounts({name: shared.account for name, shared in found.items()})
        journal.set_budget(budget_usd)
