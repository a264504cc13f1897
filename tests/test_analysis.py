"""Tests of ntk_tui.analysis: power-law fits, the t quantile, summaries and formatting."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats

import ntk_tui.analysis as A
import ntk_tui.bounds as B
from reference import converse_model, run_model

# --------------------------------------------------------------------------
# t quantile
# --------------------------------------------------------------------------

DFS = [1, 2, 3, 4, 4.5, 7, 10, 30, 100, 1000, 1999, 2001, 1e4, 1e6, 1e9]
PS = [1e-12, 1e-6, 0.001, 0.025, 0.1, 0.25, 0.4, 0.499, 0.6, 0.75, 0.9, 0.975, 0.995, 1 - 1e-9]


@pytest.mark.parametrize("df", DFS)
def test_t_quantile_matches_scipy(df: float) -> None:
    for p in PS:
        # scipy (Boost) is accurate to ~1e-13 here; our continued fraction / Cornish-Fisher
        # reach ~1e-12 (the worst case, df just above 2000 in the far tail): 1e-10 is safe
        assert A.t_quantile(p, df) == pytest.approx(scipy.stats.t.ppf(p, df), rel=1e-10), p


def test_t_quantile_near_median_and_special_cases() -> None:
    # near p = 1/2 scipy itself loses ~1e-9 relative; compare with exact closed forms instead
    for p in (0.5 + 1e-7, 0.5 - 3e-9):
        c = p - 0.5
        assert A.t_quantile(p, 1) == pytest.approx(math.tan(math.pi * c), rel=1e-13)
        assert A.t_quantile(p, 2) == pytest.approx(2 * c * math.sqrt(2 / (4 * (0.5 - c) * (0.5 + c))), rel=1e-13)
        # for every df the quantile is c / pdf(0) + O(c^3) (odd function): relative error ~c^2
        pdf0 = scipy.stats.t.pdf(0.0, 5)
        assert A.t_quantile(p, 5) == pytest.approx(c / pdf0, rel=1e-9)
    assert A.t_quantile(0.5, 3) == 0.0
    assert A.t_quantile(0.975, math.inf) == pytest.approx(scipy.stats.norm.ppf(0.975), rel=1e-14)
    for df in (3, 12.5):
        # 1 - 0.99 != 0.01 in binary: allow a few ulps
        assert A.t_quantile(0.01, df) == pytest.approx(-A.t_quantile(0.99, df), rel=1e-14)


@pytest.mark.parametrize("p, df", [(0.0, 3), (1.0, 3), (-0.1, 3), (0.5, 0), (0.5, -1), (0.5, math.nan)])
def test_t_quantile_bad_inputs(p: float, df: float) -> None:
    with pytest.raises(ValueError):
        A.t_quantile(p, df)


# --------------------------------------------------------------------------
# power-law fit
# --------------------------------------------------------------------------


def test_fit_recovers_slope_with_ci(rng: np.random.Generator) -> None:
    x = np.geomspace(1.0, 1e4, 30)
    y = 3.0 * x**1.5 * np.exp(0.05 * rng.standard_normal(30))
    fit = A.fit_power_law(x, y)
    lo, hi = fit.slope_ci95
    assert lo < 1.5 < hi
    # standard error of the slope = 0.05 / sqrt(Sxx) = 0.05 / 13.4 = 0.0037 -> half width ~0.0077
    assert 0.003 < hi - lo < 0.03
    assert fit.intercept == pytest.approx(math.log(3.0), abs=0.1)
    assert fit.r2 > 0.999 and fit.n == 30
    np.testing.assert_allclose(fit.predict(x), np.exp(fit.intercept) * x**fit.slope)


def test_fit_ci_coverage_uses_t_distribution(rng: np.random.Generator) -> None:
    # 5 points (3 degrees of freedom): t_{0.975,3} = 3.18 vs the normal 1.96, so a CI built
    # with the normal quantile covers only ~86 %. Over 600 replicates the coverage estimate
    # has a standard error of 0.009; [0.925, 0.975] is +-2.7 standard errors around 0.95.
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    hits = 0
    for _ in range(600):
        y = x**-0.5 * np.exp(0.2 * rng.standard_normal(5))
        lo, hi = A.fit_power_law(x, y).slope_ci95
        hits += lo <= -0.5 <= hi
    assert 0.925 <= hits / 600 <= 0.975


def test_fit_exact_data_and_ignored_points() -> None:
    x = np.array([0.0, -1.0, 1.0, 2.0, np.nan, 4.0, 8.0, np.inf])
    y = np.array([1.0, 1.0, 5.0, 5.0 * 2**-2, 3.0, 5.0 * 4**-2, 5.0 * 8**-2, 1.0])
    fit = A.fit_power_law(x, y)
    assert fit.n == 4
    assert fit.slope == pytest.approx(-2.0, rel=1e-12)
    assert fit.intercept == pytest.approx(math.log(5.0), rel=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    lo, hi = fit.slope_ci95
    assert hi - lo < 1e-10  # residuals are round-off only
    y_neg = np.array([1.0, 2.0, -3.0, 4.0])
    assert A.fit_power_law([1, 2, 3, 4], y_neg).n == 3


def test_fit_two_points_has_no_ci() -> None:
    fit = A.fit_power_law([1.0, 10.0], [2.0, 20.0])
    assert fit.slope == pytest.approx(1.0, rel=1e-12) and fit.n == 2
    assert all(math.isnan(v) for v in fit.slope_ci95)


@pytest.mark.parametrize(
    "x, y, words",
    [
        ([1.0], [1.0], "at least 2 points"),
        ([1.0, -2.0, 3.0], [1.0, 1.0, -1.0], "at least 2 points"),
        ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0], "distinct x"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], "same number of points"),
    ],
)
def test_fit_bad_inputs(x, y, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        A.fit_power_law(x, y)


def test_format_fit() -> None:
    fit = A.PowerLawFit(1.0213, 0.3, (0.98, 1.062), 0.99912, 12)
    assert A.format_fit(fit) == "slope 1.02 [0.980, 1.06] (R^2 0.999, n 12)"


# --------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, digits, text",
    [
        (1.3e-3, 2, "1.3e-3"),
        (0.0047, 2, "4.7e-3"),
        (-0.0047, 2, "-4.7e-3"),
        (0.5203, 2, "0.52"),
        (4.123, 2, "4.1"),
        (123.0, 2, "120"),
        (123.0, 3, "123"),
        (999.6, 2, "1.0e3"),
        (0.00996, 2, "0.010"),
        (2.5e6, 2, "2.5e6"),
        (1.0e-12, 3, "1.00e-12"),
        (0.0, 2, "0"),
        (math.inf, 2, "inf"),
        (-math.inf, 2, "-inf"),
        (math.nan, 2, "nan"),
    ],
)
def test_format_si(x: float, digits: int, text: str) -> None:
    assert A.format_si(x, digits) == text


def test_format_ratio_and_bad_digits() -> None:
    assert A.format_ratio(4.1234) == "4.1x"
    with pytest.raises(ValueError):
        A.format_si(1.0, 0)


# --------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------


def _bounds_fn(**values):
    """run.bounds() returning Bound objects with the given (value, valid) arrays."""
    return lambda: {k: B.Bound(np.asarray(v), np.asarray(ok)) for k, (v, ok) in values.items()}


def _run(gap, R0=0.5, bounds=None, **kw) -> SimpleNamespace:
    gap = np.asarray(gap, dtype=float)
    k = len(gap)
    base = dict(
        family="twolayer", params={}, alpha=10.0, T=2.0, R0=R0, rho=math.inf, lip_dh=3.0,
        lip_dh_kind="upper_bound", lip_h=math.inf, kappa=0.4, times=np.linspace(0.5, 2.0, k),
        gap=gap, weight_change=np.full(k, 0.01), weight_change_lin=np.full(k, 0.01),
        lip_dh_path=np.array([np.nan] + [0.2] * (k - 2) + [0.7]), status="ok",
        stats={"nfev": 100, "method": "dop853"},
        bounds=bounds or _bounds_fn(),
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_summary_holds_verdict_and_fields() -> None:
    # R0 = 0.5 -> sqrt(2 R0) = 1, so the relative gap equals the gap
    run = _run([1e-4, 1.3e-3], bounds=_bounds_fn(
        theorem_1_2=([0.0, 4.1 * 1.3e-3], [True, True]),
        prop_1_1=([0.0, 1.0], [True, True]),
        prop_3_1=([0.0, 0.02], [True, True]),
        corollary_2_2=([0.0, 1e-6], [True, True]),  # unspecified constants: never "violated"
    ))
    s = A.summarize(run)
    assert s.verdict == "NTK approximation holds to 1.3e-3 at T (relative 1.3e-3); Theorem 1.2 bound is 4.1x loose"
    assert s.gap_T == 1.3e-3 and s.relative_gap_T == pytest.approx(1.3e-3) and s.t == 2.0
    assert s.lip_dh_path_max == 0.7 and s.lip_dh_kind == "upper_bound" and s.lip_dh == 3.0
    assert s.R0 == 0.5 and s.kappa == 0.4 and s.stats["nfev"] == 100
    assert s.violated == ()
    b = s.bounds["theorem_1_2"]
    assert (b.kind, b.label, b.valid, b.checked) == ("upper", "Theorem 1.2", True, True)
    assert b.ratio == pytest.approx(4.1)
    assert s.bounds["prop_3_1"].kind == "weight" and s.bounds["prop_3_1"].ratio == pytest.approx(2.0)
    assert s.bounds["corollary_2_2"].kind == "reference" and not s.bounds["corollary_2_2"].checked
    assert s.to_dict()["bounds"]["theorem_1_2"]["value"] == pytest.approx(4.1 * 1.3e-3)


def test_summary_relative_gap_uses_sqrt_2R0() -> None:
    s = A.summarize(_run([0.0, 0.02], R0=2.0, bounds=_bounds_fn(theorem_1_2=([0, 1.0], [True, True]))))
    assert s.relative_gap_T == pytest.approx(0.01)  # 0.02 / sqrt(4)
    assert "holds to 0.020 at T (relative 0.010)" in s.verdict and "50x loose" in s.verdict


def test_summary_breaks_down() -> None:
    s = A.summarize(_run([0.1, 0.3], bounds=_bounds_fn(theorem_1_2=([0, 2.0], [True, True]))))
    assert s.verdict.startswith("NTK approximation breaks down at T: gap 0.30 (relative 0.30)")
    assert "6.7x loose" in s.verdict


def test_summary_violated_only_when_valid_and_beyond_tolerance() -> None:
    bad = _run([0.0, 1.3e-3], bounds=_bounds_fn(theorem_1_2=([0, 1.0e-3], [True, True])))
    s = A.summarize(bad)
    assert s.violated == ("theorem_1_2",)
    assert s.verdict.startswith("VIOLATED: Theorem 1.2 bound 1.0e-3 below measured gap 1.3e-3 at T")
    invalid = _run([0.0, 1.3e-3], bounds=_bounds_fn(theorem_1_2=([0, 1.0e-3], [True, False])))
    s = A.summarize(invalid)
    assert s.violated == () and "VIOLATED" not in s.verdict and "not valid" in s.verdict
    # equal up to 1e-12 relative: integration round-off, not a violation
    tie = _run([0.0, 1.3e-3 * (1 + 1e-12)], bounds=_bounds_fn(theorem_1_2=([0, 1.3e-3], [True, True])))
    assert A.summarize(tie).violated == ()
    over = _run([0.0, 1.3e-3 * (1 + 1e-8)], bounds=_bounds_fn(theorem_1_2=([0, 1.3e-3], [True, True])))
    assert A.summarize(over).violated == ("theorem_1_2",)


def test_summary_weight_bound_violation() -> None:
    run = _run([0.0, 1e-3], bounds=_bounds_fn(prop_3_1=([0, 0.005], [True, True])),
               weight_change_lin=np.array([0.0, 0.009]))
    s = A.summarize(run)
    assert s.violated == ("prop_3_1",)
    assert "Prop 3.1 bound 5.0e-3 below measured weight change 0.010" in s.verdict


def test_summary_lower_bound_checked_only_on_converse_at_its_horizon() -> None:
    bounds = _bounds_fn(theorem_1_3_lower=([0, 0.2], [True, True]))
    conv = dict(family="converse", params={"T": 2.0, "R0": 0.5, "lip_dh": 1.0, "sign": 1})
    s = A.summarize(_run([0.0, 0.1], bounds=bounds, **conv))
    assert s.violated == ("theorem_1_3_lower",) and "above measured gap" in s.verdict
    other = A.summarize(_run([0.0, 0.1], bounds=bounds))  # not the converse model
    assert other.violated == () and not other.bounds["theorem_1_3_lower"].checked
    conv_neg = dict(family="converse", params={"T": 2.0, "sign": -1})
    assert A.summarize(_run([0.0, 0.1], bounds=bounds, **conv_neg)).violated == ()
    conv_longer = dict(family="converse", params={"T": 1.0, "sign": 1})  # run beyond the model's T
    assert A.summarize(_run([0.0, 0.1], bounds=bounds, **conv_longer)).violated == ()


def test_summary_partial_run_and_exact_gap() -> None:
    run = _run([1e-5, 2e-4, np.nan, np.nan], status="failed: max_steps",
               bounds=_bounds_fn(theorem_1_2=([0, 1e-3, np.nan, np.nan], [True] * 4)))
    s = A.summarize(run)
    assert s.t == 1.0 and s.gap_T == 2e-4
    assert s.verdict.startswith("NTK approximation holds to 2.0e-4 at t=1.0 ")
    assert s.verdict.endswith("[run failed: max_steps]")
    lin = A.summarize(_run([0.0, 0.0], family="linear", bounds=_bounds_fn(theorem_1_2=([0, 0], [True, True]))))
    assert lin.verdict == "NTK approximation exact (gap 0) at T; Theorem 1.2 bound 0"
    none = A.summarize(_run([np.nan, np.nan], status="failed: diverged"))
    assert none.verdict == "no measurement (failed: diverged)"


def test_summary_of_reference_converse_run_agrees_with_theory() -> None:
    # an end-to-end check with real numbers: the reference converse run, the bounds of
    # ntk_tui.bounds, and the summary must find Theorem 1.2 and Theorem 1.3 satisfied
    T, R0, lip, alpha = 2.0, 0.5, 1.0, 4.0
    times = np.geomspace(1e-3, T, 8)
    ref = run_model(converse_model(T, R0, lip, 1), alpha, times)
    run = SimpleNamespace(
        family="converse", params={"T": T, "R0": R0, "lip_dh": lip, "sign": 1}, alpha=alpha, T=T, R0=ref.R0,
        lip_dh=lip, lip_dh_kind="exact", kappa=float(B.kappa(T, alpha, R0, lip)), times=times, gap=ref.gap,
        weight_change=ref.weight_change, weight_change_lin=ref.weight_change_lin, lip_dh_path=ref.lip_dh_path,
        status="ok", stats={},
        bounds=lambda: {
            "theorem_1_2": B.theorem_1_2(times, alpha, R0, lip),
            "theorem_1_3_lower": B.theorem_1_3_lower(times, alpha, R0, lip),
            "prop_3_1": B.prop_3_1(times, alpha, R0),
        },
    )
    s = A.summarize(run)
    assert s.violated == ()
    assert all(b.checked for b in s.bounds.values())
    # kappa = 0.354: gap/sqrt(R0) = 0.16 (reference) vs 6 kappa = 2.1, i.e. ~13x loose
    assert 5 < s.bounds["theorem_1_2"].ratio < 30
    assert s.lip_dh_path_max == pytest.approx(lip, rel=1e-9)  # |J(w) - J0| / |w - w0| = |b| exactly
    assert "breaks down" in s.verdict  # relative gap 0.11 > 0.1
