"""The morning review (issue 20): `previz select`, `export` (OpenTimelineIO, CMX 3600) and `reroll`.

From one real night on the simulator — three shots: two takes of one, one of another, and a take
that fails by moderation — copied fresh for each test, so every test starts from the same journal.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import av
import opentimelineio as otio
import pytest

from runner.cli.main import main
from runner.manifest.document import load_manifest
from runner.store.sqlite import Journal
from tests.engine.helpers import ledger_rows, shot, write_manifest

SHOTS = [
    shot("harbor", "runware", takes=2, tags=["act1"]),
    shot("crowd", "runway", prompt="[sim:moderate] a crowd", tags=["act2"]),
    shot("pier", "aimlapi", tags=["act2"]),
]


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("night")
    manifest = write_manifest(folder, SHOTS, simulate=True)
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 1, "crowd fails by moderation"
    return folder / "out" / "t"


@pytest.fixture
def run_dir(night: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out" / "t"
    shutil.copytree(night, copy)
    return copy


def _selects(run_dir: Path) -> dict[str, tuple[str, str]]:
    journal = Journal.open(run_dir, readonly=True)
    try:
        return journal.selects()
    finally:
        journal.close()


def _labels(run_dir: Path) -> dict[str, str]:
    """key → label of every take in the journal."""
    journal = Journal.open(run_dir, readonly=True)
    try:
        return {k: r.label for k, r in journal.records().items()}
    finally:
        journal.close()


def _rows_by_label(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {f"{r['shot']}#t{r['take']:02d}": r for r in ledger_rows(run_dir)}


def test_select_records_who_and_when_and_status_summary_and_report_show_it(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["select", str(run_dir), "harbor:2", "pier:1", "--who", "ana"]) == 0
    out = capsys.readouterr().out
    assert "selected harbor#t02" in out and "selected pier#t01" in out
    labels = _labels(run_dir)
    chosen = {labels[k]: who for k, (who, _) in _selects(run_dir).items()}
    assert chosen == {"harbor#t02": "ana", "pier#t01": "ana"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", at) for _, at in _selects(run_dir).values())

    assert main(["status", str(run_dir), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {s: v["label"] for s, v in status["selects"].items()} == {
        "harbor": "harbor#t02",
        "pier": "pier#t01",
    }
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["selects"] == status["selects"], "summary.json follows previz select"
    assert main(["status", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "selects (*): harbor:2, pier:1" in text and "* harbor#t02" in text

    page = (run_dir / "report.html").read_text(encoding="utf-8")
    marked = re.findall(r'data-item="([^"]+)" data-pickable="1" data-selected="1"', page)
    assert sorted(marked) == ["harbor:2", "pier:1"], "the report was written again, selects marked"


def test_another_take_of_a_shot_replaces_its_select(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["select", str(run_dir), "harbor:1"]) == 0
    assert main(["select", str(run_dir), "harbor:2"]) == 0
    assert "no longer selected: harbor#t01" in capsys.readouterr().out
    labels = _labels(run_dir)
    assert [labels[k] for k in _selects(run_dir)] == ["harbor#t02"]


def test_select_from_a_file_lists_and_clears(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picks = tmp_path / "t-selects.txt"
    picks.write_text("# saved from report.html\n\nharbor:1   # the good one\npier:t1\n", encoding="utf-8")
    assert main(["select", str(run_dir), "--from", str(picks)]) == 0
    capsys.readouterr()
    assert main(["select", str(run_dir)]) == 0
    listed = capsys.readouterr().out
    assert [line.split()[0] for line in listed.splitlines() if not line.startswith("#")] == [
        "harbor:1",
        "pier:1",
    ]
    relisted = tmp_path / "listed.txt"
    relisted.write_text(listed, encoding="utf-8")
    assert main(["select", str(run_dir), "--clear", "pier:1"]) == 0
    assert [_labels(run_dir)[k] for k in _selects(run_dir)] == ["harbor#t01"]
    assert main(["select", str(run_dir), "--from", str(relisted)]) == 0, "the listing reads back as a file"
    assert len(_selects(run_dir)) == 2
    assert main(["select", str(run_dir), "--clear"]) == 0
    assert _selects(run_dir) == {}


def _bad_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad-selects.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["nope:1"], r"argument 'nope:1': nope:1: no shot 'nope' in this run \(shots: crowd, harbor, pier\)"),
        (["harbor:9"], r"harbor:9: shot 'harbor' has no take 9 \(takes 1–2\)"),
        (["crowd:1"], r"crowd:1: the take is failed, not done"),
        (["harbor"], r"argument 'harbor': 'harbor' is not SHOT:TAKE"),
        (["harbor:1", "harbor:2"], r"harbor:2: a second take of shot 'harbor' \(harbor:1 at argument"),
        (["--from", "FILE:harbor:1\npier one\n"], r"bad-selects.txt:2: 'pier one' is not SHOT:TAKE"),
        (["--from", "FILE:# nothing\n"], r"bad-selects.txt: no SHOT:TAKE line"),
        (["--from", "FILE:harbor:1\ncrowd:1\n"], r"bad-selects.txt:2: crowd:1: the take is failed"),
        (["--from", "MISSING"], r"missing.txt: cannot read the selects file"),
        (["--from", "DIR"], r"cannot read the selects file \(is a directory"),
        (["--clear", "harbor:7"], r"harbor:7: no such take in this run"),
        (["harbor:1", "--who", "ana\x1b[31m"], r"--who: must be 1–64 characters without control characters"),
    ],
)
def test_bad_select_input_is_exit_2_in_one_line_and_writes_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    assert main(["select", str(run_dir), "pier:1"]) == 0
    capsys.readouterr()
    before = _selects(run_dir)
    given = []
    for arg in args:
        if arg.startswith("FILE:"):
            given.append(_bad_file(tmp_path, arg[5:]))
        elif arg == "MISSING":
            given.append(str(tmp_path / "missing.txt"))
        elif arg == "DIR":
            given.append(str(tmp_path))
        else:
            given.append(arg)
    assert main(["select", str(run_dir), *given]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(named, err), err
    assert _selects(run_dir) == before, "nothing written"


def _frames(clip: Path) -> tuple[int, float]:
    """What FFmpeg (PyAV) says of the file: its frame count and frame rate."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.demux(stream) if _.size)
        return frames, float(stream.average_rate or 0)


def test_export_writes_the_selects_as_an_otio_timeline_and_a_cmx_3600_edl(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["select", str(run_dir), "pier:1", "harbor:2"]) == 0
    capsys.readouterr()
    timeline_path, edl_path = run_dir / "selects.otio", run_dir / "selects.edl"
    assert main(["export", str(run_dir), "--otio", str(timeline_path), "--edl", str(edl_path)]) == 0
    captured = capsys.readouterr()
    assert "2 clips, 0 gaps; media: paths relative to it (it is inside the run directory)" in captured.out
    assert "shot crowd: no select; left out (--gaps: a gap instead)" in captured.err

    timeline = otio.adapters.read_from_file(str(timeline_path))
    (track,) = timeline.video_tracks()
    clips = list(track.find_clips())
    assert [c.name for c in clips] == ["harbor#t02", "pier#t01"], "manifest order: harbor, crowd, pier"
    rows = _rows_by_label(run_dir)
    for clip in clips:
        row, meta = rows[clip.name], clip.metadata["previz"]
        media = timeline_path.parent / clip.media_reference.target_url
        assert not Path(clip.media_reference.target_url).is_absolute() and media.resolve().is_file()
        assert media.resolve() == (run_dir / row["output"]).resolve()
        frames, rate = _frames(media)
        assert clip.source_range.duration.value == frames and clip.source_range.duration.rate == rate
        assert clip.media_reference.available_range.duration.value == frames
        for name in ("shot", "take", "seed", "prompt", "provider", "model", "task_id", "cost_usd"):
            assert meta[name] == row[name], name
        assert list(meta["tags"]) == row["tags"].split(";")
    assert timeline.metadata["previz"]["media"] == "relative to this timeline"

    edl = edl_path.read_text(encoding="utf-8")
    events = [line.split() for line in edl.splitlines() if re.match(r"^\d{3}\s", line)]
    assert [e[0] for e in events] == ["001", "002"]
    assert [e[2] for e in events] == ["V", "V"] and [e[3] for e in events] == ["C", "C"]
    first_frames, rate = _frames(run_dir / rows["harbor#t02"]["output"])
    out_tc = otio.opentime.to_timecode(otio.opentime.RationalTime(first_frames, rate), rate)
    assert events[0][5] == out_tc and events[1][6] == out_tc, (
        "source out and the next record in: real lengths"
    )
    assert "harbor_t02" in edl and "pier_t01" in edl, "each event names its clip"


def test_export_outside_the_run_every_take_with_gaps(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "editorial" / "all.otio"
    out.parent.mkdir()
    assert main(["export", str(run_dir), "--otio", str(out), "--all", "--gaps"]) == 0
    captured = capsys.readouterr()
    assert "3 clips, 1 gaps; media: absolute file URLs" in captured.out
    assert f"shot crowd: no done take; a gap of {SHOTS[1]['duration']} s holds its place" in captured.err
    timeline = otio.adapters.read_from_file(str(out))
    items = list(timeline.video_tracks()[0])
    assert [i.name for i in items] == ["harbor#t01", "harbor#t02", "crowd", "pier#t01"]
    gap = items[2]
    assert isinstance(gap, otio.schema.Gap)
    rate = items[0].source_range.duration.rate
    assert gap.source_range.duration.to_seconds() == pytest.approx(SHOTS[1]["duration"]), (
        "the shot's duration"
    )
    assert gap.source_range.duration.rate == rate
    for clip in timeline.find_clips():
        url = clip.media_reference.target_url
        assert url.startswith("file:///") and Path(otio.url_utils.filepath_from_url(url)).is_file()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--otio", "OUT"], r"no clip to export \(no select"),
        (["--otio", "DIR"], r"is a directory"),
        (["--otio", "NOFOLDER"], r"does not exist"),
        (["--edl", "OUT.edl"], r"the following arguments are required: --otio"),
        (["--otio", "OUT", "--manifest", "NOMANIFEST"], r"cannot find the manifest"),
        pytest.param(
            ["--otio", "/proc/previz.otio", "--all"],
            r"/proc/previz\.otio: cannot write it",
            marks=pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc here"),
        ),
    ],
)
def test_bad_export_input_is_exit_2_in_one_line_and_writes_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    places = {
        "OUT": tmp_path / "x.otio",
        "OUT.edl": tmp_path / "x.edl",
        "DIR": tmp_path,
        "NOFOLDER": tmp_path / "no" / "x.otio",
        "NOMANIFEST": tmp_path / "none.yaml",
    }
    given = [str(places.get(a, a)) for a in args]
    assert main(["export", str(run_dir), *given]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(named, err), err
    assert not (tmp_path / "x.otio").exists() and not (tmp_path / "x.edl").exists()


def _seeds(run_dir: Path) -> set[int]:
    return {int(r["seed"]) for r in ledger_rows(run_dir)}


def test_reroll_writes_a_manifest_of_new_takes_that_validates_runs_and_resumes(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reroll", str(run_dir), "harbor", "pier", "--takes", "3"]) == 0
    out = capsys.readouterr().out
    path = run_dir / "reroll.yaml"
    assert out.splitlines()[-1] == f"round 1, runs as t-reroll: previz run {path}"
    first_text = path.read_text(encoding="utf-8")
    manifest = load_manifest(path)
    assert manifest.name == "t-reroll" and [s.id for s in manifest.shots] == ["harbor", "pier"]
    made_by = Path(json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["manifest_path"])
    original = {s.id: s for s in load_manifest(made_by).shots}
    for new in manifest.shots:
        old = original[new.id]
        assert (new.prompt, new.image.source, new.provider, new.duration, new.ratio, new.tags) == (
            old.prompt, old.image.source, old.provider, old.duration, old.ratio, old.tags
        )  # fmt: skip
        assert len(new.take_seeds()) == 3 and not set(new.take_seeds()) & _seeds(run_dir), "unseen seeds"
    assert main(["reroll", str(run_dir), "harbor", "pier", "--takes", "3"]) == 0
    assert path.read_text(encoding="utf-8") == first_text, "not run yet: the same round, the same dice"

    assert main(["run", str(path), "--sim-time-scale", "0.01"]) == 0
    reroll_dir = run_dir.parent / "t-reroll"
    rows = len(ledger_rows(reroll_dir))
    assert rows == 6
    assert main(["run", str(path), "--sim-time-scale", "0.01"]) == 0
    assert len(ledger_rows(reroll_dir)) == rows, "run twice, it resumes: nothing bought again"

    capsys.readouterr()
    assert main(["reroll", str(run_dir), "harbor", "--takes", "2"]) == 0
    second = run_dir / "reroll-2.yaml"
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"runs as t-reroll-2: previz run {second}")
    seeds = set(load_manifest(second).shots[0].take_seeds())
    assert len(seeds) == 2 and not seeds & (_seeds(run_dir) | _seeds(reroll_dir)), "unseen in every round"

    assert main(["reroll", str(reroll_dir), "harbor", "--takes", "2"]) == 0, "a reroll of a reroll's run"
    again = load_manifest(reroll_dir / "reroll-2.yaml")
    assert again.name == "t-reroll-2", "the rounds of the original name go on"
    assert not set(again.shots[0].take_seeds()) & (_seeds(run_dir) | _seeds(reroll_dir))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["nope", "--takes", "2"],
            r"argument 'nope': no shot 'nope' in .*t\.yaml \(shots: harbor, crowd, pier\)",
        ),
        (["harbor", "--takes", "0"], r"--takes: must be at least 1, got 0"),
        (["harbor", "--takes", "101"], r"--takes 101: must be 1–100"),
        (["harbor", "--takes", "two"], r"--takes: 'two' is not a whole number"),
        (["harbor"], r"the following arguments are required: --takes"),
    ],
)
def test_bad_reroll_input_is_exit_2_in_one_line_and_writes_nothing(
    run_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    assert main(["reroll", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(named, err), err
    assert not list(run_dir.glob("reroll*.yaml"))


def test_a_run_directory_that_is_not_one_is_exit_2_for_each_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["select", "x:1"],
        ["export", "--otio", str(tmp_path / "x.otio")],
        ["reroll", "x", "--takes", "1"],
    ):
        assert main([argv[0], str(tmp_path), *argv[1:]]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "no journal.sqlite here" in err, err


def test_a_journal_from_before_selects_is_read_and_upgraded_by_select(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(run_dir / "journal.sqlite") as conn:
        conn.executescript("DROP TABLE selects; PRAGMA user_version=3;")
    assert main(["status", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["selects"] == {}
    assert main(["select", str(run_dir), "harbor:1"]) == 0
    assert len(_selects(run_dir)) == 1


def test_an_edited_shot_circles_and_selects_its_newer_take(tmp_path: Path) -> None:
    first = [shot("harbor", "runware", takes=1, prompt="A harbor at dawn")]
    manifest = write_manifest(tmp_path, first, simulate=True)
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 0
    write_manifest(tmp_path, [{**first[0], "prompt": "A harbor at dusk"}], simulate=True)
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 0
    run_dir = tmp_path / "out" / "t"
    assert len({r["key"] for r in ledger_rows(run_dir)}) == 2, "one take number, two takes"
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.count('data-item="harbor:1" data-pickable="1"') == 1 and "earlier version" in page
    assert main(["select", str(run_dir), "harbor:1"]) == 0
    (key,) = _selects(run_dir)
    (newer,) = [r for r in ledger_rows(run_dir) if r["prompt"] == "A harbor at dusk"]
    assert key == newer["key"], "the take the page lets you circle is the one recorded"
