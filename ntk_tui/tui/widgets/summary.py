"""The summary panel and the status line (statistics + progress bar).

The numbers come from :func:`ntk_tui.analysis.summarize` (nothing is computed
here); this module only lays them out: each entry keeps its words together
(non-breaking spaces), so on a narrow terminal whole entries wrap.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from .packed import PackedStatic

__all__ = ["SummaryPanel", "RunStatus", "fmt", "short_label"]


def fmt(x: Any, digits: int = 2) -> str:
    """Number formatting shared with the CLI (:func:`ntk_tui.analysis.format_si`);
    a missing value (None or NaN) shows as a dash."""
    if x is None:
        return "—"
    try:
        from ntk_tui.analysis import format_si

        v = float(x)
        return "—" if math.isnan(v) else format_si(v, digits)
    except (TypeError, ValueError):
        return str(x)


def fmt_int(x: Any) -> str:
    try:
        return f"{int(x):,}"
    except (TypeError, ValueError):
        return str(x)


def short_label(label: str) -> str:
    return label.replace("Theorem", "Thm").replace("Corollary", "Cor").replace("Proposition", "Prop")


def _entry(*parts: tuple[str, str]) -> Text:
    t = Text()
    for s, style in parts:
        t.append(s, style=style)
    return t


KEY = "bold"
DIM = "dim"


class SummaryPanel(PackedStatic):
    """R0, kappa, Lip(Dh), gap(T) against each bound, and the verdict."""

    DEFAULT_CSS = """
    SummaryPanel {
        height: auto;
        min-height: 3;
        max-height: 6;
        padding: 0 1;
        border-top: solid $foreground 20%;
    }
    SummaryPanel.-violated { border-top: hkey $error; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.summary: Any = None

    def show_text(self, *lines: str) -> None:
        self.summary = None
        self.remove_class("-violated")
        self.set_text(Text("\n".join(lines), style=DIM))

    def show_live(self, run: Any, t: float | None) -> None:
        """While running: constants known from the start and the gap so far."""
        self.summary = None
        self.remove_class("-violated")
        line1 = self._constants(run)
        gap = _last_finite(getattr(run, "gap", []))
        if gap is not None and t is not None:
            line1.append(_entry(("gap(t)", KEY), (f" {fmt(gap)} at t={fmt(t)}", "")))
        self.set_paragraphs([line1, [_entry(("running…", DIM))]])

    def _constants(self, run: Any, summary: Any = None) -> list[Text]:
        R0 = summary.R0 if summary is not None else getattr(run, "R0", math.nan)
        kappa = summary.kappa if summary is not None else getattr(run, "kappa", math.nan)
        lip = summary.lip_dh if summary is not None else getattr(run, "lip_dh", math.nan)
        kind = summary.lip_dh_kind if summary is not None else str(getattr(run, "lip_dh_kind", ""))
        out = [
            _entry(("R0", KEY), (f" {fmt(R0)}", "")),
            _entry(("kappa", KEY), (f" {fmt(kappa)}", "")),
        ]
        if kind == "exact":
            out.append(_entry(("Lip(Dh)", KEY), (f" {fmt(lip)} (exact)", "")))
        else:
            out.append(_entry(("Lip(Dh)", KEY), (f" ≤ {fmt(lip)} (bound)", "")))
        path = summary.lip_dh_path_max if summary is not None else None
        if path is not None and math.isfinite(path):
            out.append(_entry(("", ""), (f"≥ {fmt(path)} (path)", "")))
        return out

    def show_summary(self, summary: Any, run: Any = None) -> None:
        """The final digest of a run (``summary`` from ``analysis.summarize``)."""
        self.summary = summary
        line1 = self._constants(run, summary)
        at = "T" if _close(summary.t, summary.T) else f"t={fmt(summary.t)}"
        line1.append(_entry((f"gap({at})", KEY), (f" {fmt(summary.gap_T)}", "bold")))
        line2: list[Text] = []
        order = {"upper": 0, "lower": 1, "weight": 2, "reference": 3}
        for b in sorted(summary.bounds.values(), key=lambda b: (order.get(b.kind, 9), b.label != "Theorem 1.2")):
            label = short_label(b.label)
            if b.kind == "reference":
                continue
            if b.kind == "weight":
                label = f"{label} ‖w−w0‖"
            if not b.valid:
                line2.append(_entry((label, KEY), (" not valid at T", DIM)))
                continue
            rel = "≥" if b.kind == "lower" else "≤"
            if b.violated:
                line2.append(_entry((label, "bold red"), (f" {rel} {fmt(b.value)} VIOLATED", "bold red")))
            elif b.kind == "lower":
                if not b.checked:
                    note = " (n/a: only for sign +1 at T)"
                elif b.ratio and math.isfinite(b.ratio):
                    note = f" ({fmt(1 / b.ratio)}x below gap)"
                else:
                    note = ""
                line2.append(_entry((label, KEY), (f" {rel} {fmt(b.value)}", ""), (note, DIM)))
            elif math.isfinite(b.ratio):
                line2.append(_entry((label, KEY), (f" {rel} {fmt(b.value)}", ""),
                                    (f" ({fmt(b.ratio)}x loose)", DIM)))
            else:
                line2.append(_entry((label, KEY), (f" {rel} {fmt(b.value)}", "")))
        verdict_style = "bold red" if summary.violated else ""
        verdict = Text("verdict: ", style=KEY)
        verdict.append(summary.verdict, style=verdict_style)
        self.set_class(bool(summary.violated), "-violated")
        self.set_paragraphs([line1, line2, [verdict]])


def _close(a: float, b: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def _last_finite(values: Any) -> float | None:
    try:
        import numpy as np

        a = np.asarray(values, dtype=float).ravel()
        a = a[np.isfinite(a)]
        return float(a[-1]) if a.size else None
    except Exception:
        return None


class RunStatus(Horizontal):
    """One line: integration statistics / messages on the left, progress on the right."""

    DEFAULT_CSS = """
    RunStatus {
        height: 1;
        padding: 0 1;
        & > #status-text { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
        & > ProgressBar { width: auto; height: 1; margin-left: 1; }
        & > ProgressBar > Bar { width: 16; }
        & > ProgressBar > #percentage { width: 5; }
        &.-error > #status-text { color: $error; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="status-text", markup=False)
        yield ProgressBar(total=1, show_eta=False, id="status-progress")

    def message(self, text: str, *, error: bool = False) -> None:
        self.set_class(error, "-error")
        self.query_one("#status-text", Static).update(text)

    def progress(self, done: float, total: float | None) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=total, progress=done)

    def stats(self, stats: dict[str, Any], *, elapsed: str | None, extra: str = "") -> None:
        parts = [str(stats.get("method", ""))]
        if "nfev" in stats:
            parts.append(f"nfev {fmt_int(stats['nfev'])}")
        if "naccept" in stats:
            steps = f"steps {fmt_int(stats['naccept'])}"
            if "nreject" in stats:
                steps += f" ({fmt_int(stats['nreject'])} rej.)"
            parts.append(steps)
        if elapsed:
            parts.append(elapsed)
        if extra:
            parts.append(extra)
        self.message("  ".join(p for p in parts if p))
