"""PostgresStore is built of mixins (pgruns, pgselects, pgmoney, calls): the split must not lose
the way back after an outage, nor let a mixin's stub stand in for the real method.

``comes_back`` wraps the methods ``_BACK`` names wherever in the MRO they are defined; a method
moved into a mixin and left out of ``_BACK``, or a mixin placed after ``SingleCalls`` (whose
``op_lease`` is a stub), would pass every test that never cuts the connection. No database needed.
"""

from __future__ import annotations

import inspect

import pytest

from runner.store import postgres
from runner.store.calls import SingleCalls
from runner.store.pgruns import ScopeRuns
from runner.store.pgselects import ScopeSelects
from runner.store.postgres import PostgresStore


@pytest.mark.parametrize("name", postgres._BACK)
def test_every_method_made_again_after_an_outage_is_wrapped_on_the_store(name: str) -> None:
    method = PostgresStore.__dict__.get(name)
    assert method is not None, f"{name} is not wrapped on PostgresStore itself"
    original = inspect.unwrap(method)
    assert original is not method, f"{name} is not made again after a lost connection"
    assert "raise NotImplementedError" not in inspect.getsource(original), f"{name} is a stub"


@pytest.mark.parametrize("mixin", [ScopeRuns, ScopeSelects])
def test_a_mixins_own_calls_to_the_database_are_all_made_again(mixin: type) -> None:
    own = {
        name
        for name, value in vars(mixin).items()
        if inspect.isfunction(value) and not name.startswith(("_", "op_"))
    }
    assert own, mixin
    assert own <= set(postgres._BACK), sorted(own - set(postgres._BACK))


def test_the_lease_is_the_stores_not_the_single_calls_stub() -> None:
    owner = next(cls for cls in PostgresStore.__mro__ if "op_lease" in vars(cls))
    assert owner is ScopeRuns
    assert PostgresStore.__mro__.index(ScopeRuns) < PostgresStore.__mro__.index(SingleCalls)
