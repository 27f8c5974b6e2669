"""An account's daily spend cap (``previz accounts set … --daily-usd``) across two manifests.

Two manifests on one AIML account, each run a real subprocess against a standalone simulator
(AIML bills every task it accepts) and the session's PostgreSQL: together they buy no more than
the cap allows, both stop with exit 3 and say why, and the studio's view shows today's spend
against the cap and each manifest's spend against its budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crash import standalone
from tests.crash.standalone import stats
from tests.engine.helpers import shot, write_manifest

pytestmark = pytest.mark.slow

SCALE = 0.02


def test_two_manifests_stop_at_their_accounts_daily_cap(pg_url: str, tmp_path: Path) -> None:
    """$1.60 a day at $0.25 a take: room for 6 of the 12 takes, whichever manifest asks first."""
    (tmp_path / "h").mkdir()
    (tmp_path / "g").mkdir()
    harbor = write_manifest(
        tmp_path / "h", [shot("a", "aimlapi", takes=6)], name="harbor", concurrency=2, budget_usd=20
    )
    gorge = write_manifest(tmp_path / "g", [shot("b", "aimlapi", takes=6)], name="gorge", concurrency=2)
    with standalone.simulator("clean", time_scale=SCALE, gen_min_s=30, gen_max_s=30) as url:
        bad = standalone.previz("accounts", "set", "aimlapi", "--daily-usd", "-1", "--store", pg_url, url=url)
        assert bad.returncode == 2 and "--daily-usd" in bad.stderr, bad.stderr
        said = standalone.previz(
            "accounts", "set", "aimlapi", "--daily-usd", "1.60", "--store", pg_url, url=url
        )
        assert said.returncode == 0, said.stderr
        assert "a daily cap of $1.60 for every run on the store" in said.stdout
        store = ("--store", pg_url)
        with (
            standalone.started(harbor, url, *store, clock_scale=SCALE) as a,
            standalone.started(gorge, url, *store, clock_scale=SCALE) as b,
        ):
            results = [standalone.finish(a), standalone.finish(b)]
        bill = stats(url)
        listed = standalone.previz("accounts", "--store", pg_url, url=url).stdout
        status = standalone.previz("status", "--store", pg_url, url=url).stdout
    for code, out, err in results:
        assert code == 3, out + err
        assert "daily spend cap $1.60 of account aimlapi:" in out + err
        assert "takes left for tomorrow's quota" in out
    assert bill["providers"]["aimlapi"]["accepted"] == 6, "the cap's room, between both manifests"
    assert bill["billed_usd"] == pytest.approx(1.50)
    assert "today (UTC) 6 takes, spent $1.5000, held $0.0000 · daily cap $1.60" in listed, listed
    assert "sim-aimlapi-key" not in listed + status
    assert "of budget $20.00" in status, status
