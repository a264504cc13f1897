"""Log-log plots on top of textual-plot's ``PlotWidget``.

Log axes are drawn by plotting ``log10`` of the values and labelling the
decades (``1e-6``, ``1e-3``, ``1e0``). Measurements are solid lines; bounds
are dashed or dotted (a pattern renderer added here), so the plots stay
readable without colour (``NO_COLOR``). The axis ranges are set by the caller
and stay fixed while a run grows (no jumping); values outside are clipped.

Braille (2x4 dots per cell) is the default; :data:`BLOCK_MODE` (quadrant
block characters) is the fallback for terminals without braille glyphs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .packed import PackedStatic
from textual_plot import HiResMode, PlotWidget
from textual_plot.axis_formatter import AxisFormatter
from rich.segment import Segment
from rich.style import Style
from textual.containers import Grid
from textual.strip import Strip
from textual_hires_canvas import Canvas
from textual_plot.plot_widget import Legend, LinePlot, ScatterPlot

__all__ = [
    "BRAILLE_MODE",
    "BLOCK_MODE",
    "Curve",
    "VMarker",
    "LogPlot",
    "PlotPanel",
    "DecadeFormatter",
    "decade_range",
    "palette",
]

BRAILLE_MODE = HiResMode.BRAILLE
BLOCK_MODE = HiResMode.QUADRANT

#: Dash patterns: alternating on/off lengths in character cells (vertical
#: distances count double, cells being about twice as tall as wide).
PATTERNS: dict[str, tuple[float, ...] | None] = {
    "solid": None,
    "dashed": (1.5, 1.0),
    "dotted": (0.26, 0.9),
    "dashdot": (1.5, 0.6, 0.26, 0.6),
    "sparse": (0.26, 1.6),
}

#: Legend glyphs for each pattern (box-drawing characters, no braille needed).
LEGEND_GLYPHS: dict[str, str] = {
    "solid": "───",
    "dashed": "╌╌╌",
    "dotted": "┈┈┈",
    "dashdot": "─·─",
    "sparse": "· ·",
    "points": " ● ",
    "marker": " │ ",
}

_DARK = {
    "measure": "#f0f0f0",
    "measure2": "#5fafff",
    "upper": "#5fd75f",
    "upper2": "#ffaf5f",
    "lower": "#d787ff",
    "violated": "#ff5f5f",
    "marker": "#a8a8a8",
    "fit": "#f0f0f0",
    "ref": "#a8a8a8",
}
_LIGHT = {
    "measure": "#101010",
    "measure2": "#005fd7",
    "upper": "#008700",
    "upper2": "#af5f00",
    "lower": "#8700af",
    "violated": "#d70000",
    "marker": "#6c6c6c",
    "fit": "#101010",
    "ref": "#6c6c6c",
}


def palette(dark: bool) -> dict[str, str]:
    """Role -> colour. Measurements are neutral, bounds green/orange/violet,
    a violated bound red; tuned for both dark and light themes."""
    return _DARK if dark else _LIGHT


# --------------------------------------------------------------------------
# data description
# --------------------------------------------------------------------------


@dataclass
class Curve:
    """One series: positive values ``y`` at ``x`` (plotted as log10 of both).

    ``role`` picks the colour (see :func:`palette`), ``pattern`` the line
    (``solid``, ``dashed``, ``dotted``, ``dashdot``) or ``points`` for
    markers. Non-positive and non-finite values are not drawn (they break the
    line).
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    role: str = "measure"
    pattern: str = "solid"
    violated: bool = False
    note: str = ""


@dataclass
class VMarker:
    """A vertical marker at ``x`` (e.g. where a bound stops being valid)."""

    x: float
    label: str
    role: str = "marker"


@dataclass
class _PatternLine(LinePlot):
    """A line with a dash pattern; ``x``/``y`` may contain NaN (gaps)."""

    pattern: tuple[float, ...] | None = None
    clip: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)


@dataclass
class _Points(ScatterPlot):
    pass


class DecadeFormatter(AxisFormatter):
    """Ticks at integer log10 values labelled ``1e-3``, ``1e0``, ``1e2``."""

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        return decade_ticks(min_, max_, max_ticks)

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return [f"1e{int(round(t))}" for t in ticks]


def decade_ticks(lo: float, hi: float, max_ticks: int) -> list[float]:
    first, last = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
    if last < first:
        return []
    n = last - first + 1
    step = max(1, math.ceil(n / max(1, max_ticks)))
    # anchor on a multiple of the step so labels are "round" (…, 1e-6, 1e-3, 1e0)
    start = first + (-first) % step
    ticks = [float(k) for k in range(start, last + 1, step)]
    return ticks or [float(first)]


def decade_range(values: Iterable[np.ndarray], *, max_span: float = 14.0,
                 floor_: float | None = None, ceil_: float | None = None) -> tuple[float, float] | None:
    """Whole-decade log10 range covering the positive finite values given.

    ``ceil_``/``floor_`` force the top/bottom (log10); the span is limited to
    ``max_span`` decades below the top (values further down are clipped).
    Returns ``None`` if there is nothing to show and no forced limits.
    """
    lo, hi = math.inf, -math.inf
    for v in values:
        a = np.asarray(v, dtype=float).ravel()
        a = a[np.isfinite(a) & (a > 0)]
        if a.size:
            lo = min(lo, float(np.log10(a.min())))
            hi = max(hi, float(np.log10(a.max())))
    if ceil_ is not None:
        hi = max(hi, ceil_) if math.isfinite(hi) else ceil_
    if floor_ is not None:
        lo = min(lo, floor_) if math.isfinite(lo) else floor_
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    top = float(math.ceil(hi - 1e-9))
    bottom = float(math.floor(lo + 1e-9))
    if top - bottom < 1:
        bottom = top - 1
    bottom = max(bottom, top - max_span)
    return float(bottom), float(top)


def _log10(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a) & (a > 0)
    out[ok] = np.log10(a[ok])
    return out


# --------------------------------------------------------------------------
# the plot widget
# --------------------------------------------------------------------------


class _Canvas(Canvas):
    """textual-hires-canvas's Canvas, with a style on every segment: Textual's
    monochrome filter (``NO_COLOR``) cannot handle segments without one."""

    _NULL = Style()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        if any(seg.style is None for seg in segments):
            null = self._NULL
            return Strip([Segment(seg.text, seg.style or null, seg.control) for seg in segments],
                         strip.cell_length)
        return strip


class LogPlot(PlotWidget, can_focus=False, inherit_bindings=False):
    """A PlotWidget with fixed log10 axes, decade ticks and dash patterns."""

    DEFAULT_CSS = """
    LogPlot {
        height: 1fr;
        & > .plot--axis { color: $foreground 50%; }
        & > .plot--tick { color: $foreground 70%; text-style: none; }
        & > .plot--label { color: $foreground 70%; text-style: none; }
    }
    """

    def __init__(self, *, hires: HiResMode = BRAILLE_MODE, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, allow_pan_and_zoom=False)
        self.hires = hires
        self._frame: tuple[float, float, float, float] = (-5.0, 0.0, -6.0, 0.0)
        self._curves: list[Curve] = []
        self._markers: list[VMarker] = []

    def compose(self) -> ComposeResult:
        # PlotWidget's layout, with the NO_COLOR-safe canvas
        with Grid():
            yield _Canvas(1, 1, id="margin-top")
            yield _Canvas(1, 1, id="margin-left")
            yield _Canvas(1, 1, id="plot")
            yield _Canvas(1, 1, id="margin-bottom")
        yield Legend(id="legend")

    def on_mount(self) -> None:
        # PlotWidget.on_mount also runs (after this one) and resets limits and data: set up afterwards
        self.call_after_refresh(self._setup)

    def _setup(self) -> None:
        self.margin_top = 0
        self.margin_bottom = 1
        self.margin_left = 7
        self.set_x_formatter(DecadeFormatter())
        self.set_y_formatter(DecadeFormatter())
        self.show_legend(is_visible=False)
        self._apply_frame()
        self._rebuild()
        self.call_after_refresh(self._canvas_changed)

    def on_resize(self) -> None:
        self._apply_frame()
        self._canvas_changed()
        self.call_after_refresh(self._canvas_changed)

    def _canvas_changed(self) -> None:
        """Make PlotWidget re-measure its canvases (it only does so on a layout refresh of itself)."""
        self._needs_canvas_resize = True
        self._needs_rerender = True
        self.refresh()

    def render(self):  # type: ignore[override]
        # the plot canvas may have been resized by a layout change of the grid (margins, parent)
        try:
            canvas = self.query_one("#plot")
            size = canvas.size
            rect = self._scale_rectangle
            if size.width > 2 and size.height > 2 and (rect.width != size.width - 2 or rect.height != size.height - 2
                                                       or canvas._canvas_size != size):
                self._needs_canvas_resize = True
                self._needs_rerender = True
        except Exception:
            pass
        return super().render()

    # ---- public API -------------------------------------------------------

    @property
    def frame(self) -> tuple[float, float, float, float]:
        return self._frame

    def set_frame(self, xlo: float, xhi: float, ylo: float, yhi: float) -> None:
        """Fix the axes to ``[xlo, xhi] x [ylo, yhi]`` in log10 units."""
        if xhi <= xlo:
            xhi = xlo + 1.0
        if yhi <= ylo:
            yhi = ylo + 1.0
        new = (float(xlo), float(xhi), float(ylo), float(yhi))
        if new != self._frame:
            self._frame = new
            self._apply_frame()
            self._rebuild()

    def draw(self, curves: Sequence[Curve], markers: Sequence[VMarker] = (), colours: dict[str, str] | None = None) -> None:
        self._curves = list(curves)
        self._markers = list(markers)
        self._colours = colours or palette(True)
        self._rebuild()

    # ---- internals ----------------------------------------------------------

    def _apply_frame(self) -> None:
        xlo, xhi, ylo, yhi = self._frame
        self.set_xlimits(xlo, xhi)
        self.set_ylimits(ylo, yhi)
        w = max(1, self.size.width - self.margin_left - 2)
        h = max(1, self.size.height - self.margin_top - self.margin_bottom - 2)
        self.set_xticks(decade_ticks(xlo, xhi, max(2, w // 7)))
        self.set_yticks(decade_ticks(ylo, yhi, max(2, h // 2 + 1)))

    def _style(self, curve: Curve) -> str:
        colours = getattr(self, "_colours", palette(True))
        if curve.violated:
            return colours["violated"]
        return colours.get(curve.role, colours["measure"])

    def _rebuild(self) -> None:
        self._datasets = []
        self._labels = []
        self._v_lines = []
        self._v_lines_labels = []
        xlo, xhi, ylo, yhi = self._frame
        colours = getattr(self, "_colours", palette(True))
        on_top = ("measure", "measure2", "fit")
        ordered = [c for c in self._curves if c.role not in on_top and c.pattern != "points"]
        ordered += [c for c in self._curves if c.role in on_top and c.pattern != "points"]
        ordered += [c for c in self._curves if c.pattern == "points"]
        for curve in ordered:
            lx, ly = _log10(curve.x), _log10(curve.y)
            if curve.pattern == "points":
                ok = np.isfinite(lx) & np.isfinite(ly) & (ly >= ylo) & (ly <= yhi) & (lx >= xlo) & (lx <= xhi)
                self._datasets.append(
                    _Points(x=lx[ok], y=ly[ok], hires_mode=None, marker="●", marker_style=self._style(curve))
                )
            else:
                self._datasets.append(
                    _PatternLine(x=lx, y=ly, hires_mode=self.hires, line_style=self._style(curve),
                                 pattern=PATTERNS.get(curve.pattern), clip=self._frame)
                )
            self._labels.append(None)
        for m in self._markers:
            if math.isfinite(m.x) and m.x > 0:
                lxm = math.log10(m.x)
                if xlo < lxm < xhi:
                    self._v_lines.append(_vline(lxm, colours.get(m.role, colours["marker"])))
                    self._v_lines_labels.append(None)
        self._rerender()

    def _render_line_plot(self, dataset: LinePlot) -> None:
        if not isinstance(dataset, _PatternLine):
            return super()._render_line_plot(dataset)
        canvas = self.query_one("#plot", Canvas)
        xlo, xhi, ylo, yhi = dataset.clip
        segments: list[tuple[float, float, float, float]] = []
        x, y = dataset.x, dataset.y
        for i in range(1, len(x)):
            x0, y0, x1, y1 = x[i - 1], y[i - 1], x[i], y[i]
            if not (np.isfinite(x0) and np.isfinite(y0) and np.isfinite(x1) and np.isfinite(y1)):
                continue
            clipped = _clip(x0, y0, x1, y1, xlo, xhi, ylo, yhi)
            if clipped is None:
                continue
            a = self.get_hires_pixel_from_coordinate(clipped[0], clipped[1])
            b = self.get_hires_pixel_from_coordinate(clipped[2], clipped[3])
            segments.append((float(a[0]), float(a[1]), float(b[0]), float(b[1])))
        if not segments:
            return
        if dataset.pattern:
            segments = _dash(segments, dataset.pattern)
        if dataset.hires_mode is None:
            for x0, y0, x1, y1 in segments:
                canvas.draw_line(int(x0), int(y0), int(x1), int(y1), style=dataset.line_style)
        else:
            canvas.draw_hires_lines(segments, style=dataset.line_style, hires_mode=dataset.hires_mode)


def _vline(x: float, style: str):
    from textual_plot.plot_widget import VLinePlot

    return VLinePlot(x=x, line_style=style)


def _clip(x0: float, y0: float, x1: float, y1: float, xlo: float, xhi: float, ylo: float,
          yhi: float) -> tuple[float, float, float, float] | None:
    """Liang-Barsky clipping of a segment to a rectangle (data coordinates)."""
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 - xlo), (dx, xhi - x0), (-dy, y0 - ylo), (dy, yhi - y0)):
        if p == 0:
            if q < 0:
                return None
            continue
        r = q / p
        if p < 0:
            if r > t1:
                return None
            t0 = max(t0, r)
        else:
            if r < t0:
                return None
            t1 = min(t1, r)
    return x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy


def _dash(segments: list[tuple[float, float, float, float]], pattern: tuple[float, ...]) -> list[tuple[float, float, float, float]]:
    """Cut a polyline (in cell coordinates) into the 'on' pieces of ``pattern``."""
    out: list[tuple[float, float, float, float]] = []
    k, left = 0, pattern[0]  # current pattern slot and the length left in it
    for x0, y0, x1, y1 in segments:
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, 2.0 * dy)
        pos = 0.0
        while pos < length - 1e-12:
            step = min(left, length - pos)
            if k % 2 == 0:  # "on" slot
                a, b = pos / length, (pos + step) / length
                out.append((x0 + a * dx, y0 + a * dy, x0 + b * dx, y0 + b * dy))
            pos += step
            left -= step
            if left <= 1e-12:
                k = (k + 1) % len(pattern)
                left = pattern[k]
    return out


# --------------------------------------------------------------------------
# a titled panel: legend line + plot
# --------------------------------------------------------------------------


class PlotPanel(Vertical):
    """A bordered panel with a one- or two-line legend above a :class:`LogPlot`."""

    DEFAULT_CSS = """
    PlotPanel {
        height: 1fr;
        border: round $foreground 30%;
        border-title-color: $foreground 80%;
        border-subtitle-color: $foreground 60%;
        padding: 0 0;
        & > .legend { height: auto; max-height: 2; padding: 0 1; }
    }
    """

    def __init__(self, title: str, *, x_label: str = "t", hires: HiResMode = BRAILLE_MODE,
                 id: str | None = None, classes: str | None = None, empty_text: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = title
        self.x_label = x_label
        self._hires = hires
        self._empty_text = empty_text
        self._curves: list[Curve] = []
        self._markers: list[VMarker] = []

    def compose(self) -> ComposeResult:
        legend = PackedStatic(classes="legend")
        legend.set_text(Text(self._empty_text, style="dim"))
        yield legend
        yield LogPlot(hires=self._hires)

    def on_mount(self) -> None:
        self.border_subtitle = f"x: {self.x_label} (log)"

    @property
    def plot(self) -> LogPlot:
        return self.query_one(LogPlot)

    def colours(self) -> dict[str, str]:
        try:
            dark = self.app.current_theme.dark
        except Exception:  # pragma: no cover
            dark = True
        return palette(dark)

    def set_hires(self, hires: HiResMode) -> None:
        self._hires = hires
        plot = self.plot
        plot.hires = hires
        plot._rebuild()

    def set_frame(self, xlo: float, xhi: float, ylo: float, yhi: float) -> None:
        self.plot.set_frame(xlo, xhi, ylo, yhi)

    def clear(self, text: str | None = None) -> None:
        self._curves, self._markers = [], []
        self.plot.draw([], [], self.colours())
        self.query_one(".legend", PackedStatic).set_text(Text(self._empty_text if text is None else text, style="dim"))

    def draw(self, curves: Sequence[Curve], markers: Sequence[VMarker] = ()) -> None:
        colours = self.colours()
        _, _, ylo, yhi = self.plot.frame
        curves = [_with_scale_note(c, ylo, yhi) for c in curves]
        self._curves, self._markers = list(curves), list(markers)
        self.plot.draw(curves, markers, colours)
        self.query_one(".legend", PackedStatic).set_paragraphs([legend_entries(curves, markers, colours)])

    def refresh_colours(self) -> None:
        if self._curves or self._markers:
            self.draw(self._curves, self._markers)


def _with_scale_note(c: Curve, ylo: float, yhi: float) -> Curve:
    """Say so in the legend when a curve lies entirely above or below the axes."""
    y = np.asarray(c.y, dtype=float)
    y = y[np.isfinite(y) & (y > 0)]
    if y.size == 0 or c.note:
        return c
    ly = np.log10(y)
    if ly.min() > yhi:
        return Curve(c.label, c.x, c.y, c.role, c.pattern, c.violated, "(above the axes)")
    if ly.max() < ylo:
        return Curve(c.label, c.x, c.y, c.role, c.pattern, c.violated, "(below the axes)")
    return c


def legend_entries(curves: Sequence[Curve], markers: Sequence[VMarker], colours: dict[str, str]) -> list[Text]:
    """``─── gap``, ``╌╌╌ Thm 1.2``, ``│ Thm 1.2 valid to t=3e2`` ... (one entry per series)."""
    entries: list[Text] = []
    for c in curves:
        if not c.label:
            continue
        style = colours["violated"] if c.violated else colours.get(c.role, colours["measure"])
        glyph = LEGEND_GLYPHS.get(c.pattern, "───")
        label = c.label + (" VIOLATED" if c.violated else "") + (f" {c.note}" if c.note else "")
        e = Text(glyph, style=style)
        e.append(" " + label)
        entries.append(e)
    for m in markers:
        if not m.label:
            continue
        e = Text("│", style=colours.get(m.role, colours["marker"]))
        e.append(" " + m.label)
        entries.append(e)
    return entries
