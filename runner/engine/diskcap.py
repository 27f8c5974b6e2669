"""What one run's downloads may put on disk, all of them together (``--max-run-gb``).

Why: each download is capped (``--max-clip-mb``, 1 GiB by default), but eight hostile or broken
CDNs at once could still fill 8 GiB, and a night of them far more. So every piece a download
writes is first taken from one budget for the run; what a failed download leaves is removed and
given back. A piece that would go over it fails that clip with :class:`RunDiskCapReached`, an
``OSError`` like a full disk's — the clip is "paid but not saved" (the next run fetches it by task
id), and the run stops making new submissions (stop reason ``disk cap``), exactly as on ENOSPC.
Only this run's downloads count: a rerun starts a new budget.
"""

from __future__ import annotations

import errno

#: The default cap: far above a real night's clips (a 10 s clip is about 5–20 MB), far below
#: what a run of broken CDNs could write. ``--max-run-gb`` raises or lowers it.
DEFAULT_MAX_RUN_GB = 100.0


class RunDiskCapReached(OSError):
    """This run's downloads would go over ``--max-run-gb`` (an OSError: it stops sends as ENOSPC does)."""

    def __init__(self, limit: int) -> None:
        gb = limit / 1e9
        why = f"this run's downloads reached --max-run-gb {gb:g} ({limit} bytes); raise it to save more"
        super().__init__(errno.EFBIG, why)


class RunDiskCap:
    """A byte budget shared by one run's downloads (the event loop's thread only: no lock)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes, or raise RunDiskCapReached and count nothing."""
        if self.limit is not None and self.used + size > self.limit:
            raise RunDiskCapReached(self.limit)
        self.used += size

    def give_back(self, size: int) -> None:
        self.used = max(0, self.used - size)
