"""The files ``previz init`` writes: a starter manifest and its sample images (package data)."""
