"""Snapshot tests (pytest-textual-snapshot) of the main screens at 80x24 and 120x40.

The app runs with a frozen clock (no elapsed times) and a fresh history
database at a fixed path, so every screenshot is deterministic. Update the
stored SVGs with ``pytest tests/tui/test_snapshots.py --snapshot-update``
after an intended change, and look at them (``snapshot_report.html``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tui_helpers import set_input, wait_for

SIZES = [(80, 24), (120, 40)]
DB_DIR = Path("/tmp/ntk-tui-snapshot-tests")


@pytest.fixture
def app_factory():
    from ntk_tui.tui.app import NtkApp

    shutil.rmtree(DB_DIR, ignore_errors=True)
    DB_DIR.mkdir(parents=True)

    def make(**kw):
        kw.setdefault("freeze_clock", True)
        kw.setdefault("store_path", DB_DIR / "history.sqlite3")
        return NtkApp(**kw)

    yield make
    shutil.rmtree(DB_DIR, ignore_errors=True)


async def _settle(pilot) -> None:
    from textual.widgets import Input

    # a focused field's blinking cursor would make the picture depend on timing
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_screen_idle(snap_compare, app_factory, size) -> None:
    assert snap_compare(app_factory(), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_screen_invalid_input(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await set_input(pilot, "#form-alpha", "-3")
        await pilot.press("escape", "r")
        await _settle(pilot)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sweep_screen_idle(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await pilot.press("s")
        await _settle(pilot)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", [(80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await pilot.press("question_mark")
        await _settle(pilot)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_presets_dialog(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await pilot.press("p")
        await _settle(pilot)

    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_screen_converse_done(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await pilot.press("1")
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.current_run is not None and not screen.running)
        await _settle(pilot)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_run_screen_weights_tab(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await pilot.press("1")
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.current_run is not None and not screen.running)
        await pilot.press("]")
        await _settle(pilot)

    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sweep_screen_done(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await pilot.press("s")
        await pilot.pause()
        screen = pilot.app.screen
        screen.base_form.set_values(dict(family="converse", T=10.0, R0=1.0, lip_dh=1.0))
        screen.sweep_form.set_values(dict(variable="alpha", start=10, stop=1000, count=5, seeds=1))
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.result is not None and not screen.running, timeout=60)
        await _settle(pilot)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_history_screen_compare(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        app = pilot.app
        await pilot.press("1")
        await wait_for(pilot, lambda: len(app.session) == 1)
        await set_input(pilot, "#form-alpha", "30")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.session) == 2)
        await pilot.press("escape", "h")
        await pilot.pause()
        await pilot.press("space", "down", "space", "c")
        await _settle(pilot)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)
