"""An earlier manifest's takes in flight (issue 24 point 3): which are collected, freed or left."""

from __future__ import annotations

from pathlib import Path

from runner.engine import strays
from runner.engine.flight import Mode
from runner.engine.rejoin import Policy, rejoin
from runner.store.sqlite import Journal


def _journal(tmp_path: Path) -> Journal:
    journal = Journal.open(tmp_path)
    spec = {
        "shot": "a",
        "take": 2,
        "seed": 7,
        "model": "gen4_turbo",
        "duration_s": 5,
        "ratio": "16:9",
        "prompt": "a dolly shot",
        "image": "images/a.png",
        "tags": "night;wide",
    }
    journal.plan(
        (key, f"a#{key}", provider, spec, f"a/{key}.mp4")
        for key, provider in [
            ("sent", "runway"),
            ("lost", "runware"),
            ("held", "runway"),
            ("kept", "runway"),
            ("gone", "aimlapi"),
            ("done", "runway"),
        ]
    )
    journal.update("sent", state="submitted", handle="task-1")
    journal.update("lost", state="submitting", handle="uuid-1")
    journal.update("held", state="reserved", reserved_usd=0.25)
    journal.update("kept", state="submitted", handle="task-2")
    journal.update("gone", state="submitted", handle="task-3")
    journal.update("done", state="done")
    return journal


def test_what_an_earlier_manifest_left_is_collected_freed_or_named(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    held = journal.records(*strays.SENT, *strays.RESERVED).values()
    found = strays.find(held, planned={"kept"}, providers={"runway", "runware"})
    assert sorted(t.key for t in found.takes) == ["lost", "sent"], "the planned take is not a stray"
    assert found.release == ("held",) and dict(found.unreachable) == {"aimlapi": 1}
    take = next(t for t in found.takes if t.key == "sent")
    assert (take.shot, take.index, take.seed, take.tags, take.earlier) == ("a", 2, 7, ("night", "wide"), True)
    journal.close()


def test_an_earlier_take_is_polled_by_task_id_and_a_lost_submit_is_never_resent(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    found = strays.find(journal.records(*strays.SENT).values(), planned=(), providers={"runway", "runware"})
    policy = Policy(tmp_path, {"runway": False, "runware": True}, retry_failed=False, hold_uncertain=False)
    jobs = {
        job.take.key: job
        for queue in rejoin(found.takes, found.records, policy).queues.values()
        for job in queue
    }
    assert jobs["sent"].mode is Mode.POLL and jobs["sent"].handle == "task-1"
    assert jobs["lost"].mode is Mode.UNCERTAIN, "Runware would resend a live take; a stray is not live"
    assert all("earlier-manifest" in job.flags for job in jobs.values())
    journal.close()
