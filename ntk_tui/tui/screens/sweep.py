"""The Sweep screen: gap(T) against alpha (or the width m, alpha = sqrt m).

The sweep runs through :func:`ntk_tui.sweep.run_sweep` (the engine's batch
API, with progress and cancel) in a thread worker; every finished run lands in
the table and on the plot at once. The plot is log-log with the fitted slope
(:func:`ntk_tui.analysis.fit_power_law`), the bounds at T, and a reference
line with the slope the theory predicts.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from ._base import WorkerScreen
from textual.widgets import Button, DataTable, Footer, Static

from ..config import FIELDS, SWEEP_FIELDS, FormError, SweepConfig, validate_form, validate_sweep
from ..engine import EngineUnavailable, engine
from ..session import SessionItem
from ..widgets.form import ParameterForm
from ..widgets.nav import NavBar, TabStrip
from ..widgets.plots import Curve, PlotPanel, decade_range
from ..widgets.runplots import bound_style
from ..widgets.summary import RunStatus, fmt

__all__ = ["SweepScreen", "sweep_curves", "theory_slope"]

TABS = (("setup", "Setup"), ("plot", "Plot"), ("table", "Table"))


def theory_slope(variable: str, t_scaled: bool) -> tuple[float, str]:
    """The slope of gap(T) Theorem 1.2 predicts on these axes (from :mod:`ntk_tui.sweep`)."""
    try:
        from ntk_tui.sweep import THEORY_EXPONENTS, THEORY_EXPONENTS_T_SCALED

        table = THEORY_EXPONENTS_T_SCALED if t_scaled else THEORY_EXPONENTS
        row = table["m" if variable in ("m", "width") else "alpha"]
        return float(row["Thm 1.2"]), ", ".join(f"{k} {_slope(v)}" for k, v in row.items())
    except Exception:
        if t_scaled:
            return 0.0, "Thm 1.2 0"
        return (-0.5, "Thm 1.2 -1/2") if variable in ("m", "width") else (-1.0, "Thm 1.2 -1")


def _slope(v: float) -> str:
    if v == -0.5:
        return "-1/2"
    if v == 0.5:
        return "+1/2"
    return f"{v:+g}" if v else "0"


def _xkey(variable: str) -> str:
    return "m" if variable in ("m", "width") else "alpha"


def _good(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        g = r.get("gap_T")
        if r.get("status") == "ok" and isinstance(g, (int, float)) and math.isfinite(g) and g > 0:
            out.append(r)
    return out


def sweep_curves(rows: list[dict[str, Any]], variable: str, t_scaled: bool) -> tuple[list[Curve], Any]:
    """Curves for the sweep plot, and the power-law fit (or None)."""
    xkey = _xkey(variable)
    good = _good(rows)
    curves: list[Curve] = []
    fit = None
    if not good:
        return curves, None
    xs = np.array([float(r[xkey]) for r in good])
    ys = np.array([float(r["gap_T"]) for r in good])
    order = np.argsort(xs)
    # bounds at T, averaged over seeds at each x
    names = sorted({k[len("bound_"):] for r in good for k in r if k.startswith("bound_") and not k.endswith("_valid")})
    ux = np.unique(xs)
    for name in names:
        st = bound_style(name)
        if st is None or st.panel != "gap":
            continue
        vals = []
        for x in ux:
            found = [r.get(f"bound_{name}") for r in good if float(r[xkey]) == x
                     and r.get(f"bound_{name}_valid") not in (False, 0)]
            v = [float(a) for a in found if isinstance(a, (int, float))]
            vals.append(float(np.mean(v)) if v else np.nan)
        vals_a = np.asarray(vals, dtype=float)
        note = "" if np.isfinite(vals_a).any() else "(not valid at T)"
        curves.append(Curve(f"{st.label} at T", ux, vals_a, role=st.role, pattern=st.pattern, note=note))
    try:
        from ntk_tui.analysis import fit_power_law

        if len(np.unique(xs)) >= 2:
            fit = fit_power_law(xs, ys)
    except Exception:
        fit = None
    if fit is not None:
        xx = np.geomspace(ux[0], ux[-1], 32)
        lo, hi = fit.slope_ci95
        ci = f" [{fmt(lo, 3)}, {fmt(hi, 3)}]" if math.isfinite(lo) else ""
        curves.append(Curve(f"fit slope {fmt(fit.slope, 3)}{ci}", xx, fit.predict(xx), role="fit"))
    slope, _ = theory_slope(variable, t_scaled)
    # reference line with the theory's slope through the centre of the data (log-log)
    lx, ly = np.log(xs), np.log(ys)
    cx, cy = lx.mean(), ly.mean()
    xx = np.geomspace(ux[0], ux[-1], 32)
    curves.append(Curve(f"slope {_slope(slope)} (Thm 1.2)", xx, np.exp(cy + slope * (np.log(xx) - cx)),
                        role="ref", pattern="sparse"))
    curves.append(Curve("gap(T)", xs[order], ys[order], role="measure", pattern="points"))
    return curves, fit


class SweepScreen(WorkerScreen):
    """Sweep alpha or the width; fit the slope of gap(T)."""

    TABS = TABS
    TAB_STRIP = "sweep-tabs"
    RUN_BUTTON = "sweep-run"
    CANCEL_BUTTON = "sweep-cancel"
    PRESET_BOX = "sweep-setup"
    CANCELLING = "cancelling… (finished runs are kept)"
    BUSY = "a sweep is in progress: press c to cancel it"
    NARROW_ONLY_TAB = "setup"
    WIDE_TAB = "plot"

    AUTO_FOCUS = "#sweep-run"

    BINDINGS = [
        Binding("r", "run", "Run sweep"),
        Binding("c", "cancel", "Cancel"),
        Binding("g", "app.goto('run')", "Single run"),
        Binding("h", "app.goto('history')", "History", show=False),
        Binding("e", "export", "Export"),
        Binding("f5", "run", "Run sweep", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="sweep-screen")
        self.result: Any = None
        self.rows: list[dict[str, Any]] = []
        self._config: SweepConfig | None = None
        self._yframe: list[float] | None = None
        self._variable = "alpha"
        self._t_scaled = False

    def compose(self) -> ComposeResult:
        yield NavBar("sweep")
        yield TabStrip(TABS, "setup", id="sweep-tabs")
        with Horizontal(id="sweep-body"):
            with Vertical(id="sweep-setup"):
                with VerticalScroll(id="sweep-scroll"):
                    yield ParameterForm(FIELDS, {"family": "twolayer", "T": 10.0, "m": 256, "n": 32, "d": 4},
                                        id="sform")
                    yield Static("sweep", classes="section-title")
                    yield ParameterForm(SWEEP_FIELDS, id="wform", family_aware=False)
                with Horizontal(id="sweep-buttons"):
                    yield Button("Run sweep", id="sweep-run", variant="primary", compact=True)
                    yield Button("Cancel", id="sweep-cancel", compact=True, disabled=True)
            with Vertical(id="sweep-right"):
                yield PlotPanel("gap(T) vs alpha", x_label="alpha", hires=self.lab.hires, id="sweep-plot",
                                empty_text="press r to run the sweep · p for presets")
                yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="sweep-fit", markup=False)
        yield RunStatus(id="sweep-status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#sweep-setup").border_title = "base model"
        table = self.query_one(DataTable)
        table.border_title = "runs"
        self._setup_table("alpha")
        self._layout(self.size.width, self.size.height)
        self._update_locks()
        self._idle_plot()
        self.query_one("#sweep-fit", Static).update(Text(
            "Sweep alpha (or the width m with alpha = sqrt m) and fit gap(T) ~ x^slope. "
            "Theorem 1.2: slope -1 in alpha, -1/2 in m; 0 when T = C alpha.", style="dim"))
        self.query_one(RunStatus).message("ready")
        self.mark_clean()

    # ---- layout --------------------------------------------------------------------


    def set_hires(self, hires: Any) -> None:
        self.query_one("#sweep-plot", PlotPanel).set_hires(hires)

    def refresh_colours(self) -> None:
        self.query_one("#sweep-plot", PlotPanel).refresh_colours()

    # ---- forms ---------------------------------------------------------------------

    @property
    def base_form(self) -> ParameterForm:
        return self.query_one("#sform", ParameterForm)

    @property
    def sweep_form(self) -> ParameterForm:
        return self.query_one("#wform", ParameterForm)

    def _update_locks(self) -> None:
        raw = self.sweep_form.raw_values()
        locked = {}
        if raw.get("variable") == "width":
            locked["alpha"] = "swept: alpha = sqrt(m)"
            locked["m"] = "swept (width)"
        else:
            locked["alpha"] = "swept"
        if raw.get("t_mode") == "scaled":
            locked["T"] = "T = C alpha"
        self.base_form.lock_fields(locked)
        self.base_form.validate_all()

    @on(ParameterForm.Changed, "#wform")
    def _sweep_changed(self, event: ParameterForm.Changed) -> None:
        if event.key in ("variable", "t_mode"):
            self._update_locks()
        if event.key in ("variable", "start", "stop") and not self.running and self.result is None:
            self._idle_plot()

    @on(ParameterForm.Submitted)
    def _submitted(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#sweep-run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#sweep-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def set_forms(self, base: dict[str, Any], sweep: dict[str, Any]) -> None:
        """Fill both forms (a preset, or a sweep reopened from the history)."""
        self.base_form.set_values(dict(base))
        self.sweep_form.set_values(dict(sweep))
        self._update_locks()

    def load_preset(self, preset: Any, *, run: bool = True) -> None:
        if self.refuse_if_running():
            return
        self.set_forms(preset.form, preset.sweep)
        self._show_preset(preset)
        if run:
            self.action_run()

    def _idle_plot(self) -> None:
        raw = self.sweep_form.raw_values()
        try:
            lo, hi = float(raw.get("start") or "nan"), float(raw.get("stop") or "nan")
            if not (lo > 0 and hi >= lo):
                raise ValueError
        except (TypeError, ValueError):
            lo, hi = 10.0, 1000.0
        variable = str(raw.get("variable"))
        panel = self.query_one("#sweep-plot", PlotPanel)
        panel.x_label = "m" if variable == "width" else "alpha"
        panel.border_title = f"gap(T) vs {'width m (alpha = sqrt m)' if variable == 'width' else 'alpha'}"
        panel.border_subtitle = f"x: {panel.x_label} (log)"
        panel.set_frame(*self._xframe(lo, hi), -4.0, 0.0)
        panel.clear()

    @staticmethod
    def _xframe(lo: float, hi: float) -> tuple[float, float]:
        a, b = math.log10(lo), math.log10(hi)
        pad = max(0.1, 0.05 * (b - a))
        return a - pad, b + pad

    # ---- actions ---------------------------------------------------------------------

    def _forms(self) -> list[ParameterForm]:
        return [self.base_form, self.sweep_form]

    def can_export(self) -> bool:
        return self.result is not None

    def _refuse(self, errors: dict[str, str], title: str = "Cannot run the sweep") -> None:
        errors = self._on_fields(errors)
        first = next(iter(errors.values()))
        base_keys = {f.key for f in FIELDS}
        self.base_form.show_errors({k: v for k, v in errors.items() if k in base_keys})
        self.sweep_form.show_errors({k: v for k, v in errors.items() if k not in base_keys and not k.startswith("_")})
        self.query_one(RunStatus).message(f"{title}: {first}", error=True)
        self.notify(first, title=title, severity="error")
        if self._narrow:
            self.action_show_tab("setup")
        self._focus_after_refusal(errors, [self.base_form, self.sweep_form])

    def action_run(self) -> None:
        if self.refuse_if_running():
            return
        self._remember_focus()
        errors = {**self.base_form.validate_all(), **self.sweep_form.validate_all()}
        if errors:
            self._refuse(errors)
            return
        base_raw = self.base_form.raw_values()
        try:
            base = validate_form(base_raw)
            scfg = validate_sweep(base, self.sweep_form.raw_values())
            spec = scfg.to_core()
        except FormError as exc:
            self._refuse(exc.errors)
            return
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
        self._config = scfg
        self.result = None
        self.rows = []
        self._variable = scfg.variable
        self._t_scaled = scfg.t_mode == "scaled"
        self._yframe = None
        self._setup_table(scfg.variable)
        panel = self.query_one("#sweep-plot", PlotPanel)
        xlo, xhi = self._xframe(min(scfg.values), max(scfg.values))
        panel.x_label = scfg.x_label
        panel.border_title = f"gap(T) vs {'width m (alpha = sqrt m)' if scfg.variable == 'width' else 'alpha'}"
        panel.border_subtitle = f"x: {scfg.x_label} (log)"
        panel.set_frame(xlo, xhi, -4.0, 0.0)
        panel.clear("running…")
        self._set_running(True)
        status = self.query_one(RunStatus)
        status.progress(0, len(spec))
        status.message(f"sweep {scfg.describe()} — {len(spec)} runs")
        self.query_one("#sweep-fit", Static).update(Text(f"{base.describe()}\n{scfg.describe()}", style="dim"))
        if self._narrow and self._tab == "setup":
            self.action_show_tab("plot")
        self._sweep(scfg, spec, self._token, self._cancel)

    def action_export(self) -> None:
        if self.result is None:
            self.notify("nothing to export yet: run a sweep first", severity="warning")
            return
        from .dialogs import ExportScreen

        name = f"ntk-sweep-{self.result.spec.family}-{self.result.variable}"
        self.app.push_screen(ExportScreen("sweep", self.result, name=name))

    # ---- the worker ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sweep", exit_on_error=False)
    def _sweep(self, scfg: SweepConfig, spec: Any, token: int, cancel: threading.Event) -> None:
        from ntk_tui.sweep import run_sweep

        store, store_error = None, None
        if self.lab.save_history:
            try:
                store = self.lab.get_store()
            except Exception as exc:
                store_error = str(exc)
        try:
            result = run_sweep(
                spec,
                progress=lambda done, total: self._post(self._progress, token, done, total),
                cancel=cancel,
                store=store,
                keep_runs=True,
                on_run=lambda row, run: self._post(self._row, token, dict(row)),
                threads=max(1, min(2, __import__("os").cpu_count() or 1)),
            )
        except Exception as exc:
            self._post(self._failed, token, f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError)
                       else str(exc))
            return
        self._post(self._finished, token, result, store_error)

    # ---- UI side ---------------------------------------------------------------------------

    def _progress(self, token: int, done: int, total: int) -> None:
        if token != self._token:
            return
        status = self.query_one(RunStatus)
        status.progress(done, total)
        status.message(f"sweep: {done}/{total} runs done — c to cancel")

    def _row(self, token: int, row: dict[str, Any]) -> None:
        if token != self._token:
            return
        self.rows.append(row)
        self.rows.sort(key=lambda r: r.get("index", 0))
        self._add_table_row(row)
        self._draw()

    def _failed(self, token: int, message: str) -> None:
        if token != self._token:
            return
        self._set_running(False)
        self.query_one(RunStatus).message(f"sweep failed: {message}", error=True)
        self.notify(message, title="Sweep failed", severity="error", timeout=8)

    def _finished(self, token: int, result: Any, store_error: str | None) -> None:
        if token != self._token:
            return
        self._set_running(False)
        self.show_result(result, live=True)
        status = self.query_one(RunStatus)
        n = result.n_done
        saved = f" · saved #{result.record_id}" if result.record_id is not None else ""
        if result.status == "done":
            status.message(f"sweep done: {result.n_ok}/{result.n_total} runs ok{saved}"
                           + (f"  {self.lab.elapsed_text(result.elapsed_s)}" if self.lab.elapsed_text(result.elapsed_s) else ""))
        elif result.status == "cancelled":
            status.message(f"sweep cancelled: {n}/{result.n_total} runs finished and kept{saved}")
            self.notify(f"{n} finished runs are kept", title="Sweep cancelled")
        else:
            status.message(f"sweep {result.status}: {n}/{result.n_total} runs{saved}", error=True)
        status.progress(n, result.n_total)
        if store_error:
            self.notify(f"the sweep was not saved to the history: {store_error}", title="History",
                        severity="warning", timeout=6)
        label = f"sweep {self._config.describe()}" if self._config is not None else "sweep"
        self.lab.add_session(SessionItem("sweep", result, label, result.status, store_id=result.record_id,
                                         config=self._config))

    # ---- table and plot ------------------------------------------------------------------------

    def _setup_table(self, variable: str) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        xname = "m" if variable in ("m", "width") else "alpha"
        cols = [("#", "idx"), (xname, "x")]
        if xname == "m":
            cols.append(("alpha", "alpha"))
        cols += [("seed", "seed"), ("T", "T"), ("gap(T)", "gap"), ("Thm 1.2", "thm12"), ("ratio", "ratio"),
                 ("kappa", "kappa"), ("status", "status")]
        # Fixed widths (fmt gives 6 characters for the non-negative values shown here,
        # e.g. 5.4e-3): columns do not jump while rows arrive.
        widths = {"idx": 3, "seed": 4, "ratio": 6, "status": 8}
        for label, key in cols:
            table.add_column(label, key=key, width=max(len(label), widths.get(key, 6)))
        self._table_cols = [k for _, k in cols]

    def _add_table_row(self, row: dict[str, Any]) -> None:
        table = self.query_one(DataTable)
        thm = next((k for k in row if k.startswith("bound_") and not k.endswith("_valid")
                    and getattr(bound_style(k[6:]), "label", None) == "Thm 1.2"), None)
        ratio = row.get(f"ratio_{thm[6:]}") if thm else None
        status = str(row.get("status", ""))
        values = {
            "idx": str(row.get("index", "")),
            "x": fmt(row.get("m") if self._variable == "width" and row.get("m") is not None else row.get("alpha")),
            "alpha": fmt(row.get("alpha")),
            "seed": "" if row.get("seed") is None else str(row.get("seed")),
            "T": fmt(row.get("T")),
            "gap": fmt(row.get("gap_T")) if row.get("gap_T") is not None else "—",
            "thm12": fmt(row.get(thm)) if thm and row.get(thm) is not None else "—",
            "ratio": (fmt(ratio) + "x") if isinstance(ratio, (int, float)) and math.isfinite(ratio) else "—",
            "kappa": fmt(row.get("kappa")) if row.get("kappa") is not None else "—",
            "status": Text(status, style="red") if status not in ("ok", "") else status,
        }
        key = str(row.get("index"))
        try:
            table.remove_row(key)
        except Exception:
            pass
        table.add_row(*[values[c] for c in self._table_cols], key=key)

    def _draw(self, fits: Any = None) -> None:
        panel = self.query_one("#sweep-plot", PlotPanel)
        curves, fit = sweep_curves(self.rows, self._variable, self._t_scaled)
        if not curves:
            return
        measured = [c.y for c in curves if c.role in ("measure", "fit", "ref")]
        main_bound = [c.y for c in curves if c.label.startswith("Thm 1.2")]
        rng = decade_range(measured + main_bound, max_span=10.0)
        if rng is not None:
            lo, hi = rng
            if self._yframe is None:
                self._yframe = [lo, hi]
            else:
                self._yframe = [min(self._yframe[0], lo), max(self._yframe[1], hi)]
            xlo, xhi = panel.plot.frame[0], panel.plot.frame[1]
            panel.set_frame(xlo, xhi, self._yframe[0], self._yframe[1])
        panel.draw(curves)
        self._show_fit(fit, fits)

    def _show_fit(self, fit: Any, fits: Any = None) -> None:
        slope, theory = theory_slope(self._variable, self._t_scaled)
        text = Text()
        xname = "m" if self._variable in ("m", "width") else "alpha"
        good = _good(self.rows)
        if fit is not None:
            lo, hi = fit.slope_ci95
            ci = f" (95% CI [{fmt(lo, 3)}, {fmt(hi, 3)}])" if math.isfinite(lo) else ""
            text.append(f"fitted gap(T) ~ {xname}^slope: ", style="bold")
            text.append(f"slope {fmt(fit.slope, 3)}{ci}, R² {fit.r2:.3f}, n {fit.n}")
            text.append(f"   theory: {theory}", style="dim")
            agree = (math.isfinite(lo) and lo <= slope <= hi) or abs(fit.slope - slope) < 0.1
            # an interval wider than ±0.25 around the fit cannot tell slopes such as 0, -1/2 and -1 apart
            vague = not math.isfinite(lo) or hi - lo > 0.5
            text.append("\nverdict: ", style="bold")
            if agree and vague:
                text.append(f"inconclusive: the slope is too uncertain to compare with Theorem 1.2's {_slope(slope)} "
                            f"(more values or seeds narrow the interval)")
            elif agree:
                text.append(f"the measured slope agrees with Theorem 1.2's {_slope(slope)}: the bound's scaling is tight")
            elif fit.slope < slope:
                text.append(f"consistent with Theorem 1.2 (an upper bound, slope {_slope(slope)}): "
                            f"the gap falls faster than the bound, which is loose in this regime")
            else:
                text.append(f"the gap falls more slowly than Theorem 1.2's slope {_slope(slope)}",
                            style="bold")
                text.append(" — outside the bound's validity (lazy regime), or check the bounds at T", style="dim")
        else:
            text.append(f"{len(good)} run(s) with a positive gap(T); a fit needs two distinct {xname} values",
                        style="dim")
        self.query_one("#sweep-fit", Static).update(text)

    def show_result(self, result: Any, *, live: bool = False) -> None:
        """Show a sweep result (just finished, or reopened from the history)."""
        self.result = result
        variable = result.variable
        self._variable = "width" if variable == "m" else "alpha"
        self._t_scaled = getattr(result.spec, "T_scale", None) is not None
        self.rows = sorted((dict(r) for r in result.rows), key=lambda r: r.get("index", 0))
        self._setup_table(self._variable)
        for r in self.rows:
            self._add_table_row(r)
        xkey = "m" if self._variable == "width" else "alpha"
        xs = [float(r[xkey]) for r in self.rows if r.get(xkey) is not None]
        panel = self.query_one("#sweep-plot", PlotPanel)
        xname = "m" if self._variable == "width" else "alpha"
        panel.x_label = xname
        panel.border_title = f"gap(T) vs {'width m (alpha = sqrt m)' if xname == 'm' else 'alpha'}"
        panel.border_subtitle = f"x: {xname} (log)"
        if xs:
            xlo, xhi = self._xframe(min(xs), max(xs))
            panel.set_frame(xlo, xhi, *(self._yframe or [-4.0, 0.0]))
        if not live:
            self._yframe = None
        self._draw()
        if not live:
            n = result.n_done
            self.query_one(RunStatus).message(f"reopened sweep #{result.record_id}: {n}/{result.n_total} runs, "
                                              f"status {result.status}")
            self.query_one(RunStatus).progress(n, result.n_total)
        self.refresh_bindings()
        if self._narrow and self._tab == "setup":
            self.action_show_tab("plot")
