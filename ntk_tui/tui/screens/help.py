"""The help screen: every quantity and bound the app shows, with its formula."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown

from ..widgets.nav import NavBar

__all__ = ["HelpScreen", "HELP_TEXT"]

HELP_TEXT = r"""
# What this lab measures

A model `h(w)` (outputs in R^n, weights w in R^p) is trained by **gradient flow** on the
square loss of the scaled model `alpha h(w)` against targets `y*`:

    dw/dt = (1/alpha) J(w)^T r(t),      r(t) = y* - alpha h(w(t))       (J = Dh, the Jacobian)

Next to it runs its **linearization** at `w0` (the neural tangent kernel, NTK, picture):
`hbar(w) = h(w0) + J0 (w - w0)`, trained the same way. Large `alpha` makes training *lazy*:
the weights hardly move and the two flows stay close. The app integrates the real flow and
uses the exact solution of the linear one, then compares them at every sample time `t`.

## The quantities

| shown as | meaning |
|---|---|
| **gap** | `‖alpha h(w(t)) - alpha hbar(wbar(t))‖ = ‖r(t) - rbar(t)‖`: how far the NTK approximation is off |
| **R0** | initial loss `‖y* - alpha h(w0)‖² / 2` |
| **Lip(Dh)** | how fast the Jacobian can change: `‖J(w) - J(v)‖ ≤ Lip(Dh) ‖w - v‖` (exact for Converse and Quadratic, an upper bound for TwoLayer) |
| **≥ … (path)** | the largest `‖J(w(t)) - J0‖ / ‖w(t) - w0‖` seen along the run: a lower estimate of Lip(Dh) |
| **kappa** | `T Lip(Dh) sqrt(R0) / alpha`, dimensionless: the NTK approximation is good when kappa is small |
| **‖w−w0‖, ‖wbar−w0‖** | how far the weights of the real and of the linearized model moved |
| **‖K_t−K0‖op** | drift of the tangent kernel `K_t = J(w(t)) J(w(t))^T` (spectral norm) |
| **‖J_t−J0‖op** | drift of the Jacobian itself |

## The bounds (dashed and dotted lines)

* **Theorem 1.2** (upper, dashed): `gap(T) ≤ min(6 kappa sqrt(R0), sqrt(8 R0))`, valid while
  `T ≤ alpha² rho² / R0` (the weights stay in the ball of radius rho where Lip(Dh) holds).
  The `sqrt(8 R0)` cap is trivial: the loss never increases, so each residual stays below `sqrt(2 R0)`.
* **Proposition 1.1** (Chizat et al., upper, dotted): `gap(T) ≤ T² Lip(h)² Lip(Dh) R0 / alpha`,
  valid while `T ≤ alpha rho / (Lip(h) sqrt(R0))`. It grows like T², Theorem 1.2 only like T.
* **Theorem 1.3** (lower, dash-dot, Converse model only): on the one-dimensional model
  `h(w) = w/sqrt(T) + (Lip(Dh)/2) w²`, `gap(T) ≥ min(kappa sqrt(R0), sqrt(R0)) / 5`: Theorem 1.2
  cannot be improved beyond its constant.
* **Proposition 3.1** (weights, dashed): `‖w(T) - w0‖ ≤ sqrt(T R0) / alpha`, and the same for `wbar`.
* **Corollary 2.2** (two-layer mean-field network): `gap(T) ≤ C min(T/alpha, 1)`: the T/alpha law.

A vertical bar marks the time where a bound stops being valid. A bound drawn in red is
**violated** by the measurement (it should never happen for a valid upper bound; it would
point at a numerical problem). In the summary, "4.1x loose" is bound ÷ measured gap.

## Model families

* **Converse**: Theorem 1.3's model (exact Lip(Dh), no ball restriction). `sign -1` flips the curvature.
* **TwoLayer**: the mean-field network `f(x) = (1/sqrt m) sum_i a_i sigma(sqrt(m) <x, u_i>)` on
  points of the unit sphere (targets sin, linear, teacher, sign) or a `.npy`/`.csv` file
  (last column = y). *centred* subtracts the initial output so R0 does not grow with alpha.
  Smooth activations only: ReLU makes Lip(Dh) infinite.
* **Quadratic**: `h(w) = J w + Q[w, w]/2` with a chosen Lip(Dh) = ‖Q‖: stress test for Theorem 1.2.
* **Linear**: `h(w) = J w`: the gap must be exactly 0.

## Sweeps

The Sweep screen runs a grid (alpha values or widths m, times seeds) and fits
`gap(T) ~ x^slope` on log-log axes. Theory: slope **-1** in alpha (Theorem 1.2, and Chizat's
`T²/alpha` bound falls the same way at fixed T); in the **NTK parametrization**
(`alpha = sqrt(m)`) slope **-1/2** in the width; at the **edge of the lazy regime** (`T = C alpha`)
kappa stays fixed, so Theorem 1.2's bound no longer falls (slope 0) while `T²/alpha` grows; the
measured gap falls much more slowly than at fixed T (preset 4: slope -0.37 instead of -1).

## Keys

| key | does |
|---|---|
| `r` / `F5` | run (on the Sweep screen: run the sweep); Enter in a field does the same |
| `c` | cancel the run or sweep in progress (what is done is kept) |
| `s`, `h`, `g` | Sweep screen, History screen, back to the Run screen |
| `e` | export: CSV or JSON of the measurements, SVG screenshot |
| `p`, `1`-`4` | presets: pick one, or start one directly |
| `[` `]` | previous / next tab (plots, or the setup on small terminals) |
| `Esc` | leave a text field (so the letter keys work again); close this help |
| `?`, `F1` | this help |
| `Ctrl+P` | command palette (every action, presets, braille/block plots, themes) |
| `q` | quit |

Plots use braille dots; start with `--no-braille` (or `NTK_TUI_NO_BRAILLE=1`) or use the command
palette for block characters. `NO_COLOR` is honoured: lines differ by pattern as well as colour.
"""


class HelpScreen(Screen):
    """Full-screen help (Esc, q or ? to close)."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", key_display="?", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield NavBar("help")
        with VerticalScroll(id="help-scroll"):
            yield Markdown(HELP_TEXT, id="help-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.app.pop_screen()
