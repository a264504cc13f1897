"""The History screen: browse saved runs and sweeps, reopen, compare, delete.

Records come from :class:`ntk_tui.store.Store`; runs of this session that
could not be saved are listed too (marked ``session``). Two runs can be
compared on one plot (their gaps and Theorem 1.2 bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from ._base import NARROW_HEIGHT, NARROW_WIDTH, TabbedScreen
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Footer, Static

from ..engine import summarize
from ..session import SessionItem
from ..widgets.nav import NavBar, TabStrip
from ..widgets.plots import Curve, PlotPanel, VMarker, decade_range
from ..widgets.runplots import bound_style
from ..widgets.summary import RunStatus, fmt, short_label

__all__ = ["HistoryScreen", "form_values_from_config", "sweep_form_values"]

TABS = (("list", "List"), ("compare", "Compare"))
SIDE_BY_SIDE_WIDTH = 150


@dataclass
class Entry:
    key: str  # row key: "db-12" or "s-3"
    kind: str  # "run" | "sweep"
    store_id: int | None
    session: SessionItem | None
    created: str
    name: str
    family: str
    alpha: Any
    T: Any
    gap: Any
    status: str
    config: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"#{self.store_id}" if self.store_id is not None else f"s{self.key[2:]}"


def form_values_from_config(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """Run-form values from a stored run configuration (``ntk_tui.config.RunConfig.to_dict()``)."""
    try:
        if cfg.get("kind", "run") != "run":
            return None
        run = cfg.get("run") or {}
        values: dict[str, Any] = {"family": run["family"], "alpha": run["alpha"], "T": run["T"]}
        values.update({k: v for k, v in (cfg.get("model") or {}).items() if k != "T" and v is not None})
        data = cfg.get("data")
        if data:
            if data.get("source") == "sphere":
                values.update(n=data.get("n"), d=data.get("d"), data=data.get("target"))
                if "seed" not in values:
                    values["seed"] = data.get("seed")
            elif data.get("source") == "file":
                values.update(data="file", path=data.get("path"))
            else:
                return None  # inline data (e.g. a run of a sweep) cannot be typed in the form
        integ = cfg.get("integrator") or {}
        for k in ("rtol", "atol", "method"):
            if integ.get(k) is not None:
                values[k] = integ[k]
        times = integ.get("times")
        if isinstance(times, int):
            values["points"] = times
        elif isinstance(times, list):
            values["points"] = len(times)
        return values
    except Exception:
        return None


def sweep_form_values(spec: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(base form, sweep form) values from a stored sweep (``ntk_tui.config.SweepSpec``),
    or None when the form cannot express it (inline data, irregular grids are shown as
    their range and count)."""
    try:
        xs = [float(x) for x in (spec.widths or spec.alphas or [])]
        if not xs:
            return None
        d = spec.to_dict()
        T = spec.Ts[0] if spec.Ts else 10.0
        base = form_values_from_config({**d, "kind": "run", "run": {"family": spec.family, "alpha": xs[0], "T": T}})
        if base is None:
            return None
        seeds = list(spec.seeds or [])
        if seeds:
            base["seed"] = seeds[0]
        sweep: dict[str, Any] = {"variable": "width" if spec.widths else "alpha", "start": min(xs), "stop": max(xs),
                                 "count": len(xs), "seeds": max(1, len(seeds)),
                                 "t_mode": "scaled" if spec.T_scale is not None else "fixed"}
        if spec.T_scale is not None:
            sweep["C"] = spec.T_scale
        return base, sweep
    except Exception:
        return None


class HistoryScreen(TabbedScreen):
    """Saved runs and sweeps."""

    TABS = TABS
    TAB_STRIP = "history-tabs"

    AUTO_FOCUS = "#history-table"

    BINDINGS = [
        Binding("o", "open", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("m", "mark", "Mark", show=False),
        Binding("c", "compare", "Compare"),
        Binding("d", "delete", "Delete"),
        Binding("g", "app.goto('run')", "Run screen"),
        Binding("s", "app.goto('sweep')", "Sweep", show=False),
        Binding("p", "app.presets", "Presets", show=False),
        Binding("f5", "reload", "Reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="history-screen")
        self.entries: dict[str, Entry] = {}
        self.marked: list[str] = []
        self._error: str | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("history")
        yield TabStrip(TABS, "list", id="history-tabs")
        with Container(id="history-body"):
            with Vertical(id="history-left"):
                yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="history-details", markup=False)
            with Vertical(id="history-right"):
                yield PlotPanel("compare: gap of two runs", hires=self.lab.hires, id="history-plot",
                                empty_text="mark two runs (space) and press c to compare them")
                yield Static("", id="compare-info", markup=False)
        yield RunStatus(id="history-status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("", key="mark", width=1)
        for label, key in (("id", "id"), ("kind", "kind"), ("created", "created"), ("name", "name"),
                           ("family", "family"), ("alpha", "alpha"), ("T", "T"), ("gap(T)", "gap"),
                           ("status", "status")):
            table.add_column(label, key=key)
        self.query_one("#history-left").border_title = "saved runs and sweeps"
        self._layout(self.size.width, self.size.height)
        self.query_one("#history-plot", PlotPanel).set_frame(-3, 2, -6, 0)
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def session_changed(self) -> None:
        if self.is_mounted:
            self.reload()

    # ---- layout -----------------------------------------------------------------

    def _layout(self, width: int, height: int) -> None:
        # list and plot side by side only when the table fits next to a plot
        narrow = width < NARROW_WIDTH or height < NARROW_HEIGHT
        self.set_class(not narrow and width >= SIDE_BY_SIDE_WIDTH, "-side")
        super()._layout(width, height)

    def set_hires(self, hires: Any) -> None:
        self.query_one("#history-plot", PlotPanel).set_hires(hires)

    def refresh_colours(self) -> None:
        self.query_one("#history-plot", PlotPanel).refresh_colours()

    # ---- data ---------------------------------------------------------------------

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        entries: dict[str, Entry] = {}
        status = self.query_one(RunStatus)
        self._error = None
        stored_ids: set[int] = set()
        store = None
        try:
            store = self.lab.get_store()
            records = store.list()
        except Exception as exc:
            records = []
            self._error = str(exc)
        for rec in records:
            s = rec.summary or {}
            gap = s.get("gap_T")
            if rec.kind == "sweep":
                gap = None
            entries[f"db-{rec.id}"] = Entry(
                key=f"db-{rec.id}", kind=rec.kind, store_id=rec.id, session=None,
                created="—" if self.lab.frozen_clock else _short_time(rec.created),
                name=rec.name or (f"{rec.n_runs} runs" if rec.kind == "sweep" else ""), family=rec.family or "",
                alpha=s.get("alpha"), T=s.get("T"), gap=gap, status=rec.status, config=rec.config,
            )
            stored_ids.add(rec.id)
        for i, item in enumerate(self.lab.session):
            if item.store_id is not None and item.store_id in stored_ids:
                continue
            obj = item.obj
            if item.kind == "run":
                gap = _last(getattr(obj, "gap", None))
                alpha, T, fam = getattr(obj, "alpha", None), getattr(obj, "T", None), getattr(obj, "family", "")
            else:
                gap, alpha, T, fam = None, None, None, getattr(getattr(obj, "spec", None), "family", "")
            entries[f"s-{i}"] = Entry(
                key=f"s-{i}", kind=item.kind, store_id=None, session=item, created="this session",
                name="(not saved)", family=fam, alpha=alpha, T=T, gap=gap, status=item.status,
            )
        self.entries = entries
        self.marked = [k for k in self.marked if k in entries]
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for e in entries.values():
            table.add_row(*self._cells(e), key=e.key)
        if entries:
            table.move_cursor(row=min(max(cursor, 0), len(entries) - 1))
        n_db = len(records)
        n_s = len(entries) - n_db
        if self._error:
            status.message(f"{self._error} — showing this session's runs only ({n_s})", error=True)
        else:
            where = getattr(store, "path", "")
            status.message(f"{n_db} saved record(s) in {where}" + (f", {n_s} unsaved from this session" if n_s else ""))
        self._show_details()

    def _cells(self, e: Entry) -> list[Any]:
        mark = "●" if e.key in self.marked else ""
        status = Text(e.status, style="red") if e.status not in ("ok", "done") else e.status
        return [mark, e.label, e.kind, e.created, e.name, e.family, _f(e.alpha), _f(e.T), _f(e.gap), status]

    def _current(self) -> Entry | None:
        table = self.query_one(DataTable)
        if not self.entries or table.cursor_row < 0:
            return None
        try:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except Exception:
            return None
        return self.entries.get(str(key))

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_details()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    def _show_details(self) -> None:
        e = self._current()
        box = self.query_one("#history-details", Static)
        if e is None:
            box.update(Text("no saved runs yet: finished runs and sweeps appear here", style="dim"))
            return
        t = Text()
        t.append(f"{e.label} {e.kind}", style="bold")
        t.append(f"  {e.family}  status {e.status}  {e.created}\n")
        if e.kind == "run":
            t.append(f"alpha {_f(e.alpha)}  T {_f(e.T)}  gap(T) {_f(e.gap)}\n")
        cfg = e.config or {}
        model = cfg.get("model") or {}
        if model:
            t.append("  ".join(f"{k} {v}" for k, v in model.items() if not isinstance(v, (list, dict))), style="dim")
        t.append("\no/Enter open · space mark · c compare two runs · d delete", style="dim")
        box.update(t)

    # ---- actions ----------------------------------------------------------------------

    def _load(self, e: Entry) -> Any:
        if e.session is not None:
            return e.session.obj
        store = self.lab.get_store()
        return store.load(e.store_id)

    def action_open(self) -> None:
        e = self._current()
        if e is None:
            return
        try:
            obj = self._load(e)
        except Exception as exc:
            self.notify(f"cannot open {e.label}: {exc}", severity="error")
            return
        self._reopen(e, obj)

    @work(exclusive=True, group="history-open")
    async def _reopen(self, e: Entry, obj: Any) -> None:
        if e.kind == "run":
            from .run import RunScreen

            await self.app.switch_mode("run")
            screen = self.app.screen
            values = form_values_from_config(e.config) if e.config else None
            if e.session is not None and e.session.config is not None:
                values = e.session.config.to_form()
            if isinstance(screen, RunScreen):
                if values:
                    screen.form.set_values(values)
                    screen.mark_clean()
                screen.show_run(obj, title=f"reopened {e.label}")
        else:
            from .sweep import SweepScreen

            await self.app.switch_mode("sweep")
            screen = self.app.screen
            if isinstance(screen, SweepScreen):
                forms = sweep_form_values(obj.spec)
                if forms is not None:
                    screen.set_forms(*forms)
                    screen.mark_clean()
                screen.show_result(obj)

    def action_mark(self) -> None:
        e = self._current()
        if e is None:
            return
        if e.key in self.marked:
            self.marked.remove(e.key)
        else:
            if e.kind != "run":
                self.notify("only runs can be compared", severity="warning")
                return
            self.marked.append(e.key)
            self.marked = self.marked[-2:]
        table = self.query_one(DataTable)
        for key, entry in self.entries.items():
            table.update_cell(key, "mark", "●" if key in self.marked else "")

    def action_compare(self) -> None:
        keys = list(self.marked)
        cur = self._current()
        if len(keys) < 2 and cur is not None and cur.kind == "run" and cur.key not in keys:
            keys.append(cur.key)
        if len(keys) < 2:
            self.notify("mark two runs with space, then press c", severity="warning")
            return
        runs = []
        for k in keys[-2:]:
            e = self.entries[k]
            try:
                runs.append((e, self._load(e)))
            except Exception as exc:
                self.notify(f"cannot load {e.label}: {exc}", severity="error")
                return
        self.compare(runs)

    def compare(self, runs: list[tuple[Entry, Any]]) -> None:
        """Both runs' gaps and Theorem 1.2 bounds on one log-log plot."""
        curves: list[Curve] = []
        markers: list[VMarker] = []
        roles = (("measure", "upper"), ("measure2", "upper2"))
        t_all = []
        lines = []
        for (e, run), (mrole, brole) in zip(runs, roles):
            t = np.asarray(run.times, dtype=float)
            t_all.append(t)
            curves.append(Curve(f"{e.label} gap", t, np.asarray(run.gap, dtype=float), role=mrole))
            try:
                for name, b in run.bounds().items():
                    st = bound_style(name)
                    if st is not None and st.label == "Thm 1.2":
                        value = np.asarray(getattr(b, "value", b[0]), dtype=float)
                        valid = np.asarray(getattr(b, "valid", b[1]), dtype=bool)
                        curves.append(Curve(f"{e.label} Thm 1.2", t, np.where(valid, value, np.nan), role=brole,
                                            pattern="dashed" if mrole == "measure" else "dotted"))
            except Exception:
                pass
            s = summarize(run)
            if s is not None:
                ratio = next((b.ratio for b in s.bounds.values() if short_label(b.label) == "Thm 1.2"), math.nan)
                lines.append(f"{e.label}: {s.family} alpha {fmt(s.alpha)} T {fmt(s.T)} R0 {fmt(s.R0)} "
                             f"kappa {fmt(s.kappa)} gap(T) {fmt(s.gap_T)} Thm 1.2 {fmt(ratio)}x loose")
        tt = np.concatenate(t_all)
        tt = tt[np.isfinite(tt) & (tt > 0)]
        panel = self.query_one("#history-plot", PlotPanel)
        rng = decade_range([c.y for c in curves], max_span=12.0)
        if tt.size and rng is not None:
            panel.set_frame(math.log10(tt.min()), math.log10(tt.max()), *rng)
        panel.border_title = f"compare {runs[0][0].label} and {runs[1][0].label}: gap vs t"
        panel.draw(curves, markers)
        info = Text()
        for i, line in enumerate(lines):
            if i:
                info.append("\n")
            info.append(line)
        self.query_one("#compare-info", Static).update(info)
        self.query_one(RunStatus).message(f"comparing {runs[0][0].label} and {runs[1][0].label}")
        if self._narrow:
            self.action_show_tab("compare")

    def action_delete(self) -> None:
        e = self._current()
        if e is None:
            return
        from .dialogs import ConfirmScreen

        what = f"{e.kind} {e.label}" + (" and all its runs" if e.kind == "sweep" else "")

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                if e.session is not None:
                    self.lab.session.remove(e.session)
                else:
                    self.lab.get_store().delete(e.store_id)
                    # the session's copy of a deleted record goes too
                    self.lab.session[:] = [s for s in self.lab.session if s.store_id != e.store_id]
            except Exception as exc:
                self.notify(f"cannot delete {e.label}: {exc}", severity="error")
                return
            self.notify(f"deleted {what}")
            if e.key in self.marked:
                self.marked.remove(e.key)
            self.reload()

        self.app.push_screen(ConfirmScreen(f"Delete {what}? This cannot be undone."), done)


def _f(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, (int, float)):
        return fmt(x)
    return str(x)


def _last(values: Any) -> float | None:
    if values is None:
        return None
    a = np.asarray(values, dtype=float).ravel()
    a = a[np.isfinite(a)]
    return float(a[-1]) if a.size else None


def _short_time(iso: str) -> str:
    """``2024-06-07T12:34:56+00:00`` -> ``06-07 12:34`` (local time)."""
    try:
        import datetime as dt

        return dt.datetime.fromisoformat(iso).astimezone().strftime("%m-%d %H:%M")
    except Exception:
        return iso
