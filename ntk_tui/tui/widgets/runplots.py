"""The three live plots of a run: gap vs bounds, weight change, kernel drift.

Everything drawn comes from the engine's ``Run`` (measurements and
``run.bounds()``) and from :mod:`ntk_tui.bounds` (where a bound stops being
valid); this module decides only what goes on which axes and how.

Axes are fixed once known: x spans the run's sample times from the start; the
top of the gap axis is the largest gap possible, ``sqrt(8 R0)`` (the loss never
increases, so ``||r - rbar|| <= ||r|| + ||rbar|| <= 2 sqrt(2 R0)``), the top of
the weight axis is Prop 3.1's bound at T; bottoms are set by the first
measurements and only ever extend.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.containers import Container
from textual_plot import HiResMode

from .plots import BRAILLE_MODE, Curve, PlotPanel, VMarker, decade_range

__all__ = ["RunPlots", "bound_style", "run_curves"]

MAX_SPAN = 12.0


@dataclass(frozen=True)
class BoundStyle:
    panel: str  # "gap" | "weights"
    label: str
    role: str
    pattern: str
    kind: str  # "upper" | "lower"


def bound_style(name: str) -> BoundStyle | None:
    """How the bound called ``name`` (a key of ``run.bounds()``) is drawn, or None."""
    key = re.sub(r"[^a-z0-9]+", "_", name.lower())
    if re.search(r"(theorem|thm)\w*1_?2", key):
        return BoundStyle("gap", "Thm 1.2", "upper", "dashed", "upper")
    if re.search(r"prop\w*1_?1|chizat", key):
        return BoundStyle("gap", "Prop 1.1", "upper2", "dotted", "upper")
    if re.search(r"(theorem|thm)\w*1_?3|lower|converse", key):
        return BoundStyle("gap", "Thm 1.3 lower", "lower", "dashdot", "lower")
    if re.search(r"prop\w*3_?1|weight", key):
        return BoundStyle("weights", "Prop 3.1", "upper", "dashed", "upper")
    return None


def _arr(run: Any, name: str) -> np.ndarray:
    v = getattr(run, name, None)
    if v is None:
        return np.full(len(np.atleast_1d(run.times)), np.nan)
    return np.asarray(v, dtype=float)


def _validity_end(name: str, run: Any, times: np.ndarray, valid: np.ndarray) -> float | None:
    """The time where bound ``name`` stops being valid (None if it never does on the range)."""
    try:
        import ntk_tui.bounds as B

        key = re.sub(r"[^a-z0-9]+", "_", name.lower())
        rho = float(getattr(run, "rho", math.inf))
        if re.search(r"(theorem|thm)\w*1_?2", key):
            end = float(B.theorem_1_2_valid_until(run.alpha, run.R0, rho))
            return end if end < times[-1] * (1 - 1e-9) else None
        if re.search(r"prop\w*1_?1", key):
            end = float(B.prop_1_1_valid_until(run.alpha, run.R0, float(getattr(run, "lip_h", math.inf)), rho))
            return end if end < times[-1] * (1 - 1e-9) else None
    except Exception:
        pass
    if valid.size and not valid.all():
        bad = np.flatnonzero(~valid)
        i = int(bad[0])
        return float(times[i - 1]) if i > 0 else float(times[0])
    return None


def run_curves(run: Any, *, final: bool = True) -> dict[str, tuple[list[Curve], list[VMarker]]]:
    """Curves and markers of each panel (``gap``, ``weights``, ``kernel``) for ``run``."""
    t = np.asarray(run.times, dtype=float)
    gap = _arr(run, "gap")
    k = len(t)
    out: dict[str, tuple[list[Curve], list[VMarker]]] = {"gap": ([], []), "weights": ([], []), "kernel": ([], [])}
    note = ""
    if np.isfinite(gap).any() and np.nanmax(np.abs(gap)) == 0:
        note = "= 0 (exact)"
    gap_curve = Curve("gap", t, gap, role="measure", note=note)
    out["gap"][0].append(gap_curve)
    wc, wcl = _arr(run, "weight_change"), _arr(run, "weight_change_lin")
    out["weights"][0].append(Curve("‖w−w0‖", t, wc, role="measure"))
    out["weights"][0].append(Curve("‖wbar−w0‖", t, wcl, role="measure2"))
    kd, jd = _arr(run, "kernel_drift"), _arr(run, "jacobian_drift")
    knote = "= 0" if np.isfinite(kd).any() and np.nanmax(np.abs(kd)) == 0 else ""
    out["kernel"][0].append(Curve("‖K_t−K0‖op", t, kd, role="measure", note=knote))
    if np.isfinite(jd).any():
        out["kernel"][0].append(Curve("‖J_t−J0‖op", t, jd, role="measure2"))

    try:
        bounds = run.bounds() if callable(getattr(run, "bounds", None)) else {}
    except Exception:
        bounds = {}
    for name, b in bounds.items():
        style = bound_style(name)
        if style is None:
            continue
        value = np.asarray(getattr(b, "value", b[0]), dtype=float)[:k]
        valid = np.asarray(getattr(b, "valid", b[1]), dtype=bool)[:k]
        shown = np.where(valid, value, np.nan)
        measured = wc if style.panel == "weights" else gap
        violated = False
        with np.errstate(invalid="ignore"):
            if style.kind == "upper":
                m = valid & np.isfinite(measured) & np.isfinite(value)
                violated = bool(np.any(measured[m] - value[m] > 1e-9 * np.maximum(np.abs(measured[m]), np.abs(value[m]))))
        # Theorem 1.3 is a statement about gap(T) on its own model only: never coloured from the curve
        curves, markers = out[style.panel]
        curve_note = ""
        if not valid.any():
            curve_note = "(not valid here)"
        curves.append(Curve(style.label, t, shown, role=style.role, pattern=style.pattern,
                            violated=violated, note=curve_note))
        if valid.any():
            end = _validity_end(name, run, t, valid)
            if end is not None and end >= t[0]:
                markers.append(VMarker(end, f"{style.label} valid to t={_fmt(end)}", role=style.role))
    return out


def _fmt(x: float) -> str:
    try:
        from ntk_tui.analysis import format_si

        return format_si(x)
    except Exception:  # pragma: no cover
        return f"{x:.2g}"


class RunPlots(Container):
    """Three :class:`PlotPanel` s with fixed log axes for one run at a time."""

    PANELS = (
        ("gap", "gap ‖αh(w) − αhbar(wbar)‖ vs the bounds"),
        ("weights", "weight change vs Prop 3.1"),
        ("kernel", "kernel drift ‖K_t−K0‖"),
    )

    def __init__(self, *, hires: HiResMode = BRAILLE_MODE, id: str | None = None) -> None:
        super().__init__(id=id)
        self._hires = hires
        self._frames: dict[str, list[float] | None] = {}
        self._tops: dict[str, float | None] = {}
        self._x: tuple[float, float] = (-3.0, 2.0)

    def compose(self) -> ComposeResult:
        for key, title in self.PANELS:
            yield PlotPanel(title, hires=self._hires, id=f"p-{key}",
                            empty_text="press r to run · p for presets · ? for help" if key == "gap" else "")

    def panel(self, key: str) -> PlotPanel:
        return self.query_one(f"#p-{key}", PlotPanel)

    def set_hires(self, hires: HiResMode) -> None:
        self._hires = hires
        for key, _ in self.PANELS:
            self.panel(key).set_hires(hires)

    def idle(self, T: float | None = None) -> None:
        """Empty axes for a run to come (x from 1e-5 T to T)."""
        T = T if T and T > 0 and math.isfinite(T) else 100.0
        self._x = (math.log10(T) - 5.0, math.log10(T))
        self._frames = {}
        for key, _ in self.PANELS:
            p = self.panel(key)
            p.set_frame(*self._x, -6.0, 0.0)
            p.clear()

    def start(self, times: Any, *, R0: float, alpha: float, T: float) -> None:
        """A run begins: fix x, the known tops, and clear the curves."""
        times = np.asarray(times, dtype=float)
        self._x = (math.log10(times[0]), math.log10(times[-1]))
        if self._x[1] <= self._x[0]:
            self._x = (self._x[0] - 1.0, self._x[0])
        self._frames = {"gap": None, "weights": None, "kernel": None}
        self._tops = {"gap": None, "weights": None, "kernel": None}
        if R0 > 0 and math.isfinite(R0):
            self._tops["gap"] = math.log10(math.sqrt(8.0 * R0))
            try:
                from ntk_tui.bounds import prop_3_1

                w = float(prop_3_1(T, alpha, R0).value)
                if w > 0 and math.isfinite(w):
                    self._tops["weights"] = math.log10(w)
            except Exception:
                pass
        for key, _ in self.PANELS:
            p = self.panel(key)
            top = self._tops.get(key)
            top = math.ceil(top - 1e-9) if top is not None else 0.0
            p.set_frame(*self._x, top - 6.0, top)
            p.clear("running…" if key == "gap" else "")

    def _frame_for(self, key: str, curves: list[Curve]) -> list[float] | None:
        # measurements and Theorem 1.2 set the range; other bounds may leave it (clipped)
        values = [c.y for c in curves if c.role in ("measure", "measure2") or c.label == "Thm 1.2"]
        top = self._tops.get(key)
        rng = decade_range(values, max_span=MAX_SPAN, ceil_=top)
        if rng is None:
            return self._frames.get(key)
        lo, hi = rng
        old = self._frames.get(key)
        if old is None:
            return [lo, hi]
        # only ever extend: nothing jumps while the run grows
        return [min(old[0], lo) if lo < old[0] else old[0], max(old[1], hi)]

    def update_run(self, run: Any, *, final: bool = False) -> None:
        data = run_curves(run, final=final)
        for key, (curves, markers) in data.items():
            frame = self._frame_for(key, curves)
            p = self.panel(key)
            if frame is not None:
                self._frames[key] = frame
                if frame[1] - frame[0] > MAX_SPAN:
                    frame = [frame[1] - MAX_SPAN, frame[1]]
                p.set_frame(*self._x, frame[0], frame[1])
            p.draw(curves, markers)

    def show_run(self, run: Any) -> None:
        """Draw a finished (or stored) run from scratch."""
        t = np.asarray(run.times, dtype=float)
        R0 = float(getattr(run, "R0", math.nan))
        self.start(t, R0=R0, alpha=float(run.alpha), T=float(run.T))
        self.update_run(run, final=True)

    def refresh_colours(self) -> None:
        for key, _ in self.PANELS:
            self.panel(key).refresh_colours()
