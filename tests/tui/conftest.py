"""Fixtures of the terminal-app tests: a fresh app with a temporary history database."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def make_app(db_path: Path) -> Callable[..., Any]:
    """``make_app(**options)``: an ``NtkApp`` with a frozen clock and a temporary history."""
    from ntk_tui.tui.app import NtkApp

    def make(**kw: Any) -> NtkApp:
        kw.setdefault("freeze_clock", True)
        kw.setdefault("store_path", db_path)
        return NtkApp(**kw)

    return make
