"""Shared test set-up: import paths and a seeded RNG."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):  # ``import ntk_tui`` and ``import reference``
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator, so every test is deterministic."""
    return np.random.default_rng(20240607)
