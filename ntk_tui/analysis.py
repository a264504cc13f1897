"""Analysis of runs: power-law fits, one-run summaries with a verdict, number formatting.

Nothing here needs the compiled engine: :func:`summarize` uses duck typing on
objects with the attributes of ``Run`` (docs/api.md), and the Student-t
quantile for confidence intervals is implemented here (scipy is not a runtime
dependency).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Mapping, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "PowerLawFit",
    "fit_power_law",
    "t_quantile",
    "BoundAtT",
    "Summary",
    "summarize",
    "BREAKDOWN_RELATIVE_GAP",
    "VIOLATION_RTOL",
    "format_si",
    "format_ratio",
    "format_fit",
]

#: Relative gap ``gap / sqrt(2 R0)`` above which the verdict says "breaks down".
BREAKDOWN_RELATIVE_GAP = 0.1
#: A valid bound counts as violated only beyond this relative margin.
VIOLATION_RTOL = 1e-9


# ==========================================================================
# number formatting
# ==========================================================================


def format_si(x: float, digits: int = 2) -> str:
    """Compact number with ``digits`` significant digits.

    Fixed notation for ``0.01 <= |x| < 1000`` (``0.52``, ``4.1``, ``120``),
    otherwise a short exponent form without ``+`` or leading zeros
    (``1.3e-03`` -> ``"1.3e-3"``, ``2.5e+06`` -> ``"2.5e6"``). ``0`` -> ``"0"``,
    non-finite values -> ``"nan"``, ``"inf"``, ``"-inf"``.
    """
    if digits < 1:
        raise ValueError(f"digits must be a positive integer (got {digits!r})")
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    mant, exp_text = f"{x:.{digits - 1}e}".split("e")
    exp = int(exp_text)  # exponent after rounding to `digits` significant digits
    if -2 <= exp < 3:
        decimals = max(digits - 1 - exp, 0)
        return f"{float(mant) * 10.0**exp:.{decimals}f}"
    return f"{mant}e{exp}"


def format_ratio(x: float, digits: int = 2) -> str:
    """A factor such as ``bound / gap`` as ``"4.1x"``."""
    return f"{format_si(x, digits)}x"


# ==========================================================================
# Student t quantile (no scipy)
# ==========================================================================

_CF_EPS = 1e-16
_CF_TINY = 1e-300
_CF_MAXIT = 20000
_CF_DF = 2000.0  # above this df, use the Cornish-Fisher expansion


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _CF_TINY else _CF_TINY)
    h = d
    for m in range(1, _CF_MAXIT + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _CF_TINY else _CF_TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _CF_TINY else _CF_TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _CF_TINY else _CF_TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _CF_TINY else _CF_TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            return h
    raise ArithmeticError("incomplete beta continued fraction did not converge")  # pragma: no cover


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)``, with ``y = 1 - x`` given exactly."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, y) / b


def _t_sf(t: float, df: float) -> float:
    """Upper tail ``P(T > t)`` of Student's t for ``t >= 0``."""
    t2 = t * t
    return 0.5 * _betainc(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))


def _t_central(t: float, df: float) -> float:
    """``P(0 < T < t)`` for ``t >= 0`` (accurate where ``P(T > t)`` is close to 1/2)."""
    t2 = t * t
    return 0.5 * _betainc(0.5, 0.5 * df, t2 / (df + t2), df / (df + t2))


def _t_pdf(t: float, df: float) -> float:
    log_c = math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - 0.5 * (df + 1.0) * math.log1p(t * t / df))


def _t_isf_cornish_fisher(q: float, df: float) -> float:
    """Cornish-Fisher expansion of the upper quantile (Abramowitz & Stegun 26.7.5).

    The truncation error is O(df^-5): below 1e-12 relative for df > 2000 and
    the usual tail probabilities.
    """
    z = -NormalDist().inv_cdf(q)  # q <= 1/2 is exact; 1 - q would round
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


def t_quantile(p: float, df: float) -> float:
    """Quantile ``F^{-1}(p)`` of Student's t distribution with ``df`` degrees of freedom.

    Exact closed forms for ``df = 1, 2``; the normal quantile for
    ``df = inf`` and the Cornish-Fisher expansion (error O(df^-5)) for
    ``df > 2000``; otherwise a safeguarded Newton iteration on the upper tail
    ``P(T > t) = I_{df/(df+t^2)}(df/2, 1/2) / 2`` (or, near the median, on
    ``P(0 < T < t) = I_{t^2/(df+t^2)}(1/2, df/2) / 2``), with the incomplete
    beta function evaluated by its continued fraction, started from the
    Cornish-Fisher expansion. Relative accuracy is about 1e-12 (the tests
    compare with ``scipy.stats.t.ppf``).
    """
    p = float(p)
    df = float(df)
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1 (got {p!r})")
    if math.isnan(df) or df <= 0:
        raise ValueError(f"df must be a positive number (got {df!r})")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -_t_isf(p, 0.5 - p, df)
    return _t_isf(1.0 - p, p - 0.5, df)


def _t_isf(q: float, c: float, df: float) -> float:
    """Upper quantile: the t > 0 with ``P(T > t) = q``, where ``c = 1/2 - q``.

    Both ``q`` and ``c`` are passed exactly; near the median the equation is
    solved as ``P(0 < T < t) = c`` to avoid cancellation.
    """
    if math.isinf(df):
        return -NormalDist().inv_cdf(q)
    if df == 1.0:  # Cauchy: t = cot(pi q) = tan(pi c)
        return math.tan(math.pi * c) if c < 0.25 else 1.0 / math.tan(math.pi * q)
    if df == 2.0:  # from F(t) = 1/2 + t / (2 sqrt(2 + t^2))
        return 2.0 * c * math.sqrt(2.0 / (4.0 * q * (1.0 - q)))
    if df > _CF_DF:  # the incomplete beta route loses ~df*1e-16 in lgamma differences
        return _t_isf_cornish_fisher(q, df)
    if c < 0.25:  # f increasing in t: f = P(0 < T < t) - c
        def f_of(t: float) -> float:
            return _t_central(t, df) - c
    else:
        def f_of(t: float) -> float:
            return q - _t_sf(t, df)
    lo, hi = 0.0, max(_t_isf_cornish_fisher(q, df), 1.0)
    while f_of(hi) < 0:  # bracket
        lo, hi = hi, 2.0 * hi
    t = min(max(_t_isf_cornish_fisher(q, df), lo), hi)
    for _ in range(200):
        f = f_of(t)
        if f < 0:
            lo = t
        else:
            hi = t
        t_new = t - f / _t_pdf(t, df)  # f' = pdf
        if not lo < t_new < hi:
            t_new = 0.5 * (lo + hi)
        if abs(t_new - t) <= 2e-15 * abs(t_new) or hi - lo <= 2e-15 * hi:
            return t_new
        t = t_new
    return t  # pragma: no cover


# ==========================================================================
# power-law fit
# ==========================================================================


class PowerLawFit(NamedTuple):
    """Least-squares fit of ``log y = intercept + slope log x`` (natural logs).

    ``slope_ci95`` is the 95 % confidence interval ``(lo, hi)`` of the slope
    from the t-distribution with ``n - 2`` degrees of freedom (``nan`` when
    ``n = 2``); ``r2`` the coefficient of determination in log-log space;
    ``n`` the number of points used.
    """

    slope: float
    intercept: float
    slope_ci95: tuple[float, float]
    r2: float
    n: int

    def predict(self, x: ArrayLike) -> np.ndarray:
        """The fitted power law ``exp(intercept) x^slope``."""
        return np.exp(self.intercept) * np.asarray(x, dtype=np.float64) ** self.slope


def fit_power_law(x: ArrayLike, y: ArrayLike) -> PowerLawFit:
    """Fit ``y = exp(intercept) x^slope`` by least squares on ``(log x, log y)``.

    Points with a non-positive or non-finite ``x`` or ``y`` are ignored.
    Raises ``ValueError`` if ``x`` and ``y`` differ in size, or fewer than 2
    usable points remain, or all usable ``x`` are equal.
    """
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same number of points (got {xa.size} and {ya.size})")
    ok = np.isfinite(xa) & np.isfinite(ya) & (xa > 0) & (ya > 0)
    n = int(ok.sum())
    if n < 2:
        raise ValueError(
            f"a power-law fit needs at least 2 points with positive finite x and y (got {n})"
        )
    lx, ly = np.log(xa[ok]), np.log(ya[ok])
    mx, my = lx.mean(), ly.mean()
    sxx = float(np.sum((lx - mx) ** 2))
    if sxx == 0.0:
        raise ValueError("a power-law fit needs at least 2 distinct x values")
    slope = float(np.sum((lx - mx) * (ly - my)) / sxx)
    intercept = float(my - slope * mx)
    ss_res = float(np.sum((ly - intercept - slope * lx) ** 2))
    ss_tot = float(np.sum((ly - my) ** 2))
    r2 = 1.0 if ss_res == 0.0 else (1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"))
    if n > 2:
        se = math.sqrt(ss_res / (n - 2) / sxx)
        half = t_quantile(0.975, n - 2) * se
        ci = (slope - half, slope + half)
    else:
        ci = (float("nan"), float("nan"))
    return PowerLawFit(slope, intercept, ci, r2, n)


def format_fit(fit: PowerLawFit, digits: int = 3) -> str:
    """One-line description, e.g. ``"slope 1.02 [0.98, 1.06] (R^2 0.999, n 12)"``."""
    lo, hi = fit.slope_ci95
    ci = "" if math.isnan(lo) else f" [{format_si(lo, digits)}, {format_si(hi, digits)}]"
    return f"slope {format_si(fit.slope, digits)}{ci} (R^2 {fit.r2:.3f}, n {fit.n})"


# ==========================================================================
# one-run summary
# ==========================================================================


@dataclass(frozen=True)
class BoundAtT:
    """One bound at the summary time.

    ``kind``: ``"upper"`` (upper bound on the gap, checked), ``"lower"``
    (Theorem 1.3, checked only on the converse model at its own horizon with
    ``sign = +1``), ``"weight"`` (Prop. 3.1, compared with the weight changes),
    ``"reference"`` (not a bound on the measured gap: Theorem 3.2 bounds the
    frozen-kernel residual, Corollary 2.2 has unspecified constants).
    ``measured`` is the quantity the bound is compared with, ``ratio`` is
    ``value / measured`` (how loose an upper bound is), ``checked`` says
    whether a violation test was made and ``violated`` its outcome.
    """

    name: str
    label: str
    kind: str
    value: float
    measured: float
    ratio: float
    valid: bool
    checked: bool
    violated: bool


@dataclass(frozen=True)
class Summary:
    """Digest of one run at its last reached time ``t`` (``T`` for a complete run).

    ``gap_T`` is the gap at ``t``, ``relative_gap_T = gap_T / sqrt(2 R0)``
    (the gap relative to the initial residual norm); ``kappa``, ``lip_dh``
    and ``lip_dh_kind`` are copied from the run (``lip_dh_kind`` is
    ``"exact"`` or ``"upper_bound"``); ``lip_dh_path_max`` is the largest
    finite ``lip_dh_path`` value (a lower estimate of Lip(Dh) on the visited
    ball, NaN if not measured); ``bounds`` maps each name of ``run.bounds()``
    to a :class:`BoundAtT`; ``violated`` lists the names of violated bounds;
    ``verdict`` is the one-line text for the TUI and CLI.
    """

    family: str
    alpha: float
    T: float
    t: float
    R0: float
    kappa: float
    lip_dh: float
    lip_dh_kind: str
    lip_dh_path_max: float
    gap_T: float
    relative_gap_T: float
    bounds: dict[str, BoundAtT]
    stats: dict[str, Any]
    status: str
    violated: tuple[str, ...]
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (floats may be inf/nan)."""
        return asdict(self)


_BOUND_KINDS: tuple[tuple[str, str, str], ...] = (
    # (normalised-name pattern, kind, label)
    (r"prop\w*1_?1", "upper", "Prop 1.1"),
    (r"prop\w*3_?1|weight", "weight", "Prop 3.1"),
    (r"(theorem|thm)\w*1_?2", "upper", "Theorem 1.2"),
    (r"(theorem|thm)\w*1_?3|lower|converse", "lower", "Theorem 1.3"),
    (r"(theorem|thm)\w*3_?2|frozen", "reference", "Theorem 3.2"),
    (r"(corollary|cor)\w*2_?2", "reference", "Corollary 2.2"),
)


def _classify(name: str) -> tuple[str, str]:
    """Kind and display label of a bound from its name (as returned by ``run.bounds()``)."""
    key = re.sub(r"[^a-z0-9]+", "_", name.lower())
    for pattern, kind, label in _BOUND_KINDS:
        if re.search(pattern, key):
            return kind, label
    return "reference", name


def _arr(run: Any, attr: str) -> np.ndarray:
    v = getattr(run, attr, None)
    if v is None:
        return np.full(len(np.atleast_1d(run.times)), np.nan)
    return np.asarray(v, dtype=np.float64)


def _bound_parts(b: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(b, "value") and hasattr(b, "valid"):
        return np.asarray(b.value, dtype=np.float64), np.asarray(b.valid, dtype=bool)
    value, valid = b
    return np.asarray(value, dtype=np.float64), np.asarray(valid, dtype=bool)


def _exceeds(measured: float, bound: float) -> bool:
    """``measured > bound`` beyond the relative margin ``VIOLATION_RTOL``."""
    return measured - bound > VIOLATION_RTOL * max(abs(measured), abs(bound))


def _last_index(times: np.ndarray, gap: np.ndarray) -> int:
    finite = np.flatnonzero(np.isfinite(gap) & np.isfinite(times))
    return int(finite[-1]) if finite.size else -1


def summarize(run: Any) -> Summary:
    """Summarise a ``Run`` (or any object with its attributes, see docs/api.md).

    Everything is read at the last time with a finite gap (``T`` for a
    complete run; earlier for a partial or failed one). Bounds come from
    ``run.bounds()``; each is classified by name (see :class:`BoundAtT`).
    The relative gap is ``gap / sqrt(2 R0) = ||r - rbar|| / ||r(0)||``.
    """
    times = np.atleast_1d(np.asarray(run.times, dtype=np.float64))
    gap = _arr(run, "gap")
    i = _last_index(times, gap)
    t = float(times[i]) if i >= 0 else float("nan")
    gap_t = float(gap[i]) if i >= 0 else float("nan")
    R0 = float(run.R0)
    scale = math.sqrt(2.0 * R0)
    rel = gap_t / scale if scale > 0 else (0.0 if gap_t == 0 else float("nan"))
    path = _arr(run, "lip_dh_path")
    path_max = float(np.nanmax(path)) if np.isfinite(path).any() else float("nan")
    params = dict(getattr(run, "params", {}) or {})
    wcs = [_at(_arr(run, a), i) for a in ("weight_change", "weight_change_lin")]
    wc = max((w for w in wcs if not math.isnan(w)), default=float("nan"))

    bounds: dict[str, BoundAtT] = {}
    raw = run.bounds() if callable(getattr(run, "bounds", None)) else {}
    for name, b in raw.items():
        value, valid = _bound_parts(b)
        kind, label = _classify(name)
        v = _at(value, i)
        ok = bool(valid[i]) if i >= 0 and valid.ndim and valid.size > i else bool(valid.all())
        measured = wc if kind == "weight" else gap_t
        ratio = _ratio(v, measured)
        checked, broken = _check(kind, v, ok, measured, run, params, t)
        bounds[name] = BoundAtT(name, label, kind, v, measured, ratio, ok, checked, broken)

    violated = tuple(name for name, b in bounds.items() if b.violated)
    status = str(getattr(run, "status", "ok"))
    T = float(run.T)
    return Summary(
        family=str(getattr(run, "family", "")),
        alpha=float(run.alpha),
        T=T,
        t=t,
        R0=R0,
        kappa=float(getattr(run, "kappa", float("nan"))),
        lip_dh=float(getattr(run, "lip_dh", float("nan"))),
        lip_dh_kind=str(getattr(run, "lip_dh_kind", "")),
        lip_dh_path_max=path_max,
        gap_T=gap_t,
        relative_gap_T=rel,
        bounds=bounds,
        stats=dict(getattr(run, "stats", {}) or {}),
        status=status,
        violated=violated,
        verdict=_verdict(gap_t, rel, t, T, bounds, violated, status),
    )


def _ratio(value: float, measured: float) -> float:
    """``value / measured``; ``inf`` for a positive value over a zero measurement."""
    if math.isnan(measured) or math.isnan(value):
        return float("nan")
    if measured > 0:
        return value / measured
    return float("inf") if value > 0 else float("nan")


def _at(a: np.ndarray, i: int) -> float:
    if a.ndim == 0:
        return float(a)
    return float(a[i]) if i >= 0 and a.size > i else float("nan")


def _check(
    kind: str, value: float, valid: bool, measured: float, run: Any, params: Mapping[str, Any], t: float
) -> tuple[bool, bool]:
    """Whether a bound was checked against the measurement, and whether it failed."""
    if not valid or not math.isfinite(measured) or math.isnan(value):
        return False, False
    if kind in ("upper", "weight"):
        return True, _exceeds(measured, value)
    if kind == "lower":
        applies = (
            str(getattr(run, "family", "")) == "converse"
            and float(params.get("sign", 1)) > 0
            and _close(float(params.get("T", float("nan"))), t)
        )
        return (applies, applies and _exceeds(value, measured))
    return False, False


def _close(a: float, b: float) -> bool:
    return math.isfinite(a) and abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def _verdict(
    gap: float,
    rel: float,
    t: float,
    T: float,
    bounds: Mapping[str, BoundAtT],
    violated: tuple[str, ...],
    status: str,
) -> str:
    """The one-line verdict shown by the TUI and the CLI."""
    if math.isnan(gap):
        return f"no measurement ({status})" if status != "ok" else "no measurement"
    at = "T" if _close(t, T) else f"t={format_si(t)}"
    if violated:
        b = bounds[violated[0]]
        more = f" (+{len(violated) - 1} more)" if len(violated) > 1 else ""
        if b.kind == "lower":
            rel_word = "above measured"
        else:
            rel_word = "below measured"
        what = "weight change" if b.kind == "weight" else "gap"
        text = (
            f"VIOLATED: {b.label} bound {format_si(b.value)} {rel_word} {what} "
            f"{format_si(b.measured)} at {at}{more}"
        )
    else:
        if gap == 0:
            head = f"NTK approximation exact (gap 0) at {at}"
        elif rel > BREAKDOWN_RELATIVE_GAP:
            head = f"NTK approximation breaks down at {at}: gap {format_si(gap)} (relative {format_si(rel)})"
        else:
            head = f"NTK approximation holds to {format_si(gap)} at {at} (relative {format_si(rel)})"
        text = head + _tail(bounds, gap)
    if status != "ok":
        text += f" [run {status}]"
    return text


def _tail(bounds: Mapping[str, BoundAtT], gap: float) -> str:
    """``"; Theorem 1.2 bound is 4.1x loose"`` (or why it is not reported)."""
    upper = [b for b in bounds.values() if b.kind == "upper"]
    main = next((b for b in upper if b.label == "Theorem 1.2"), None)
    if main is None:
        main = next((b for b in upper if b.valid), None)
    if main is None:
        return ""
    if not main.valid:
        return f"; {main.label} not valid at this time"
    if gap == 0:
        return f"; {main.label} bound {format_si(main.value)}"
    return f"; {main.label} bound is {format_ratio(main.ratio)} loose"
