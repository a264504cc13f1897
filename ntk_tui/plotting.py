"""Publication-ready figures (PNG, SVG, PDF) of runs and sweeps with matplotlib.

matplotlib is an optional extra (``pip install 'ntk-tui[plot]'``); it is
imported lazily and a missing install gives a clear :class:`PlotError`.
Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot, no GUI
backend), so this works headless.

- :func:`plot_run`: gap vs t (log-log) with every bound (dashed where its
  hypothesis holds, faint dotted beyond, the end of validity marked), the
  weight change against Prop 3.1, and the kernel drift.
- :func:`plot_runs`: the gaps of several runs on one plot (comparison).
- :func:`plot_sweep`: gap(T) vs alpha (or width m), per T, seeds as points,
  the fitted power law with its slope and 95 % CI, and the theory's slopes as
  reference lines; plus gap(T) vs T when the sweep has several T.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

__all__ = ["PlotError", "require_matplotlib", "plot_run", "plot_runs", "plot_sweep", "save_figure", "plot_results"]

FIG_FORMATS = (".png", ".svg", ".pdf")

# Colour-blind-safe palette (Okabe-Ito); measurement in black.
_BOUND_COLORS = {
    "theorem_1_2": "#0072B2",
    "prop_1_1": "#D55E00",
    "theorem_1_3_lower": "#009E73",
    "theorem_3_2": "#CC79A7",
    "corollary_2_2": "#E69F00",
    "prop_3_1": "#0072B2",
}
_SERIES = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

_RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "svg.fonttype": "none",  # keep text as text in SVG
    "pdf.fonttype": 42,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
}


class PlotError(RuntimeError):
    """Plotting is not possible (matplotlib missing, nothing to plot, bad file type)."""


def require_matplotlib():
    """Import matplotlib or raise :class:`PlotError` with the install command."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise PlotError(
            "plotting needs matplotlib, an optional extra: pip install 'ntk-tui[plot]' (or: pip install matplotlib)"
        ) from None
    return matplotlib


def _figure(ncols: int, width: float = 3.4, height: float = 2.9):
    mpl = require_matplotlib()
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(width * ncols, height), layout="constrained")
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _style(ax: Any) -> None:
    mpl = require_matplotlib()
    with mpl.rc_context(_RC):
        ax.grid(True, which="major", alpha=0.25, linewidth=0.5)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save ``fig`` to .png, .svg or .pdf (chosen by suffix)."""
    mpl = require_matplotlib()
    path = Path(path).expanduser()
    if path.suffix.lower() not in FIG_FORMATS:
        raise PlotError(f"unsupported figure type {path.suffix or '(none)'!r}: use one of {', '.join(FIG_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with mpl.rc_context(_RC):
        fig.savefig(str(path))
    return path


def _classify(name: str) -> tuple[str, str]:
    try:
        from .analysis import _classify as cls

        return cls(name)
    except Exception:  # pragma: no cover
        return "reference", name


def _positive(y: Any):
    import numpy as np

    y = np.asarray(y, dtype=float)
    return np.where(np.isfinite(y) & (y > 0), y, np.nan)


def _fmt(x: float) -> str:
    try:
        from .analysis import format_si

        return format_si(x)
    except Exception:  # pragma: no cover
        return f"{x:.2g}"


def _bound_series(ax: Any, t: Any, name: str, b: Any, label: str, color: str) -> None:
    """A bound: dashed where valid, faint dotted where its hypothesis fails,
    with a tick where validity ends."""
    import numpy as np

    value = _positive(np.broadcast_to(np.asarray(b.value, dtype=float), t.shape))
    valid = np.broadcast_to(np.asarray(b.valid, dtype=bool), t.shape)
    if not np.isfinite(value).any():
        return
    ax.plot(t, np.where(valid, value, np.nan), ls="--", color=color, lw=1.2, label=label)
    if (~valid).any():
        ax.plot(t, np.where(~valid, value, np.nan), ls=":", color=color, lw=1.0, alpha=0.5,
                label=f"{label} (hypothesis fails)" if valid.any() else f"{label} (not valid)")
        # end of validity: last valid time followed by an invalid one
        idx = np.flatnonzero(valid[:-1] & ~valid[1:])
        for i in idx:
            ax.axvline(t[i], color=color, lw=0.6, ls="-", alpha=0.35)


def _title(run: Any) -> str:
    parts = [str(getattr(run, "family", "") or "")]
    for key, label in (("alpha", "α"), ("T", "T"), ("kappa", "κ"), ("R0", "R0")):
        v = getattr(run, key, None)
        if isinstance(v, (int, float)) and math.isfinite(v):
            parts.append(f"{label} = {_fmt(v)}")
    return ", ".join(p for p in parts if p)


def plot_run(run: Any, path: str | Path | None = None, *, title: str | None = None, extra_panels: bool = True):
    """Figure of one run (an ``ntk_tui.Run`` or a loaded export). Saved to
    ``path`` when given; the Figure is returned."""
    import numpy as np

    t = np.asarray(run.times, dtype=float)
    bounds = run.bounds() if callable(getattr(run, "bounds", None)) else {}
    wc = _positive(getattr(run, "weight_change", np.full(t.shape, np.nan)))
    kd = _positive(getattr(run, "kernel_drift", np.full(t.shape, np.nan)))
    panels = ["gap"]
    if extra_panels and (np.isfinite(wc).any() or any(_classify(n)[0] == "weight" for n in bounds)):
        panels.append("weight")
    if extra_panels and np.isfinite(kd).any():
        panels.append("kernel")
    fig, axes = _figure(len(panels))
    mpl = require_matplotlib()
    with mpl.rc_context(_RC):
        ax = axes[0]
        gap = _positive(run.gap)
        ax.plot(t, gap, color="black", label="gap ‖αh(w) − αh̄(w̄)‖")
        for name, b in bounds.items():
            kind, label = _classify(name)
            if kind == "weight":
                continue
            if kind == "lower" and getattr(run, "family", None) != "converse":
                continue  # Theorem 1.3 is a statement about the converse model only
            _bound_series(ax, t, name, b, label + (" (lower)" if kind == "lower" else ""),
                          _BOUND_COLORS.get(name, "#777777"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        # y range: the gap and the bounds where they hold (an invalid bound may shoot up)
        shown = [gap] + [np.where(np.broadcast_to(np.asarray(b.valid, dtype=bool), t.shape),
                                  _positive(np.broadcast_to(np.asarray(b.value, dtype=float), t.shape)), np.nan)
                         for n, b in bounds.items() if _classify(n)[0] != "weight"]
        vals = np.concatenate([np.ravel(v) for v in shown])
        vals = vals[np.isfinite(vals)]
        if vals.size:
            ax.set_ylim(max(vals.min() / 3.0, vals.max() * 1e-14), vals.max() * 3.0)
        ax.set_xlabel("t")
        ax.set_ylabel("gap")
        ax.set_title(title or _title(run))
        _legend(ax, inside_max=3, below=True)
        if "weight" in panels:
            ax = axes[panels.index("weight")]
            ax.plot(t, wc, color="black", label="‖w(t) − w0‖")
            wcl = _positive(getattr(run, "weight_change_lin", np.full(t.shape, np.nan)))
            if np.isfinite(wcl).any():
                ax.plot(t, wcl, color="#56B4E9", ls="-", label="‖w̄(t) − w0‖ (linearized)")
            for name, b in bounds.items():
                kind, label = _classify(name)
                if kind == "weight":
                    _bound_series(ax, t, name, b, label, _BOUND_COLORS.get(name, "#0072B2"))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("t")
            ax.set_ylabel("weight change")
            ax.set_title("weights vs Prop 3.1")
            _legend(ax, inside_max=3, below=True)
        if "kernel" in panels:
            ax = axes[panels.index("kernel")]
            ax.plot(t, kd, color="black", label=r"$\|K_t - K_0\|_{op}$")
            jd = _positive(getattr(run, "jacobian_drift", np.full(t.shape, np.nan)))
            if np.isfinite(jd).any():
                ax.plot(t, jd, color="#D55E00", label=r"$\|J(w(t)) - J_0\|_{op}$")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("t")
            ax.set_ylabel("drift")
            ax.set_title("kernel and Jacobian drift")
            _legend(ax, inside_max=3, below=True)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_runs(runs: Sequence[Any], path: str | Path | None = None, *, labels: Sequence[str] | None = None,
              bound: str | None = "theorem_1_2"):
    """The gaps of several runs on one log-log plot (with each run's ``bound``)."""
    import numpy as np

    if not runs:
        raise PlotError("nothing to plot")
    fig, (ax,) = _figure(1, width=4.6, height=3.2)
    mpl = require_matplotlib()
    with mpl.rc_context(_RC):
        for i, run in enumerate(runs):
            color = _SERIES[i % len(_SERIES)]
            label = labels[i] if labels else _title(run)
            t = np.asarray(run.times, dtype=float)
            ax.plot(t, _positive(run.gap), color=color, label=label)
            if bound:
                b = (run.bounds() if callable(getattr(run, "bounds", None)) else {}).get(bound)
                if b is not None:
                    value = np.broadcast_to(np.asarray(b.value, dtype=float), t.shape)
                    valid = np.broadcast_to(np.asarray(b.valid, dtype=bool), t.shape)
                    ax.plot(t, np.where(valid, _positive(value), np.nan), ls="--", color=color, lw=1.0, alpha=0.8,
                            label=f"{_classify(bound)[1]} bound" if i == 0 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("gap")
        ax.set_title("gap vs t")
        ax.legend(loc="best", frameon=False)
    if path is not None:
        save_figure(fig, path)
    return fig


def _legend(ax: Any, inside_max: int = 4, below: bool = False) -> None:
    """Legend inside when short, else outside (on the right, or below the axes)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if len(handles) > inside_max and below:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    elif len(handles) > inside_max:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, borderaxespad=0.0)
    else:
        ax.legend(loc="best", frameon=False)


def _xfmt(x: float, integer: bool) -> str:
    return str(int(round(x))) if integer else _fmt(x)


def _slope_label(f: dict) -> str:
    lo, hi = f["slope_ci95"]
    ci = "" if lo is None or (isinstance(lo, float) and math.isnan(lo)) else f" [{lo:.2f}, {hi:.2f}]"
    return f"slope {f['slope']:.2f}{ci}"


def _reference_lines(ax: Any, x0: float, y0: float, xs: Any, theory: dict, var: str) -> None:
    import numpy as np

    xs = np.asarray(sorted(xs), dtype=float)
    seen = set()
    styles = [(0, (1, 2)), (0, (4, 2, 1, 2))]
    for i, (name, slope) in enumerate(theory.items()):
        if slope in seen:
            continue
        seen.add(slope)
        same = [n for n, s in theory.items() if s == slope]
        ax.plot(xs, y0 * (xs / x0) ** slope, color="#777777", lw=0.9, ls=styles[i % 2],
                label=f"{' & '.join(same)}: ${var}^{{{slope:g}}}$")


def plot_sweep(sweep: Any, path: str | Path | None = None, *, title: str | None = None):
    """Figure of a sweep (a :class:`~ntk_tui.sweep.SweepResult`)."""
    import numpy as np

    rows = [r for r in sweep.rows if r.get("status") == "ok" and isinstance(r.get("gap_T"), (int, float))
            and r["gap_T"] > 0 and math.isfinite(r["gap_T"])]
    if not rows:
        raise PlotError("the sweep has no finished run with a positive gap to plot")
    var = sweep.variable
    xkey = "m" if var == "m" else "alpha"
    xlabel = "width m (α = √m)" if var == "m" else "α"
    fits = sweep.fits
    Ts = sorted({float(r["T"]) for r in rows})
    t_scaled = getattr(sweep.spec, "T_scale", None) is not None
    two = (not t_scaled) and len(Ts) >= 2 and len({float(r[xkey]) for r in rows}) >= 1
    fig, axes = _figure(2 if two else 1, width=4.4, height=3.1)
    mpl = require_matplotlib()
    with mpl.rc_context(_RC):
        ax = axes[0]
        groups = [("T = C α" if t_scaled else None, rows)] if t_scaled else [
            (T, [r for r in rows if float(r["T"]) == T]) for T in Ts]
        for i, (T, group) in enumerate(groups):
            color = _SERIES[i % len(_SERIES)]
            xs = np.asarray([float(r[xkey]) for r in group])
            ys = np.asarray([float(r["gap_T"]) for r in group])
            ax.scatter(xs, ys, s=8, color=color, alpha=0.45, lw=0)
            ux = np.unique(xs)
            gm = np.asarray([np.exp(np.mean(np.log(ys[xs == u]))) for u in ux])
            fit = next((f for f in fits.get(var, []) if t_scaled or f["at"].get("T") == T), None)
            name = f"T = {sweep.spec.T_scale:g} α" if t_scaled else f"T = {_fmt(float(T))}"  # type: ignore[arg-type]
            ax.plot(ux, gm, "o", color=color, ms=3.5, label=name + (f": {_slope_label(fit)}" if fit else ""))
            if fit:
                xx = np.geomspace(ux.min(), ux.max(), 50)
                ax.plot(xx, np.exp(fit["intercept"]) * xx ** fit["slope"], color=color, lw=1.1)
            b = "bound_theorem_1_2"
            if b in group[0]:
                bv = np.asarray([np.nan if r.get(b) is None else float(r[b]) for r in group])
                valid = np.asarray([bool(r.get(b + "_valid")) for r in group])
                if np.isfinite(bv).any():
                    order = np.argsort(xs)
                    ax.plot(xs[order], np.where(valid, _positive(bv), np.nan)[order], ls="--", color=color, lw=0.8,
                            alpha=0.6, label="Thm 1.2 bound" if i == 0 else None)
            if i == 0 and len(ux) >= 2:
                theory = (fit or {}).get("theory") or sweep_theory(var, t_scaled)
                _reference_lines(ax, ux[0], gm[0], ux, theory, "m" if var == "m" else r"\alpha")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("gap(T)")
        ax.set_title(title or f"{sweep.spec.family}: gap(T) vs {'width' if var == 'm' else 'α'}")
        _legend(ax, inside_max=0)
        if two:
            ax = axes[1]
            xs_all = sorted({float(r[xkey]) for r in rows})
            for i, x in enumerate(xs_all):
                color = _SERIES[i % len(_SERIES)]
                group = [r for r in rows if float(r[xkey]) == x]
                Tg = np.asarray([float(r["T"]) for r in group])
                ys = np.asarray([float(r["gap_T"]) for r in group])
                ax.scatter(Tg, ys, s=8, color=color, alpha=0.45, lw=0)
                uT = np.unique(Tg)
                gm = np.asarray([np.exp(np.mean(np.log(ys[Tg == u]))) for u in uT])
                fit = next((f for f in fits.get("T", []) if float(f["at"].get(xkey, -1)) == x), None)
                name = f"{'m' if var == 'm' else 'α'} = {_xfmt(x, var == 'm')}"
                ax.plot(uT, gm, "o", color=color, ms=3.5, label=name + (f": {_slope_label(fit)}" if fit else ""))
                if fit:
                    tt = np.geomspace(uT.min(), uT.max(), 50)
                    ax.plot(tt, np.exp(fit["intercept"]) * tt ** fit["slope"], color=color, lw=1.1)
                if i == 0 and len(uT) >= 2:
                    _reference_lines(ax, uT[0], gm[0], uT, sweep_theory("T", False), "T")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("T")
            ax.set_ylabel("gap(T)")
            ax.set_title("gap(T) vs T")
            _legend(ax, inside_max=0)
    if path is not None:
        save_figure(fig, path)
    return fig


def sweep_theory(var: str, t_scaled: bool) -> dict:
    from .sweep import THEORY_EXPONENTS, THEORY_EXPONENTS_T_SCALED

    return dict((THEORY_EXPONENTS_T_SCALED if t_scaled else THEORY_EXPONENTS)[var])


def plot_results(obj: Any, path: str | Path | None = None, **kw: Any):
    """Plot a run, a loaded export, a sweep, or a list of runs (comparison)."""
    if isinstance(obj, (list, tuple)):
        if len(obj) == 1:
            obj = obj[0]
        else:
            return plot_runs(obj, path, **kw)
    if hasattr(obj, "rows") and hasattr(obj, "spec"):
        return plot_sweep(obj, path, **kw)
    return plot_run(obj, path, **kw)
