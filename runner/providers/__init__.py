"""Provider adapters behind one seam (:class:`runner.providers.base.Provider`)."""

from __future__ import annotations
