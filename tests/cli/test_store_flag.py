"""``--store`` / ``PREVIZ_STORE`` refusals: one line, exit 2, nothing sent, the password never shown."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from runner.cli.main import main
from tests.engine.helpers import shot, write_manifest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite:///tmp/x.db", "is not a postgresql:// URL"),
        ("mysql://u:hunter2secret@127.0.0.1/db", "is not a postgresql:// URL"),
        (f"postgresql://u:hunter2secret@127.0.0.1:{_free_port()}/db", "cannot reach the store"),
    ],
)
@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_store_that_cannot_be_used_is_one_line_before_anything_is_sent(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    says: str,
    how: str,
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware")], simulate=True)
    argv = ["run", str(manifest), "--sim-time-scale", "0.01"]
    if how == "flag":
        argv += ["--store", url]
    else:
        monkeypatch.setenv("PREVIZ_STORE", url)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert "hunter2secret" not in err and "Traceback" not in err
    assert not (tmp_path / "out" / "t" / "a").exists(), "nothing was run"
