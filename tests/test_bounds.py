"""Tests of ntk_tui.bounds (THEORY.md section 3) and of the reference solver in tests/reference.py.

Hand-derived values are written as literals computed on paper from the
corrected formulas of THEORY.md; they are compared with a relative tolerance
of 1e-12 (a few ulps of the handful of float operations involved).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

import ntk_tui.bounds as B
from reference import converse_model, converse_scaled_gap, linear_model, run_model, twolayer_f, \
    twolayer_init, twolayer_jac_f, twolayer_model

HAND = dict(rel=1e-12, abs=1e-15)  # float round-off of a few operations


# --------------------------------------------------------------------------
# hand-derived values
# --------------------------------------------------------------------------


def test_kappa_hand_value() -> None:
    # t Lip(Dh) sqrt(R0) / alpha = 2 * 3 * 0.5 / 6
    assert float(B.kappa(2.0, 6.0, 0.25, 3.0)) == pytest.approx(0.5, **HAND)


def test_prop_1_1_hand_values_and_validity() -> None:
    # t^2 Lip(h)^2 Lip(Dh) R0 / alpha = 4 * 9 * 0.5 * 2 / 10 = 3.6
    b = B.prop_1_1(2.0, 10.0, 2.0, 3.0, 0.5, rho=1.0)
    assert float(b.value) == pytest.approx(3.6, **HAND)
    # valid until alpha rho / (Lip(h) sqrt R0) = 10 / (3 sqrt 2) = 2.357...
    assert float(B.prop_1_1_valid_until(10.0, 2.0, 3.0, 1.0)) == pytest.approx(10 / (3 * math.sqrt(2)), **HAND)
    masks = B.prop_1_1(np.array([0.0, 2.0, 2.35, 2.36, 3.0]), 10.0, 2.0, 3.0, 0.5, rho=1.0).valid
    assert masks.tolist() == [True, True, True, False, False]
    # the seed's literal form t Lip(h)^2 kappa R0 would give 3.6 * sqrt(R0) = 5.09 here
    assert float(b.value) != pytest.approx(3.6 * math.sqrt(2.0), rel=1e-3)


def test_prop_3_1_hand_value() -> None:
    # sqrt(t R0) / alpha = sqrt(8 * 2) / 4 = 1 (the seed's sqrt(t R0 / alpha) would be 2)
    b = B.prop_3_1(8.0, 4.0, 2.0)
    assert float(b.value) == pytest.approx(1.0, **HAND)
    assert bool(b.valid)


def test_theorem_1_2_hand_values() -> None:
    # 6 kappa sqrt(R0) = 6 t Lip(Dh) R0 / alpha = 6 * 0.1 * 3 * 0.5 / 4 = 0.225
    assert float(B.theorem_1_2(0.1, 4.0, 0.5, 3.0).value) == pytest.approx(0.225, **HAND)
    # saturated: sqrt(8 R0) = sqrt(4) = 2 (the seed's 8 R0 would be 4)
    assert float(B.theorem_1_2(2.0, 4.0, 0.5, 3.0).value) == pytest.approx(2.0, **HAND)
    # exactly at the crossover 6 kappa sqrt(R0) = sqrt(8 R0): t = alpha sqrt(8 R0) / (6 L R0)
    t_star = 4.0 * 2.0 / (6 * 3.0 * 0.5)
    assert float(B.theorem_1_2(t_star, 4.0, 0.5, 3.0).value) == pytest.approx(2.0, **HAND)


def test_theorem_3_2_hand_values() -> None:
    # 3 t Lip(Dh) R0 / alpha = 3 * 0.1 * 3 * 0.5 / 4 = 0.1125; saturation sqrt(8 * 0.5) = 2
    assert float(B.theorem_3_2(0.1, 4.0, 0.5, 3.0).value) == pytest.approx(0.1125, **HAND)
    assert float(B.theorem_3_2(5.0, 4.0, 0.5, 3.0).value) == pytest.approx(2.0, **HAND)


def test_theorem_1_3_lower_hand_values() -> None:
    # kappa = t L sqrt(R0)/alpha = 0.5 * 1 * 2 / 2 = 0.5 -> min(0.5*2/5, 2/5) = 0.2
    assert float(B.theorem_1_3_lower(0.5, 2.0, 4.0, 1.0).value) == pytest.approx(0.2, **HAND)
    # kappa = 3 -> saturated at sqrt(R0)/5 = 0.4 (the seed's R0/5 would be 0.8)
    b = B.theorem_1_3_lower(3.0, 2.0, 4.0, 1.0)
    assert float(b.value) == pytest.approx(0.4, **HAND)
    assert bool(b.valid)


def test_corollary_2_2_hand_values_and_validity() -> None:
    b = B.corollary_2_2(np.array([5.0, 10.0, 50.0]), 10.0, C=2.0, c=0.1)
    np.testing.assert_allclose(b.value, [1.0, 2.0, 2.0], rtol=1e-12)  # C min(t/alpha, 1)
    assert b.valid.tolist() == [True, True, False]  # valid until c alpha^2 = 10
    assert float(B.corollary_2_2_valid_until(10.0, 0.1)) == pytest.approx(10.0, **HAND)


def test_lemma_3_3_rhs_hand_value() -> None:
    assert float(B.lemma_3_3_rhs(4.0, 0.3)) == pytest.approx(1.2, **HAND)  # 2 sqrt(4) 0.3


def test_validity_ends() -> None:
    # alpha^2 rho^2 / R0 = 4 * 0.25 / 0.25 = 4
    assert float(B.theorem_1_2_valid_until(2.0, 0.25, 0.5)) == pytest.approx(4.0, **HAND)
    assert float(B.validity_end("theorem_1_2", alpha=2.0, R0=0.25, rho=0.5)) == pytest.approx(4.0, **HAND)
    assert float(B.validity_end("theorem_3_2", alpha=2.0, R0=0.25, rho=0.5)) == pytest.approx(4.0, **HAND)
    assert float(B.validity_end("corollary_2_2", alpha=3.0, c=2.0)) == pytest.approx(18.0, **HAND)
    assert float(B.validity_end("prop_3_1")) == math.inf
    assert float(B.validity_end("theorem_1_3_lower", alpha=1.0)) == math.inf
    assert float(B.theorem_1_2_valid_until(2.0, 0.25)) == math.inf  # rho = inf
    assert float(B.theorem_1_2_valid_until(2.0, 0.0, 0.5)) == math.inf  # R0 = 0: nothing moves
    assert float(B.prop_1_1_valid_until(2.0, 1.0, np.inf, 0.5)) == 0.0
    b = B.theorem_1_2(np.array([3.9, 4.0, 4.1]), 2.0, 0.25, 1.0, rho=0.5)
    assert b.valid.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="unknown bound"):
        B.validity_end("theorem_9_9", alpha=1.0)


def test_zero_times_infinity_convention() -> None:
    # Lip(Dh) unknown (inf): at t = 0 the gap is 0, later Theorem 1.2 is the trivial sqrt(8 R0)
    assert float(B.theorem_1_2(0.0, 1.0, 0.5, np.inf).value) == 0.0
    assert float(B.theorem_1_2(1.0, 1.0, 0.5, np.inf).value) == pytest.approx(2.0, **HAND)
    # a linear model (Lip(Dh) = 0) with unknown Lip(h): Prop 1.1 gives exactly 0
    assert float(B.prop_1_1(3.0, 1.0, 0.5, np.inf, 0.0).value) == 0.0
    # R0 = 0: every bound is 0 and valid forever
    for b in (B.theorem_1_2(1e9, 1.0, 0.0, 2.0, rho=1.0), B.prop_3_1(np.inf, 1.0, 0.0)):
        assert float(b.value) == 0.0 and bool(b.valid)


# --------------------------------------------------------------------------
# broadcasting
# --------------------------------------------------------------------------


def test_broadcasting_matches_scalar_calls() -> None:
    t = np.array([0.0, 0.3, 1.0, 7.0, 40.0])[:, None]
    alpha = np.array([0.5, 2.0, 30.0])
    R0, lip = 0.7, np.array([1.5, 0.2, 4.0])
    cases = [
        (B.theorem_1_2, dict(R0=R0, lip_dh=lip, rho=0.8)),
        (B.theorem_3_2, dict(R0=R0, lip_dh=lip, rho=0.8)),
        (B.theorem_1_3_lower, dict(R0=R0, lip_dh=lip)),
        (B.prop_1_1, dict(R0=R0, lip_h=2.0, lip_dh=lip, rho=0.8)),
        (B.prop_3_1, dict(R0=R0)),
        (B.corollary_2_2, dict(C=1.5, c=0.5)),
    ]
    for fn, kw in cases:
        out = fn(t, alpha, **kw)
        assert out.value.shape == (5, 3) and out.valid.shape == (5, 3), fn.__name__
        assert out.valid.dtype == bool
        for i in range(5):
            for j in range(3):
                kw_ij = {k: (v[j] if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
                one = fn(float(t[i, 0]), float(alpha[j]), **kw_ij)
                assert float(one.value) == out.value[i, j], fn.__name__
                assert bool(one.valid) == out.valid[i, j], fn.__name__


def test_scalar_inputs_give_0d_arrays() -> None:
    b = B.theorem_1_2(1.0, 2.0, 0.5, 1.0)
    assert isinstance(b, B.Bound) and b.value.shape == () and b.valid.shape == ()
    assert B.kappa([1.0, 2.0], 1.0, 1.0, 1.0).shape == (2,)


# --------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: B.theorem_1_2(1.0, 0.0, 1.0, 1.0), "alpha"),
        (lambda: B.theorem_1_2(1.0, -2.0, 1.0, 1.0), "alpha"),
        (lambda: B.theorem_1_2(1.0, np.inf, 1.0, 1.0), "alpha"),
        (lambda: B.theorem_1_2(1.0, np.nan, 1.0, 1.0), "alpha"),
        (lambda: B.theorem_1_2(1.0, 1.0, -0.1, 1.0), "R0"),
        (lambda: B.theorem_1_2(1.0, 1.0, np.inf, 1.0), "R0"),
        (lambda: B.theorem_1_2(-1.0, 1.0, 1.0, 1.0), "t"),
        (lambda: B.theorem_1_2([1.0, np.nan], 1.0, 1.0, 1.0), "t"),
        (lambda: B.theorem_1_2(1.0, 1.0, 1.0, -1.0), "lip_dh"),
        (lambda: B.theorem_1_2(1.0, 1.0, 1.0, 1.0, rho=-1.0), "rho"),
        (lambda: B.prop_1_1(1.0, 1.0, 1.0, np.nan, 1.0), "lip_h"),
        (lambda: B.prop_3_1(1.0, [1.0, -1.0], 1.0), "alpha"),
        (lambda: B.corollary_2_2(1.0, 1.0, C=0.0), "C"),
        (lambda: B.corollary_2_2(1.0, 1.0, c=-1.0), "c"),
        (lambda: B.kappa("x", 1.0, 1.0, 1.0), "t"),
        (lambda: B.lemma_3_3_rhs(1.0, -1.0), "B_norm"),
        (lambda: B.theorem_1_2_valid_until(0.0, 1.0), "alpha"),
    ],
)
def test_bad_inputs_raise_value_error_naming_parameter(call, name: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(name + " "), str(info.value)


# --------------------------------------------------------------------------
# the bounds hold where the theory says (against the independent reference)
# --------------------------------------------------------------------------


def test_lemma_3_3_holds_on_random_matrices(rng: np.random.Generator) -> None:
    worst = 0.0
    for _ in range(60):
        n, p = rng.integers(1, 6, size=2)
        A = rng.standard_normal((p, n))
        Bm = rng.standard_normal((p, n)) * 10.0 ** rng.uniform(-3, 0)
        t = 10.0 ** rng.uniform(-2, 2)
        lhs = np.linalg.norm(expm(-(A + Bm).T @ (A + Bm) * t) - expm(-A.T @ A * t), 2)
        rhs = float(B.lemma_3_3_rhs(t, np.linalg.norm(Bm, 2)))
        worst = max(worst, lhs / rhs)
    assert worst <= 1.0


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("alpha, T, R0, lip", [(3.0, 1.0, 0.5, 0.2), (1.0, 2.0, 0.3, 2.0), (0.5, 5.0, 2.0, 7.0)])
def test_theorems_1_2_and_1_3_on_converse_model(sign: int, alpha: float, T: float, R0: float, lip: float) -> None:
    run = run_model(converse_model(T, R0, lip, sign), alpha, np.array([0.0, T]))
    gap = run.gap[-1]
    assert run.R0 == pytest.approx(R0, rel=1e-14)
    upper = B.theorem_1_2(T, alpha, R0, lip)
    assert bool(upper.valid) and gap <= float(upper.value)
    if sign == 1:  # Theorem 1.3 is about the model with b = +Lip(Dh)
        assert gap >= float(B.theorem_1_3_lower(T, alpha, R0, lip).value)


def test_prop_1_1_holds_where_seed_typo_fails() -> None:
    # converse model, R0 small: on the ball of radius rho, Lip(h) = a + |b| rho.
    T, R0, lip, alpha, rho = 1.0, 1e-4, 50.0, 1.0, 0.05
    ts = np.linspace(0.1, 1.0, 10)
    run = run_model(converse_model(T, R0, lip, 1), alpha, ts)
    assert run.weight_change.max() < rho  # the flow stays in the ball
    lip_h = 1.0 / math.sqrt(T) + lip * rho
    b = B.prop_1_1(ts, alpha, R0, lip_h, lip, rho=rho)
    assert b.valid.all()
    assert np.all(run.gap <= b.value)
    seed_literal = ts * lip_h**2 * B.kappa(ts, alpha, R0, lip) * R0  # "kappa R0" (eq. 5 as written)
    assert np.any(run.gap > seed_literal)


def test_prop_3_1_holds_on_two_layer_network(rng: np.random.Generator) -> None:
    X = rng.standard_normal((6, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.sin(2 * X[:, 0])
    m = 10
    model = twolayer_model(X, y, m, twolayer_init(m, 3, seed=1))
    ts = np.geomspace(1e-2, 50.0, 12)
    for alpha in (0.3, 4.0):
        run = run_model(model, alpha, ts, rtol=1e-10, atol=1e-12)
        b = B.prop_3_1(ts, alpha, run.R0)
        # Cauchy-Schwarz makes this a strict inequality for t > 0 unless dw/dt is constant
        assert np.all(run.weight_change <= b.value) and np.all(run.weight_change_lin <= b.value)


# --------------------------------------------------------------------------
# self-tests of the reference solver
# --------------------------------------------------------------------------


@pytest.mark.parametrize("sign", [1, -1])
def test_converse_small_kappa_slope_is_4_over_e2(sign: int) -> None:
    # gap/sqrt(R0) = (4/e^2) kappa + c2 kappa^2 with |c2| = 0.0134 measured; allow 0.05 kappa.
    # A wrong constant (e.g. 0.54 instead of 0.5413) fails at kappa = 1e-4 (|error| 1.3e-3 >> 5e-6).
    for kappa in (1e-2, 1e-3, 1e-4):
        slope = converse_scaled_gap(kappa, sign) / kappa
        assert abs(slope - 4.0 / math.e**2) <= 0.05 * kappa


def test_converse_large_kappa_limits() -> None:
    # b > 0: q(1) decays like exp(-2 sqrt(2) kappa), so gap -> sqrt(2)/e up to ~1e-11 at kappa 10
    for kappa in (10.0, 100.0):
        assert converse_scaled_gap(kappa, 1) == pytest.approx(math.sqrt(2) / math.e, abs=1e-9)
    # b < 0: the invariant (1+z)^2 = 1 - 2 kappa (sqrt2 - q) gives q(1) = sqrt2 - 1/(2 kappa)
    # up to exp(-2 sqrt(2) kappa), hence gap = sqrt(2)(1 - 1/e) - 1/(2 kappa) exactly in the limit
    for kappa in (20.0, 1000.0):
        expected = math.sqrt(2) * (1 - 1 / math.e) - 1 / (2 * kappa)
        assert converse_scaled_gap(kappa, -1) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("sign", [1, -1])
def test_unscaled_converse_run_matches_scaled_ode(sign: int) -> None:
    # two independent integrations at rtol 1e-12: agreement to 1e-8 relative leaves a wide margin
    for T, R0, lip, alpha in [(3.0, 0.4, 2.0, 7.0), (0.2, 5.0, 0.3, 0.05)]:
        run = run_model(converse_model(T, R0, lip, sign), alpha, np.array([T / 2, T]))
        kappa = T * lip * math.sqrt(R0) / alpha
        assert run.gap[-1] / math.sqrt(R0) == pytest.approx(converse_scaled_gap(kappa, sign), rel=1e-8)
        # the linear flow is integrated, so check it against rbar(t) = sqrt(2 R0) exp(-t/T)
        assert run.residual_lin == pytest.approx(math.sqrt(2 * R0) * np.exp(-run.times / T), rel=1e-9)


def test_two_layer_jacobian_matches_finite_differences(rng: np.random.Generator) -> None:
    X = rng.standard_normal((5, 3))
    m = 4
    w = twolayer_init(m, 3, seed=3)
    for act in ("tanh", "sigmoid", "erf", "softplus"):
        J = twolayer_jac_f(w, X, m, act)
        eps = 1e-6
        fd = np.empty_like(J)
        for k in range(w.size):
            e = np.zeros_like(w)
            e[k] = eps
            fd[:, k] = (twolayer_f(w + e, X, m, act) - twolayer_f(w - e, X, m, act)) / (2 * eps)
        # central differences: error O(eps^2 |f'''|) + O(1e-16 / eps) ~ 1e-10
        np.testing.assert_allclose(J, fd, atol=1e-8, err_msg=act)


def test_linear_model_gap_zero_and_closed_form(rng: np.random.Generator) -> None:
    J = rng.standard_normal((4, 6))
    y = rng.standard_normal(4)
    times = np.array([0.0, 0.1, 1.0, 5.0])
    run = run_model(linear_model(J, y), 2.0, times)
    # both flows are the same ODE: any gap above integration noise is a bug
    assert np.all(run.gap <= 1e-10)
    # closed form rbar(t) = V exp(-lambda t) V^T r0 (THEORY.md section 2)
    lam, V = np.linalg.eigh(J @ J.T)
    for t, out in zip(times, run.output_lin):
        rbar = V @ (np.exp(-lam * t) * (V.T @ y))
        np.testing.assert_allclose(y - out, rbar, atol=1e-10)
    assert np.all(np.diff(run.residual) <= 1e-12)  # the loss never increases


def test_missing_and_mismatched_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"t must be a number or an array of numbers \(got None\)"):
        B.kappa(None, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"broadcast .* got t \(3,\), alpha \(2,\)"):
        B.theorem_1_2(np.ones(3), np.ones(2), 1.0, 1.0)
