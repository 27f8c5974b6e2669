"""The guard at the Provider seam: every provider-chosen string cleaned, task ids refused when
they cannot be kept as they are (issue 22, points 2 and 8)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence

import pytest

from runner.errors import AmbiguousSubmitError, DownloadError, FailureKind, TerminalError
from runner.providers.base import SubmitRequest, Submitted, TaskState, TaskStatus
from runner.providers.guard import HANDLE_LIMIT, GuardedProvider, ProviderText
from tests.providers.helpers import make_take

KEY = "sk-live-q7Vd2Lx9Kp4Zr8Tn1Wm6Yb3Hc5Jf0Gs+Ae/Ru"
ESC = "\x1b[2J\x1b]0;pwned\x07\r\n"


@pytest.mark.parametrize(
    ("handle", "problem"),
    [
        (str(uuid.UUID(int=7)), None),
        ("gen_01HZX8", None),
        (f"t-{KEY[8:14]}-1", None),  # six characters in common: a coincidence, kept (see the guard)
        (f"t{ESC}1", "control characters"),
        ("t\u202e1", "control characters"),
        ("t" * (HANDLE_LIMIT + 1), f"over {HANDLE_LIMIT}"),
        (f"task-{KEY}", "the API key"),
        (f"task-{KEY[12:22].upper()}", "the API key"),
        (f"task-{KEY[20:].replace('/', '%2F')}", "the API key"),
    ],
)
def test_which_task_ids_are_refused(handle: str, problem: str | None) -> None:
    found = ProviderText([KEY]).handle_problem(handle)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_random_ids_are_not_refused_for_sharing_hex_with_a_hex_key() -> None:
    """Refusing on 6 characters would write off about one honest Runway task in 14,000."""
    rng = random.Random(22)
    hex_key = "key_" + "".join(rng.choice("0123456789abcdef") for _ in range(128))  # shaped like Runway's
    text = ProviderText([hex_key])
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(3000)]
    ids.append(f"{hex_key[30:36]}-{ids[0][7:]}")  # six characters in common, by chance
    assert not [h for h in ids if text.handle_problem(h)]
    assert text.handle_problem(f"{hex_key[30:40]}-0") is not None, "ten are an echo"


class _Hostile:
    """An adapter whose every answer comes from a hostile server."""

    name = "runway"
    max_poll_batch = 1
    min_poll_interval = 5.0
    resend_safe = False
    can_cancel = True

    def __init__(self, handle: str = "t1", error: Exception | None = None) -> None:
        self.handle = handle
        self.raise_ = error

    def planned_handle(self, request: SubmitRequest) -> str | None:
        return None

    async def submit(self, request: SubmitRequest) -> Submitted:
        if self.raise_:
            raise self.raise_
        return Submitted(self.handle)

    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        if self.raise_:
            raise self.raise_
        message = f"bad key {KEY}{ESC}"
        return {h: TaskStatus(h, TaskState.FAILED, f"FAILED{ESC}", failure_message=message) for h in handles}

    async def cancel(self, handle: str) -> bool:
        if self.raise_:
            raise self.raise_
        return True


def _request() -> SubmitRequest:
    return SubmitRequest(make_take("runway"), image="https://example.com/a.jpg")


@pytest.mark.anyio
async def test_statuses_are_cleaned_and_errors_cleaned_in_place() -> None:
    guarded = GuardedProvider(_Hostile(), ProviderText([KEY]))
    status = (await guarded.poll(["t1"]))["t1"]
    assert status.failure_message == "bad key ***[2J]0;pwned  " and status.raw_status == "FAILED[2J]0;pwned  "
    error = TerminalError(
        f"echo {KEY}{ESC}", kind=FailureKind.AUTH, provider="runway", url=f"https://x/{KEY}"
    )
    guarded = GuardedProvider(_Hostile(error=error), ProviderText([KEY]))
    for call in (guarded.poll(["t1"]), guarded.cancel("t1"), guarded.submit(_request())):
        with pytest.raises(TerminalError) as caught:
            await call
        assert caught.value is error and caught.value.kind is FailureKind.AUTH
        assert KEY[:12] not in str(error) and "\x1b" not in str(error)
        assert (error.detail, error.url) == ("echo ***[2J]0;pwned  ", "https://x/***")


@pytest.mark.anyio
@pytest.mark.parametrize("handle", [f"task-{KEY}", f"t{ESC}2"])
async def test_a_task_id_that_cannot_be_kept_is_an_answer_we_cannot_read(handle: str) -> None:
    """The submit may have landed (it is charged as uncertain), but its id is neither stored nor shown."""
    guarded = GuardedProvider(_Hostile(handle=handle), ProviderText([KEY]))
    with pytest.raises(AmbiguousSubmitError) as caught:
        await guarded.submit(_request())
    assert KEY[:12] not in str(caught.value) and "\x1b" not in str(caught.value)


def test_download_errors_are_cleaned_too() -> None:
    error = ProviderText([KEY]).error(DownloadError(f"redirect to ftp://{KEY}/\x1b[2J"))
    assert str(error) == "redirect to ftp://***/[2J"
