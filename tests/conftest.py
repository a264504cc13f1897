"""Shared test set-up: import paths, pure-Python fallback for ``ntk_tui``, a seeded RNG."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):  # ``import ntk_tui`` and ``import reference``
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


def _pure_python_fallback() -> None:
    """Keep ``ntk_tui.bounds`` / ``.datasets`` / ``.analysis`` importable without the engine.

    If ``import ntk_tui`` fails (compiled extension not built), register a bare
    package so its pure-Python submodules still import; any other attribute
    access re-raises the original import error.
    """
    try:
        import ntk_tui  # noqa: F401
    except ImportError as exc:
        err = f"{type(exc).__name__}: {exc}"
        stub = types.ModuleType("ntk_tui")
        stub.__path__ = [str(ROOT / "ntk_tui")]

        def __getattr__(name: str) -> object:
            raise ImportError(f"ntk_tui.{name} unavailable: importing ntk_tui failed ({err})")

        stub.__getattr__ = __getattr__  # type: ignore[attr-defined]
        sys.modules["ntk_tui"] = stub


_pure_python_fallback()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator, so every test is deterministic."""
    return np.random.default_rng(20240607)
