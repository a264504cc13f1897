"""The Run screen: parameter form, three live log-log plots, summary, progress.

The run is driven in a thread worker: ``Simulation.advance(max_seconds=0.1)``
in a loop, each chunk posted back to the UI, so the plots grow while the run
proceeds and Cancel is honoured within about a tenth of a second.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from ._base import WorkerScreen
from textual.widgets import Button, Footer

from ..config import FIELDS, FormError, RunConfig, validate_form
from ..engine import EngineUnavailable, engine, integration_error_parts, summarize
from ..session import SessionItem
from ..widgets.form import ParameterForm
from ..widgets.nav import NavBar, TabStrip
from ..widgets.runplots import RunPlots
from ..widgets.summary import RunStatus, SummaryPanel, fmt

__all__ = ["RunScreen"]

TABS = (("setup", "Setup"), ("gap", "Gap"), ("weights", "Weights"), ("kernel", "Kernel"))
ADVANCE_SECONDS = 0.05  # engine slice between cancel checks
REDRAW_SECONDS = 0.25  # at most 4 plot updates per second


class RunScreen(WorkerScreen):
    """Configure one run, watch it, read the verdict."""

    TABS = TABS
    TAB_STRIP = "run-tabs"
    RUN_BUTTON = "run-button"
    CANCEL_BUTTON = "cancel-button"
    PRESET_BOX = "setup"
    NARROW_ONLY_TAB = "setup"
    WIDE_TAB = "gap"

    AUTO_FOCUS = "#run-button"

    BINDINGS = [
        Binding("r", "run", "Run"),
        Binding("c", "cancel", "Cancel"),
        Binding("s", "app.goto('sweep')", "Sweep"),
        Binding("h", "app.goto('history')", "History"),
        Binding("e", "export", "Export"),
        Binding("f5", "run", "Run", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="run-screen")
        self.current_run: Any = None
        self.current_summary: Any = None
        self.current_config: RunConfig | None = None

    # ---- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield NavBar("run")
        yield TabStrip(TABS, "setup", id="run-tabs")
        with Horizontal(id="run-body"):
            with Vertical(id="setup"):
                with VerticalScroll(id="setup-scroll"):
                    yield ParameterForm(FIELDS, id="form")
                with Horizontal(id="run-buttons"):
                    yield Button("Run", id="run-button", variant="primary", compact=True)
                    yield Button("Cancel", id="cancel-button", variant="default", compact=True, disabled=True)
            yield RunPlots(hires=self.lab.hires, id="plots")
        yield SummaryPanel(id="summary")
        yield RunStatus(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#setup").border_title = "model"
        self._layout(self.size.width, self.size.height)
        self.query_one(RunPlots).idle(self._form_T())
        self.query_one(SummaryPanel).show_text(
            "Choose a model and press r to run, or a preset: 1 Theorem 1.3 converse · 2 Cor 2.2 T/alpha ·"
            " 3 NTK width sweep · 4 edge of the lazy regime.",
        )
        self.query_one(RunStatus).message("ready")
        self.mark_clean()

    def set_hires(self, hires: Any) -> None:
        self.query_one(RunPlots).set_hires(hires)

    def refresh_colours(self) -> None:
        self.query_one(RunPlots).refresh_colours()

    # ---- form ------------------------------------------------------------------

    @property
    def form(self) -> ParameterForm:
        return self.query_one("#form", ParameterForm)

    def _form_T(self) -> float | None:
        try:
            return float(self.form.raw_values().get("T") or "nan")
        except (TypeError, ValueError):
            return None

    def prefill(self, values: dict[str, Any]) -> None:
        self.form.set_values(values)
        if not self.running and self.current_run is None:
            self.query_one(RunPlots).idle(self._form_T())

    def load_preset(self, preset: Any, *, run: bool = True) -> None:
        if self.refuse_if_running():
            return
        self.form.set_values(preset.form)
        self._show_preset(preset)
        if run:
            self.action_run()

    @on(ParameterForm.Submitted)
    def _submitted(self, event: ParameterForm.Submitted) -> None:
        self.action_run()

    @on(ParameterForm.Changed)
    def _form_changed(self, event: ParameterForm.Changed) -> None:
        if event.key == "T" and not self.running and self.current_run is None:
            self.query_one(RunPlots).idle(self._form_T())

    @on(Button.Pressed, "#run-button")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#cancel-button")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    # ---- actions -----------------------------------------------------------------

    def _forms(self) -> list[ParameterForm]:
        return [self.form]

    def can_export(self) -> bool:
        return self.current_run is not None

    def _refuse(self, errors: dict[str, str], title: str = "Cannot run") -> None:
        errors = self._on_fields(errors)
        first = next(iter(errors.values()))
        self.form.show_errors({k: v for k, v in errors.items() if not k.startswith("_")})
        self.query_one(RunStatus).message(f"{title}: {first}", error=True)
        self.notify(first, title=title, severity="error")
        if self._narrow:
            self.action_show_tab("setup")
        self._focus_after_refusal(errors, [self.form])

    def action_run(self) -> None:
        if self.refuse_if_running():
            return
        self._remember_focus()
        form = self.form
        errors = form.validate_all()
        if errors:
            self._refuse(errors)
            return
        try:
            cfg = validate_form(form.raw_values())
        except FormError as exc:
            self._refuse(exc.errors)
            return
        try:
            core = cfg.to_core()
        except ValueError as exc:
            self._refuse({"_config": str(exc)})
            return
        try:
            engine()
        except EngineUnavailable as exc:
            self._refuse({"_engine": str(exc)}, title="Engine unavailable")
            return
        self._token += 1
        self._cancel = threading.Event()
        self.running = True
        self.current_config = cfg
        self._set_running(True)
        status = self.query_one(RunStatus)
        status.message(f"preparing {cfg.describe()} …")
        status.progress(0, None)
        if self._narrow and self._tab == "setup":
            self.action_show_tab("gap")
        self._simulate(cfg, core, self._token, self._cancel)

    def action_export(self) -> None:
        if self.current_run is None:
            self.notify("nothing to export yet: run something first", severity="warning")
            return
        from .dialogs import ExportScreen

        self.app.push_screen(ExportScreen("run", self.current_run, name=self._export_name()))

    def _export_name(self) -> str:
        run = self.current_run
        try:
            return f"ntk-{run.family}-alpha{run.alpha:g}-T{run.T:g}"
        except Exception:
            return "ntk-run"

    # ---- the worker ----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _simulate(self, cfg: RunConfig, core: Any, token: int, cancel: threading.Event) -> None:
        clock = __import__("time").perf_counter
        try:
            nt = engine()
            model = core.build_model()
            kw = core.simulation_kwargs()
            times = kw.get("times")
            if times is None:
                times = nt.default_times(cfg.T)
            R0 = float(model.r0(cfg.alpha))
            sim = nt.Simulation(model, cfg.alpha, cfg.T, **kw)
        except Exception as exc:
            msg = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self._post(self._start_failed, token, msg)
            return
        self._post(self._started, token, np.asarray(times, dtype=float), R0)
        t0 = clock()
        status, reason, run = "ok", None, None
        try:
            last_post = -1.0
            while not sim.done:
                if cancel.is_set():
                    break
                # short slices keep Cancel prompt; the plots are redrawn at most 4 times a second
                sim.advance(max_seconds=ADVANCE_SECONDS)
                if cancel.is_set() and not sim.done:
                    break
                now = clock()
                if now - last_post >= REDRAW_SECONDS and not sim.done:
                    last_post = now
                    partial = sim.result()
                    self._post(self._progress, token, partial, int(sim.n_done), int(sim.n_total), now - t0)
            run = sim.result()
            if not sim.done:
                status = "cancelled"
                run = dataclasses.replace(run, status="cancelled")  # the engine's run is merely paused
        except Exception as exc:
            parts = integration_error_parts(exc)
            if parts is not None:
                run, reason = parts
            else:
                reason = f"{type(exc).__name__}: {exc}"
                try:
                    run = sim.result()
                except Exception:
                    run = None
            status = "failed"
        summary = summarize(run) if run is not None else None
        store_id, store_error = None, None
        if run is not None and status != "cancelled" and self.lab.save_history:
            try:
                store_id = self.lab.get_store().save_run(run, config=core)
            except Exception as exc:
                store_error = str(exc)
        self._post(self._finished, token, cfg, run, summary, status, reason, store_id, store_error, clock() - t0)

    # ---- UI side of the worker ---------------------------------------------------------

    def _start_failed(self, token: int, message: str) -> None:
        if token != self._token:
            return
        self._set_running(False)
        self.query_one(RunStatus).progress(0, 1)
        self._refuse({"_engine": message}, title="Cannot run")

    def _started(self, token: int, times: np.ndarray, R0: float) -> None:
        if token != self._token or self.current_config is None:
            return
        cfg = self.current_config
        self.query_one(RunPlots).start(times, R0=R0, alpha=cfg.alpha, T=cfg.T)
        status = self.query_one(RunStatus)
        status.progress(0, len(times))
        status.message(f"running {cfg.describe()}")

    def _progress(self, token: int, run: Any, done: int, total: int, elapsed: float) -> None:
        if token != self._token:
            return
        self.query_one(RunPlots).update_run(run)
        t_done = float(np.asarray(run.times)[-1]) if len(np.atleast_1d(run.times)) else None
        self.query_one(SummaryPanel).show_live(run, t_done)
        status = self.query_one(RunStatus)
        status.progress(done, total)
        el = self.lab.elapsed_text(elapsed)
        text = f"running · t = {fmt(t_done) if t_done is not None else '0'} / {fmt(run.T)} · {done}/{total} times"
        if el:
            text += f" · {el}"
        status.message(text + " · c cancels")

    def _finished(self, token: int, cfg: RunConfig, run: Any, summary: Any, status: str, reason: str | None,
                  store_id: int | None, store_error: str | None, elapsed: float) -> None:
        if token != self._token:
            return
        self._set_running(False)
        bar = self.query_one(RunStatus)
        if run is None:
            bar.message(f"run failed: {reason}", error=True)
            self.notify(str(reason), title="Run failed", severity="error")
            return
        self.current_run = run
        self.current_summary = summary
        self.refresh_bindings()
        plots = self.query_one(RunPlots)
        plots.update_run(run, final=True)
        if summary is not None:
            self.query_one(SummaryPanel).show_summary(summary, run)
        n = len(np.atleast_1d(run.times))
        total = cfg.points
        bar.progress(n if status != "ok" else total, total)
        stats = dict(getattr(run, "stats", {}) or {})
        el = self.lab.elapsed_text(stats.get("elapsed_s", elapsed))
        label = f"{cfg.describe()}"
        if status == "ok":
            extra = f"saved #{store_id}" if store_id is not None else "done"
            bar.stats(stats, elapsed=el, extra=extra)
        elif status == "cancelled":
            t_done = float(np.asarray(run.times)[-1]) if n else 0.0
            bar.message(f"cancelled at t = {fmt(t_done)} ({n}/{total} times): partial run kept in this session")
            self.notify(f"run cancelled at t = {fmt(t_done)}; the partial run is kept", title="Cancelled")
        else:
            bar.message(f"integration failed: {reason} — partial run kept ({n}/{total} times)", error=True)
            self.notify(f"{reason}\nThe partial run is kept.", title="Integration failed", severity="error",
                        timeout=8)
        if store_error and status != "cancelled":
            self.notify(f"the run was not saved to the history: {store_error}", title="History",
                        severity="warning", timeout=6)
        self.lab.add_session(SessionItem("run", run, label, status, store_id=store_id, config=cfg,
                                         summary=summary))

    # ---- reopening -----------------------------------------------------------------------

    def show_run(self, run: Any, config: RunConfig | None = None, title: str = "") -> None:
        """Show a stored or session run (History → reopen)."""
        if self.running:
            self.notify("a run is in progress: cancel it first", severity="warning")
            return
        self.current_run = run
        self.current_summary = summarize(run)
        self.query_one(RunPlots).show_run(run)
        if self.current_summary is not None:
            self.query_one(SummaryPanel).show_summary(self.current_summary, run)
        stats = dict(getattr(run, "stats", {}) or {})
        self.query_one(RunStatus).stats(stats, elapsed=self.lab.elapsed_text(stats.get("elapsed_s")),
                                        extra=title or "reopened")
        try:
            n = len(np.atleast_1d(run.times))
            self.query_one(RunStatus).progress(n, n)
        except Exception:
            pass
        if config is not None:
            self.form.set_values(config.to_form())
        if self._narrow and self._tab == "setup":
            self.action_show_tab("gap")
        self.refresh_bindings()
