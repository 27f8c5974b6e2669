"""The live view: per-shot rows under the totals; narrow terminals drop columns, never cut values."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from runner.cli.progress import Progress
from runner.engine.events import Event, EventKind, Outcome, TakeEnd
from tests.providers.helpers import make_take

LONG_SHOT = "harbor-dawn-establishing-wide-lighthouse"


def _view(width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, force_terminal=True)
    progress = Progress(console, shots={LONG_SHOT: 12, "ice": 3})
    progress(Event(EventKind.RUN_STARTED, message="15"))
    for index in range(1, 12):
        take = make_take("runware", shot=LONG_SHOT, index=index)
        progress(Event(EventKind.SUBMITTING, take))
        outcome = Outcome(take=take, status=TakeEnd.DONE, cost_usd=0.3042, cost_source="reported")
        progress(Event(EventKind.FINISHED, take, outcome=outcome))
    progress(Event(EventKind.SUBMITTING, make_take("runway", shot="ice", index=1)))
    console.export_text(clear=True)  # the event lines so far; the view alone is under test
    console.print(progress.render())
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_nothing_that_matters_is_cut(width: int) -> None:
    text = _view(width)
    assert all(len(line) <= width for line in text.splitlines()), text
    assert "…" not in text, text
    for value in ("11/15", "$3.35", "11/12", "0/3"):
        assert value in text, (width, value, text)
    assert LONG_SHOT in text.replace("\n", "").replace(" ", "") or LONG_SHOT[:20] in text


def test_a_wide_terminal_shows_every_column() -> None:
    text = _view(120)
    for column in (
        "done",
        "failed",
        "in flight",
        "spent",
        "queued",
        "ETA",
        "downloading",
        "elapsed",
        "skipped",
    ):
        assert column in text, column


def test_term_dumb_gets_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    console = Console(file=io.StringIO(), force_terminal=True)
    progress = Progress(console)
    with progress.live():
        assert progress._live is None, "no live redraw on a dumb terminal"


HOSTILE = "t1\x1b[2J\x1b]0;pwned\x07\r\nX\x9b31m"


@pytest.mark.parametrize("terminal", [True, False], ids=["live-view", "plain-lines"])
def test_provider_text_cannot_drive_the_terminal(terminal: bool) -> None:
    """Escapes that reached an event anyway (a task id, a message) are printed inert: no clear
    screen, no window title, no carriage return rewriting a line."""
    out = io.StringIO()
    console = Console(width=120, file=out, force_terminal=terminal)
    progress = Progress(console)
    take = make_take("runway")
    with progress.live():
        progress(Event(EventKind.SUBMITTED, take, handle=HOSTILE))
        progress(Event(EventKind.WARNING, take, message=HOSTILE))
        failed = Outcome(take=take, status=TakeEnd.FAILED, failure_kind=None, failure_message=HOSTILE)
        progress(Event(EventKind.FINISHED, take, outcome=failed))
    text = out.getvalue()
    for sequence in ("\x1b[2J", "\x1b]0;", "\x07", "\x9b", "pwned\r", "\r\nX"):
        assert sequence not in text, (sequence, text)
    assert text.count("pwned") >= 2, "the text itself is still shown"
