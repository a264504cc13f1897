"""Drive the app like a user (Textual's ``run_test`` pilot): type, run, cancel, sweep, browse history."""

from __future__ import annotations

import gc
import math
import time
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import DataTable, Input

from tui_helpers import run, set_input, wait_for


def _summary_text(app) -> str:
    from ntk_tui.tui.widgets.summary import SummaryPanel

    return str(app.screen.query_one(SummaryPanel).render())


# --------------------------------------------------------------------------- without the engine


def test_invalid_input_is_marked_and_refused(make_app) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            await set_input(pilot, "#form-alpha", "-3")
            alpha = screen.query_one("#form-alpha", Input)
            assert alpha.has_class("-invalid")
            errors = str(screen.query_one("#form .errors").render())
            assert "alpha must be a positive number (got -3)" in errors
            await pilot.press("escape", "r")  # leave the field, then Run
            await pilot.pause()
            assert not screen.running and screen.current_run is None
            assert not app.workers._workers or all(w.group != "run" for w in app.workers._workers)
            status = str(screen.query_one("#status #status-text").render())
            assert status.startswith("Cannot run: alpha must be a positive number (got -3)")
            # Enter in a field runs too, and is refused the same way
            await set_input(pilot, "#form-T", "0")
            await pilot.press("enter")
            await pilot.pause()
            assert screen.current_run is None
            assert "T must be a positive number (got 0)" in str(screen.query_one("#form .errors").render())
            # fixing the values clears the marks
            await set_input(pilot, "#form-alpha", "10")
            await set_input(pilot, "#form-T", "5")
            assert not alpha.has_class("-invalid")
            assert str(screen.query_one("#form .errors").render()).strip() == ""

    run(scenario())


def test_relu_and_missing_file_are_explained(make_app, tmp_path: Path) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            form = app.screen.form
            form.set_values({"family": "twolayer", "activation": "relu", "data": "file",
                             "path": str(tmp_path / "nope.npy")})
            await pilot.pause()
            errors = form.errors
            assert "ReLU is not smooth" in errors["activation"]
            assert "file not found" in errors["path"]
            await pilot.press("r")
            await pilot.pause()
            assert app.screen.current_run is None

    run(scenario())


def test_narrow_terminal_uses_tabs(make_app) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert screen.has_class("-narrow") and screen.has_class("-tab-setup")
            assert screen.query_one("#setup").display and not screen.query_one("#plots").display
            await pilot.press("]")
            assert screen.has_class("-tab-gap") and screen.query_one("#plots").display
            assert screen.query_one("#p-gap").display and not screen.query_one("#p-weights").display
            await pilot.press("]", "]", "]")
            assert screen.has_class("-tab-setup")
            await pilot.resize_terminal(160, 48)
            await pilot.pause()
            assert screen.has_class("-wide")
            assert screen.query_one("#setup").display and screen.query_one("#p-weights").display

    run(scenario())


def test_help_and_presets_dialog(make_app) -> None:
    async def scenario() -> None:
        from ntk_tui.tui.screens.dialogs import PresetScreen
        from ntk_tui.tui.screens.help import HelpScreen

        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("p")
            assert isinstance(app.screen, PresetScreen)
            await pilot.press("escape")
            await pilot.press("s")
            await pilot.pause()
            assert app.current_mode == "sweep"
            await pilot.press("h")
            await pilot.pause()
            assert app.current_mode == "history"
            await pilot.press("g")
            await pilot.pause()
            assert app.current_mode == "run"

    run(scenario())


def test_block_character_fallback(make_app, monkeypatch) -> None:
    from ntk_tui.tui.widgets.plots import BLOCK_MODE, BRAILLE_MODE, LogPlot

    async def scenario(app, expected) -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            modes = {p.hires for p in app.screen.query(LogPlot)}
            assert modes == {expected}

    run(scenario(make_app(), BRAILLE_MODE))
    run(scenario(make_app(braille=False), BLOCK_MODE))
    monkeypatch.setenv("NTK_TUI_NO_BRAILLE", "1")
    run(scenario(make_app(), BLOCK_MODE))


# --------------------------------------------------------------------------- with the engine


def test_converse_preset_matches_the_engine(make_app, db_path) -> None:
    import ntk_tui as nt
    from ntk_tui.analysis import format_si

    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            # change a parameter first (the preset overwrites it, once confirmed), then preset 1
            await set_input(pilot, "#form-alpha", "7")
            await pilot.press("escape", "1", "y")
            await wait_for(pilot, lambda: screen.current_run is not None and not screen.running)
            got = screen.current_run
            ref = nt.simulate(nt.Converse(100.0, 1.0, 1.0, sign=1), 100.0, 100.0)
            np.testing.assert_array_equal(got.times, ref.times)
            np.testing.assert_array_equal(got.gap, ref.gap)
            np.testing.assert_array_equal(got.weight_change, ref.weight_change)
            assert got.R0 == ref.R0 and got.kappa == ref.kappa
            text = _summary_text(app)
            for value in (ref.R0, ref.kappa, ref.gap[-1], ref.bounds()["theorem_1_2"].value[-1]):
                assert format_si(value) in text, (format_si(value), text)
            assert "verdict:" in text
            # now change parameters like a user: alpha 50 and T 20, Enter runs
            await set_input(pilot, "#form-alpha", "50")
            await set_input(pilot, "#form-T", "20")
            await pilot.press("enter")
            await wait_for(pilot, lambda: not screen.running and screen.current_run is not got)
            ref2 = nt.simulate(nt.Converse(20.0, 1.0, 1.0, sign=1), 50.0, 20.0)
            np.testing.assert_array_equal(screen.current_run.gap, ref2.gap)
            assert format_si(ref2.gap[-1]) in _summary_text(app)
            assert len(app.session) == 2 and all(item.store_id is not None for item in app.session)

    run(scenario())


@pytest.fixture
def runner_heap_out_of_gc():
    """Keeps the test process's own heap out of Python's full collections while a
    test measures the interface's pauses. Late in the suite that heap (hundreds of
    earlier apps and snapshots) makes one full collection take 0.4-0.75 s, which
    a fresh ``ntk-tui`` process never has to scan."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def test_cancel_stops_a_long_run_quickly(make_app, runner_heap_out_of_gc) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            screen.form.set_values(dict(family="twolayer", alpha=1.0, T=1e5, m=2048, n=128, d=16, data="sin",
                                        rtol=1e-11, atol=1e-14, points=400))
            await pilot.pause()
            # the event loop must keep ticking while the engine works (the UI never freezes)
            ticks: list[float] = []
            app.set_interval(0.02, lambda: ticks.append(time.perf_counter()))
            await pilot.press("r")
            await wait_for(pilot, lambda: screen.running)
            await wait_for(pilot, lambda: app.screen.query_one("#status #status-text").render().plain.startswith(
                "running · t ="), timeout=10)  # plots are growing
            await pilot.pause(1.0)
            assert screen.running, "the long run finished too early for this test"
            lag = max(b - a for a, b in zip(ticks, ticks[1:]))
            assert lag < 0.5, f"the interface froze for {lag:.2f} s"
            # a preset asked for during the run is refused and leaves the form alone
            await pilot.press("1")
            await pilot.pause()
            assert screen.running and screen.form.raw_values()["family"] == "twolayer"
            t0 = time.perf_counter()
            await pilot.press("c")
            await wait_for(pilot, lambda: not screen.running, timeout=5.0, step=0.01)
            assert time.perf_counter() - t0 < 1.0
            item = app.session[-1]
            assert item.status == "cancelled" and item.store_id is None
            assert item.obj.status == "cancelled" and "[run cancelled]" in _summary_text(app)
            assert 0 < len(item.obj.times) < 400
            assert "cancelled" in str(screen.query_one("#status #status-text").render())
            t_quit = time.perf_counter()
        # leaving the app right after does not wait for anything
        assert time.perf_counter() - t_quit < 5.0

    run(scenario())


def test_a_refused_run_gives_the_cursor_back(make_app) -> None:
    """At 80x24 starting a run leaves the setup tab; if the engine refuses the run, the
    cursor must come back to the field, so that typed digits edit it instead of
    loading presets."""

    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            screen.form.set_values(dict(family="twolayer", n=16, d=4, method="rodas4"))  # p = 64 * 5 > 200
            await set_input(pilot, "#form-m", "64")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "Cannot run" in str(screen.query_one("#status #status-text").render()))
            await pilot.pause()
            assert "rodas4 takes at most" in str(screen.query_one("#form .errors").render())  # on its field
            assert app.focused is screen.query_one("#form-method")
            await set_input(pilot, "#form-m", "64")
            await pilot.press("1")
            await pilot.pause()
            assert screen.form.raw_values()["family"] == "twolayer"
            assert screen.query_one("#form-m", Input).value == "641"

    run(scenario())


def test_a_preset_asks_before_replacing_edits(make_app) -> None:
    async def scenario() -> None:
        from ntk_tui.tui.screens.dialogs import ConfirmScreen

        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            await set_input(pilot, "#form-alpha", "7")
            await pilot.press("escape", "1")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")  # keep the edits
            await pilot.pause()
            assert screen.form.raw_values()["alpha"] == "7" and not screen.running
            await pilot.press("1", "y")  # now replace them: the preset loads and runs
            await wait_for(pilot, lambda: screen.current_run is not None and not screen.running)
            assert screen.form.raw_values()["family"] == "converse"
            await pilot.press("2")  # nothing edited since: no question
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)

    run(scenario())


def test_quitting_during_a_run_stops_it(make_app) -> None:
    async def scenario() -> float:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            app.screen.form.set_values(dict(family="twolayer", alpha=1.0, T=1e5, m=2048, n=128, d=16,
                                            rtol=1e-11, atol=1e-14, points=400))
            await pilot.pause()
            await pilot.press("r")
            await wait_for(pilot, lambda: app.screen.running)
            await pilot.pause(0.5)
            t0 = time.perf_counter()
            await pilot.press("q")
        return t0

    t0 = run(scenario())
    assert time.perf_counter() - t0 < 5.0


def test_integration_error_keeps_the_partial_run(make_app, monkeypatch) -> None:
    import ntk_tui as nt

    real = nt.Simulation

    class Failing(real):  # the engine fails after its first chunk
        calls = 0

        def advance(self, max_points=None, max_seconds=None):
            Failing.calls += 1
            if Failing.calls > 1:
                raise nt.IntegrationError("step size underflow at t=1.2", self.result())
            return super().advance(max_points=8)

    monkeypatch.setattr(nt, "Simulation", Failing)

    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            await pilot.press("r")
            await wait_for(pilot, lambda: not screen.running and screen.current_run is not None)
            assert len(screen.current_run.times) == 8
            status = str(screen.query_one("#status #status-text").render())
            assert "integration failed: step size underflow at t=1.2" in status
            assert app.session[-1].status == "failed"

    run(scenario())


def test_store_failure_does_not_lose_the_run(make_app, tmp_path: Path) -> None:
    bad = tmp_path / "a-directory"
    bad.mkdir()

    async def scenario() -> None:
        app = make_app(store_path=bad)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("1")
            await wait_for(pilot, lambda: app.session != [])
            item = app.session[-1]
            assert item.status == "ok" and item.store_id is None
            assert app.screen.current_run is item.obj
            await pilot.press("h")
            await pilot.pause()
            table = app.screen.query_one(DataTable)
            assert table.row_count == 1  # the unsaved session run is listed
            assert "history database unavailable" in str(app.screen.query_one("#history-status #status-text").render())

    run(scenario())


def test_sweep_fills_its_table(make_app) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("s")
            await pilot.pause()
            screen = app.screen
            screen.base_form.set_values(dict(family="converse", T=10.0, R0=1.0, lip_dh=1.0))
            screen.sweep_form.set_values(dict(variable="alpha", start=10, stop=1000, count=5, seeds=1))
            await pilot.pause()
            await pilot.press("r")
            await wait_for(pilot, lambda: screen.result is not None and not screen.running, timeout=60)
            table = screen.query_one("#sweep-table", DataTable)
            assert table.row_count == 5
            assert screen.result.n_ok == 5
            gaps = [r["gap_T"] for r in screen.result.rows]
            assert all(g > 0 for g in gaps) and gaps == sorted(gaps, reverse=True)
            fit_text = str(screen.query_one("#sweep-fit").render())
            assert "slope" in fit_text and "theory" in fit_text
            slope = screen.result.fits["alpha"][0]["slope"]
            assert -1.1 < slope < -0.9  # gap(T) ~ 1/alpha in the lazy regime
            assert app.session[-1].kind == "sweep" and app.session[-1].store_id is not None

    run(scenario())


def test_sweep_cancel_keeps_finished_runs(make_app) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("s")
            await pilot.pause()
            screen = app.screen
            screen.base_form.set_values(dict(family="twolayer", T=1e4, m=1024, n=64, d=8, rtol=1e-11, atol=1e-14))
            screen.sweep_form.set_values(dict(variable="alpha", start=1, stop=100, count=6, seeds=1))
            await pilot.pause()
            await pilot.press("r")
            await wait_for(pilot, lambda: screen.running)
            await pilot.pause(0.5)
            t0 = time.perf_counter()
            await pilot.press("c")
            await wait_for(pilot, lambda: not screen.running, timeout=15)
            assert time.perf_counter() - t0 < 5.0
            assert screen.result is not None and screen.result.status == "cancelled"

    run(scenario())


def test_history_reopen_compare_delete(make_app) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            await pilot.press("1")
            await wait_for(pilot, lambda: len(app.session) == 1)
            await set_input(pilot, "#form-alpha", "30")
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(app.session) == 2)
            first, second = app.session
            await pilot.press("escape", "h")
            await pilot.pause()
            hist = app.screen
            table = hist.query_one(DataTable)
            assert table.row_count == 2
            # newest first: mark both, compare
            await pilot.press("space", "down", "space", "c")
            await pilot.pause()
            plot = hist.query_one("#history-plot")
            labels = [c.label for c in plot._curves]
            assert f"#{second.store_id} gap" in labels and f"#{first.store_id} gap" in labels
            # reopen the older one (cursor is on it) on the Run screen
            await pilot.press("o")
            await wait_for(pilot, lambda: app.current_mode == "run")
            await pilot.pause()
            np.testing.assert_array_equal(screen.current_run.gap, first.obj.gap)
            assert screen.form.raw_values()["alpha"] == "100"
            # delete it
            await pilot.press("h")
            await pilot.pause()
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert app.screen.query_one(DataTable).row_count == 1
            assert not app.get_store().exists(first.store_id)

    run(scenario())


def test_export_csv_json_svg(make_app, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("1")
            await wait_for(pilot, lambda: len(app.session) == 1)
            for fmt, key in (("csv", None), ("json", "down"), ("svg", "down")):
                await pilot.press("e")
                await pilot.pause()
                if key:
                    for _ in range(("csv", "json", "svg").index(fmt)):
                        await pilot.press("down")
                    await pilot.press("enter")
                    await pilot.pause()
                path = tmp_path / f"out.{fmt}"
                await set_input(pilot, "#export-path", str(path))
                await pilot.press("enter")
                await wait_for(pilot, lambda: path.exists(), timeout=10)
            from ntk_tui.export import load_results

            loaded = load_results(tmp_path / "out.csv")
            np.testing.assert_allclose(np.asarray(loaded.gap, dtype=float), app.session[0].obj.gap)
            import json

            doc = json.loads((tmp_path / "out.json").read_text())
            assert doc["columns"]["gap"][-1] == pytest.approx(float(app.session[0].obj.gap[-1]))
            assert (tmp_path / "out.svg").read_text().startswith("<svg")

    run(scenario())


def test_command_palette_runs_app_commands(make_app) -> None:
    from ntk_tui.tui.widgets.plots import BLOCK_MODE, LogPlot

    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"braille")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            assert {p.hires for p in app.screen.query(LogPlot)} == {BLOCK_MODE}
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"history screen")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.current_mode == "history")

    run(scenario())


def test_theme_change_keeps_the_plots(make_app) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("1")
            screen = app.screen
            await wait_for(pilot, lambda: screen.current_run is not None and not screen.running)
            panel = screen.query_one("#p-gap")
            dark = panel.colours()["measure"]
            app.theme = "textual-light"
            await pilot.pause()
            assert panel.colours()["measure"] != dark
            assert panel.plot._colours["measure"] == panel.colours()["measure"]

    run(scenario())


def test_presets_start_in_one_keystroke(make_app) -> None:
    async def scenario() -> None:
        app = make_app(preset="converse")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: screen.current_run is not None and not screen.running)
            assert screen.has_class("-tab-gap")  # the plots are shown once a run starts
            assert math.isclose(screen.current_run.kappa, 1.0)
            setup = screen.query_one("#setup")
            assert str(setup.border_subtitle).startswith("preset 1")
            # an edited form no longer claims to be the preset
            await pilot.press("left_square_bracket")
            await set_input(pilot, "#form-alpha", "7")
            assert not setup.border_subtitle

    run(scenario())


def test_width_sweep_table_shows_the_width(make_app) -> None:
    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("3")  # preset 3: width sweep with alpha = sqrt(m)
            await wait_for(pilot, lambda: hasattr(app.screen, "sweep_form"))
            screen = app.screen
            await wait_for(pilot, lambda: screen.result is not None and not screen.running, timeout=120)
            table = screen.query_one("#sweep-table", DataTable)
            from ntk_tui.tui.widgets.summary import fmt

            rows = {str(r["index"]): r for r in screen.result.rows}
            assert len(rows) == table.row_count > 1
            for key, r in rows.items():
                assert math.isclose(r["alpha"], math.sqrt(r["m"]))
                assert str(table.get_cell(key, "x")) == fmt(r["m"])
                assert str(table.get_cell(key, "alpha")) == fmt(r["alpha"])
            # reopened from the history, the sweep brings its settings back into the forms
            screen.sweep_form.set_values(dict(variable="alpha", start=1.0, stop=2.0, count=3, seeds=1))
            screen.base_form.set_values(dict(family="converse"))
            await pilot.press("h")
            await pilot.pause()
            await pilot.press("o")
            await wait_for(pilot, lambda: app.current_mode == "sweep")
            await pilot.pause()
            sweep = screen.sweep_form.raw_values()
            assert (sweep["variable"], sweep["start"], sweep["stop"], sweep["count"], sweep["seeds"]) == (
                "width", "16", "1024", "7", "2")
            base = screen.base_form.raw_values()
            assert (base["family"], base["n"], base["d"], base["T"]) == ("twolayer", "32", "4", "10")

    run(scenario())
