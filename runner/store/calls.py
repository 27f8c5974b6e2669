"""Each ``op_*`` as a call of its own: one transaction around it (every backend alike).

Why a mixin: a backend writes its ``op_*`` methods (the SQL) and its ``_tx`` (how it begins and
commits); what a single call is — open a transaction, run the op, commit — is the same for SQLite
and PostgreSQL, and was written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from runner.store.records import Money, Record

R = TypeVar("R")


class SingleCalls:
    """``reserve``, ``update``, ``release``, ``charge``, ``lease``: the op of that name in a transaction."""

    def _tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def op_reserve(
        self,
        key: str,
        attempt: int,
        estimate: float,
        check: Callable[[Money], R | None],
        then: Mapping[str, Any] | None = None,
    ) -> R | None:
        raise NotImplementedError

    def op_update(self, key: str, fields: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def op_release(self, key: str) -> None:
        raise NotImplementedError

    def op_charge(
        self, key: str, row: Mapping[str, Any], state: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def op_lease(self, key: str, run: str, seconds: float) -> Record | None:
        raise NotImplementedError

    def reserve(
        self, key: str, attempt: int, estimate: float, check: Callable[[Money], R | None]
    ) -> R | None:
        with self._tx():
            return self.op_reserve(key, attempt, estimate, check)

    def update(self, key: str, **fields: Any) -> None:
        with self._tx():
            self.op_update(key, fields)

    def release(self, key: str) -> None:
        with self._tx():
            self.op_release(key)

    def charge(self, key: str, row: Mapping[str, Any], *, state: str, **fields: Any) -> dict[str, Any]:
        with self._tx():
            return self.op_charge(key, row, state, fields)

    def lease(self, key: str, run: str, seconds: float) -> Record | None:
        with self._tx():
            return self.op_lease(key, run, seconds)
