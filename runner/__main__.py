"""`python -m runner` is the same program as the `previz` console script."""

from __future__ import annotations

from runner.cli.main import main

raise SystemExit(main())
