"""The engine against independent references, analytic facts and the theory.

Reference solutions come from ``tests/reference.py`` (numpy + scipy's DOP853 on
the *original* variables w and wbar), never from the engine's own formulas.
"""

from __future__ import annotations

import _thread
import math
import signal
import threading
import time

import numpy as np
import pytest
import reference as ref

import ntk_tui as nt
from ntk_tui import bounds

E2 = math.e**2


def small_net(seed: int = 0, n: int = 8, d: int = 3, m: int = 16, activation: str = "tanh", centered: bool = True):
    X, y = nt.datasets.sphere(n, d, seed=seed)
    model = nt.TwoLayer(X, y, m=m, activation=activation, seed=seed, centered=centered)
    refm = ref.twolayer_model(X, y, m, model.w0, activation=activation, centered=centered)
    return model, refm


# --------------------------------------------------------------------------
# Jacobians against finite differences (every family)
# --------------------------------------------------------------------------


def fd_jacobian(model, w: np.ndarray) -> np.ndarray:
    cols = []
    for k in range(len(w)):
        h = 1e-6 * (1 + abs(w[k]))
        e = np.zeros_like(w)
        e[k] = h
        cols.append((model.h(w + e) - model.h(w - e)) / (2 * h))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: nt.Converse(T=5.0, R0=0.3, lip_dh=2.0, sign=-1),
        lambda: small_net(activation="tanh")[0],
        lambda: small_net(activation="sigmoid")[0],
        lambda: small_net(activation="erf")[0],
        lambda: small_net(activation="softplus", centered=False)[0],
        lambda: nt.Quadratic(p=9, n=4, lip_dh=1.5, seed=2),
        lambda: nt.Linear(p=7, n=3, seed=1),
    ],
    ids=["converse", "tanh", "sigmoid", "erf", "softplus", "quadratic", "linear"],
)
def test_jacobian_matches_finite_differences(make) -> None:
    model = make()
    w = model.w0 + 0.3 * np.random.default_rng(0).standard_normal(model.p) / math.sqrt(model.p)
    J = model.jacobian(w)
    # central differences with h ~ 1e-6 have error ~ h² |h'''| + eps/h ~ 1e-10
    np.testing.assert_allclose(J, fd_jacobian(model, w), atol=1e-8 * max(1.0, np.abs(J).max()))


def test_twolayer_matches_reference_h_and_jacobian() -> None:
    model, refm = small_net(activation="erf")
    w = model.w0 * 1.7
    np.testing.assert_allclose(model.h(w), refm.h(w), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(model.jacobian(w), refm.jac(w), rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------
# Cross-checks against scipy
# --------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.5, 3.0, 40.0])
def test_twolayer_agrees_with_scipy_reference(alpha: float) -> None:
    model, refm = small_net(seed=1)
    times = np.geomspace(1e-2, 50.0, 12)
    run = nt.simulate(model, alpha, 50.0, times, rtol=1e-11, atol=1e-14)
    r = ref.run_model(refm, alpha, times)
    # Both integrations are at rtol <= 1e-11 on O(1) outputs; 1e-8 leaves room
    # for the accumulation of local errors over ~100 steps.
    np.testing.assert_allclose(run.output, r.output, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(run.output_lin, r.output_lin, rtol=1e-8, atol=1e-9)
    # The gap is a difference of the outputs; relative to it the reference
    # loses digits as alpha grows (that is what the engine avoids), so compare
    # relative to the gap with an absolute floor at the reference's accuracy.
    np.testing.assert_allclose(run.gap, r.gap, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(run.weight_change, r.weight_change, rtol=1e-7)
    np.testing.assert_allclose(run.weight_change_lin, r.weight_change_lin, rtol=1e-7)
    np.testing.assert_allclose(run.jacobian_drift, r.jacobian_drift, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(run.kernel_drift, r.kernel_drift, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("sign", [1, -1])
def test_converse_agrees_with_scipy_reference(sign: int) -> None:
    model = nt.Converse(T=4.0, R0=0.7, lip_dh=1.3, sign=sign)
    refm = ref.converse_model(4.0, 0.7, 1.3, sign)
    times = np.linspace(0.0, 4.0, 9)
    run = nt.simulate(model, 2.0, 4.0, times, rtol=1e-11, atol=1e-14)
    r = ref.run_model(refm, 2.0, times)
    np.testing.assert_allclose(run.output, r.output, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(run.gap, r.gap, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("kappa", [0.3, 30.0, 3e3])
def test_rodas4_agrees_with_a_tight_explicit_run_on_stiff_converse_models(kappa: float) -> None:
    # Large kappa makes the Converse flow stiff (the residual decays at rate ~kappa
    # once the weight has moved): Rodas4 at the default tolerances must give the gap of
    # a DOP853 run at rtol 1e-12 to 1e-5 relative (default rtol 1e-7, error growth over
    # the run's steps stays well inside), with far fewer evaluations when it is stiff.
    T, R0, alpha = 1.0, 0.5, 1.0
    model = nt.Converse(T, R0, kappa * alpha / (T * math.sqrt(R0)))
    times = np.linspace(0.05, 1.0, 20)
    stiff = nt.simulate(model, alpha, T, times, method="rodas4", metrics=["gap"])
    tight = nt.simulate(model, alpha, T, times, rtol=1e-12, atol=1e-16, metrics=["gap"])
    np.testing.assert_allclose(stiff.gap, tight.gap, rtol=1e-5)
    if kappa > 1e3:
        # to T alone (no landing on output times), the explicit method is stability-bound
        one = [nt.simulate(model, alpha, T, [T], method=m, metrics=["gap"]).stats["nfev"] for m in ("rodas4", "dop853")]
        assert one[0] * 5 < one[1], one


def test_rodas4_agrees_with_scipy_on_a_small_network() -> None:
    # p = 16 (3 + 1) = 64 parameters: the finite-difference Jacobian is exercised in full.
    model, refm = small_net(seed=2)
    times = np.geomspace(1e-2, 50.0, 12)
    run = nt.simulate(model, 3.0, 50.0, times, method="rodas4", rtol=1e-9, atol=1e-14)
    r = ref.run_model(refm, 3.0, times)
    np.testing.assert_allclose(run.output, r.output, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(run.gap, r.gap, rtol=1e-5, atol=1e-9)


# --------------------------------------------------------------------------
# The gap is accurate at any alpha
# --------------------------------------------------------------------------


def _alpha_gap_reference(refm, T: float) -> tuple[float, float, float]:
    """alpha*gap(T) = L + c/alpha + e/alpha² fitted through scipy references at
    alpha = 250, 500, 1000 (where the direct reference is still accurate to ~1e-9)."""
    alphas = np.array([250.0, 500.0, 1000.0])
    vals = np.array([a * ref.run_model(refm, a, np.array([T])).gap[-1] for a in alphas])
    A = np.stack([np.ones(3), 1 / alphas, 1 / alphas**2], axis=1)
    return tuple(np.linalg.solve(A, vals))  # type: ignore[return-value]


def test_gap_is_accurate_from_alpha_1e_minus_1_to_1e8() -> None:
    model, refm = small_net(seed=3, n=6, d=3, m=12)
    T = 20.0
    # moderate alpha: direct scipy reference at rtol 1e-12 is accurate to ~1e-9
    # relative in the gap (the outputs move by O(1/alpha)).
    for alpha in [0.1, 1.0, 10.0, 100.0]:
        run = nt.simulate(model, alpha, T, [T])  # default tolerances
        r = ref.run_model(refm, alpha, np.array([T]))
        assert run.gap[-1] == pytest.approx(r.gap[-1], rel=1e-5), alpha
    # large alpha: the Richardson-extrapolated reference (its neglected
    # O(1/alpha³) term is < 1e-7 relative from alpha = 1e4 on)
    L, c, e = _alpha_gap_reference(refm, T)
    for alpha in [1e4, 1e5, 1e6, 1e7, 1e8]:
        run = nt.simulate(model, alpha, T, [T])
        expected = (L + c / alpha + e / alpha**2) / alpha
        assert run.gap[-1] == pytest.approx(expected, rel=1e-5), alpha


@pytest.mark.parametrize("c", [1e-8, 1.0, 1e6])
def test_default_accuracy_does_not_depend_on_the_units_of_the_data(c: float) -> None:
    # Scaling y by c and alpha by c leaves the trajectory unchanged and scales the
    # gap by c (THEORY.md: only R0 and kappa matter), so the run on (c y, c alpha)
    # at default tolerances must match the scipy reference on (y, alpha).
    X, y = nt.datasets.sphere(6, 3, seed=5)
    model = nt.TwoLayer(X, c * y, m=12, seed=5)
    refm = ref.twolayer_model(X, y, 12, model.w0)
    T, alpha = 20.0, 10.0
    run = nt.simulate(model, c * alpha, T, [T])
    assert run.gap[-1] / c == pytest.approx(ref.run_model(refm, alpha, np.array([T])).gap[-1], rel=1e-5)


def test_kernel_drift_is_accurate_at_large_alpha() -> None:
    # ||K_T - K0|| is O(1/alpha): alpha * drift converges; compare alpha = 1e6 and
    # 1e8 with the scipy reference's value extrapolated from alpha = 200, 400.
    model, refm = small_net(seed=4, n=6, d=3, m=12)
    T = 10.0
    vals = [a * ref.run_model(refm, a, np.array([T])).kernel_drift[-1] for a in (200.0, 400.0)]
    limit = 2 * vals[1] - vals[0]  # Richardson for L + c/alpha
    for alpha in (1e6, 1e8):
        run = nt.simulate(model, alpha, T, [T], metrics=["kernel_drift", "jacobian_drift"])
        assert alpha * run.kernel_drift[-1] == pytest.approx(limit, rel=1e-4)


def test_twolayer_gap_falls_like_one_over_alpha() -> None:
    model, _ = small_net(seed=2)
    alphas = np.geomspace(1e2, 1e6, 5)
    gaps = np.array([nt.simulate(model, a, 100.0, [100.0], metrics=[]).gap[-1] for a in alphas])
    slopes = np.diff(np.log(gaps)) / np.diff(np.log(alphas))
    assert np.all(np.abs(slopes + 1) < 0.05), slopes


# --------------------------------------------------------------------------
# Converse model: THEORY.md 4.1
# --------------------------------------------------------------------------


def converse_gap(kappa: float, sign: int, alpha: float = 3.0, T: float = 2.0, R0: float = 0.5) -> float:
    lip = kappa * alpha / (T * math.sqrt(R0))
    run = nt.simulate(nt.Converse(T, R0, lip, sign), alpha, T, [T], rtol=1e-10, atol=1e-14)
    assert run.kappa == pytest.approx(kappa, rel=1e-12)
    return run.gap[-1] / math.sqrt(R0)


@pytest.mark.parametrize("sign", [1, -1])
def test_converse_gap_depends_only_on_kappa(sign: int) -> None:
    vals = [converse_gap(0.8, sign, alpha, T, R0) for alpha, T, R0 in [(1, 1, 1), (1e3, 7, 0.01), (0.05, 300, 40)]]
    np.testing.assert_allclose(vals, vals[0], rtol=1e-7)
    assert vals[0] == pytest.approx(ref.converse_scaled_gap(0.8, sign), rel=1e-7)


@pytest.mark.parametrize("sign", [1, -1])
def test_converse_small_kappa_slope(sign: int) -> None:
    # gap/sqrt(R0) = (4/e²) kappa ± 0.0134 kappa² (reference.py), i.e. a relative
    # correction of 0.025 kappa; 0.03 kappa leaves room, plus the integration error.
    for kappa in (1e-4, 1e-6):
        assert converse_gap(kappa, sign) / kappa == pytest.approx(4 / E2, rel=3e-2 * kappa + 1e-7)


def test_converse_large_kappa_limits() -> None:
    # sign +1: -> sqrt(2)/e; sign -1: -> sqrt(2)(1 - 1/e) - 1/(2 kappa) (reference.py's fit);
    # at kappa = 1e4 the remaining corrections are ~1e-4.
    assert converse_gap(1e4, 1) == pytest.approx(math.sqrt(2) / math.e, rel=1e-3)
    assert converse_gap(1e4, -1) == pytest.approx(math.sqrt(2) * (1 - 1 / math.e), rel=1e-3)


@pytest.mark.parametrize("sign", [1, -1])
def test_theorem_1_3_lower_and_1_2_upper_bound_on_kappa_grid(sign: int) -> None:
    R0 = 0.5
    for kappa in np.geomspace(1e-4, 1e4, 17):
        g = converse_gap(float(kappa), sign, R0=R0) * math.sqrt(R0)
        lower = min(kappa * math.sqrt(R0) / 5, math.sqrt(R0) / 5)
        upper = min(6 * kappa * math.sqrt(R0), math.sqrt(8 * R0))
        assert lower <= g <= upper, (kappa, g, lower, upper)


# --------------------------------------------------------------------------
# Theorem 1.2, Prop 3.1 on many models; Linear has no gap
# --------------------------------------------------------------------------


def _assert_upper_bounds(run: nt.Run) -> None:
    b = run.bounds()
    thm = b["theorem_1_2"]
    assert np.all(thm.valid)
    assert np.all(run.gap <= thm.value), (run.gap / thm.value).max()
    p31 = b["prop_3_1"].value
    assert np.all(run.weight_change <= p31 * (1 + 1e-9))
    assert np.all(run.weight_change_lin <= p31 * (1 + 1e-9))
    p11 = b["prop_1_1"]
    assert np.all(run.gap[p11.valid] <= p11.value[p11.valid])
    assert np.all(run.lip_dh_path <= run.lip_dh * (1 + 1e-9))


def test_theorem_1_2_and_prop_3_1_on_random_quadratic_models() -> None:
    rng = np.random.default_rng(11)
    for seed in range(25):
        p, n = int(rng.integers(2, 20)), int(rng.integers(1, 8))
        lip = float(10 ** rng.uniform(-1, 1))
        alpha = float(10 ** rng.uniform(-1, 2))
        T = float(10 ** rng.uniform(-1, 2))
        model = nt.Quadratic(p, n, lip_dh=lip, seed=seed)
        try:
            run = nt.simulate(model, alpha, T, nt.default_times(T, 16))
        except nt.IntegrationError as err:  # a blow-up is allowed only where the bound is vacuous
            pytest.fail(f"seed {seed}: {err}")
        _assert_upper_bounds(run)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "erf", "softplus"])
def test_theorem_1_2_on_twolayer_runs(activation: str) -> None:
    model, _ = small_net(seed=5, activation=activation)
    for alpha in (1.0, 10.0, 300.0):
        _assert_upper_bounds(nt.simulate(model, alpha, 200.0, nt.default_times(200.0, 16)))


def test_linear_model_gap_is_zero() -> None:
    run = nt.simulate(nt.Linear(30, 6, seed=4), 2.0, 100.0)
    assert np.all(run.gap == 0.0)
    np.testing.assert_array_equal(run.output, run.output_lin)


# --------------------------------------------------------------------------
# Lemma 3.3
# --------------------------------------------------------------------------


def test_lemma_3_3_against_scipy_expm() -> None:
    from scipy.linalg import expm

    rng = np.random.default_rng(2)
    for _ in range(30):
        r, c = rng.integers(1, 6, size=2)
        A = rng.standard_normal((r, c))
        B = 0.3 * rng.standard_normal((r, c))
        t = float(rng.uniform(0.01, 3))
        lhs, rhs = nt.lemma_3_3(A, B, t)
        diff = expm(-(A + B).T @ (A + B) * t) - expm(-A.T @ A * t)
        assert lhs == pytest.approx(np.linalg.norm(diff, 2), rel=1e-8, abs=1e-13)
        assert rhs == pytest.approx(2 * math.sqrt(t) * np.linalg.norm(B, 2), rel=1e-10)
        assert lhs <= rhs


# --------------------------------------------------------------------------
# Streaming, metrics selection, failures
# --------------------------------------------------------------------------


def test_simulation_chunks_equal_simulate() -> None:
    model, _ = small_net(seed=6)
    full = nt.simulate(model, 20.0, 100.0)
    sim = nt.Simulation(model, 20.0, 100.0)
    chunks = []
    while not sim.done:
        chunks.append(sim.advance(max_points=7))
    for name in ("times", "gap", "kernel_drift", "weight_change", "lip_dh_path"):
        np.testing.assert_array_equal(np.concatenate([c[name] for c in chunks]), getattr(full, name))
    np.testing.assert_array_equal(sim.result().output, full.output)
    assert sim.result().stats["nfev"] == full.stats["nfev"]


def _slow_model() -> nt.Model:
    """A run to T = 1e5 of this model takes tens of seconds."""
    X, y = nt.datasets.sphere(64, 8, seed=0)
    return nt.TwoLayer(X, y, m=1024)


@pytest.fixture
def python_sigint_handler():
    """Python's own SIGINT handler, which turns Ctrl-C into KeyboardInterrupt. A
    process started in the background by a shell without job control inherits
    SIGINT ignored, and then interrupt_main does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_interrupts_a_long_run_and_a_batch(python_sigint_handler) -> None:
    model = _slow_model()
    for call in (
        lambda: nt.simulate(model, 1.0, 1e5, metrics=["gap"]),
        lambda: nt.simulate_batch([model], [1.0, 2.0], 1e5, metrics=["gap"]),
    ):
        timer = threading.Timer(0.3, _thread.interrupt_main)
        t0 = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            call()
        # not a speed assertion: the interrupt is honoured long before the end
        assert time.perf_counter() - t0 < 5.0


def test_reading_a_simulation_does_not_hold_up_other_threads() -> None:
    sim = nt.Simulation(_slow_model(), 1.0, 1e5, metrics=["gap"])
    worker = threading.Thread(target=sim.advance, kwargs={"max_seconds": 1.5})
    worker.start()
    time.sleep(0.2)
    ticks = [0]

    def ticker() -> None:
        while worker.is_alive():
            ticks[0] += 1
            time.sleep(0.005)

    threading.Thread(target=ticker).start()
    before = ticks[0]
    t = sim.t  # waits for the advance, without the GIL
    during = ticks[0] - before
    worker.join()
    assert t > 0 and sim.n_done > 0
    assert during >= 20, during  # about 1.3 s of 5 ms ticks while the read waited


def test_metrics_selection_skips_the_rest() -> None:
    model, _ = small_net()
    run = nt.simulate(model, 10.0, 10.0, metrics=["gap"])
    assert np.all(np.isnan(run.kernel_drift)) and np.all(np.isnan(run.weight_change))
    assert np.all(np.isfinite(run.gap))
    full = nt.simulate(model, 10.0, 10.0)
    # same trajectory; without ΔJ metrics a point is measured by the fused forward
    # pass instead of the separate products, which differ only by rounding
    # (7e-16 relative measured), far below the integration's own error
    np.testing.assert_allclose(run.gap, full.gap, rtol=1e-13, atol=0)


def test_integration_failure_keeps_partial_run() -> None:
    model, _ = small_net()
    with pytest.raises(nt.IntegrationError) as info:
        nt.simulate(model, 1.0, 1000.0, max_steps=5)
    err = info.value
    assert "max" in err.reason
    assert 0 < len(err.run.times) < 64
    full = nt.simulate(model, 1.0, 1000.0)
    np.testing.assert_array_equal(err.run.gap, full.gap[: len(err.run.times)])


def test_run_round_trips_through_dict() -> None:
    run = nt.simulate(nt.Converse(1.0, 0.5, 1.0), 1.0, 1.0, [0.0, 0.5, 1.0])
    back = nt.Run.from_dict(run.to_dict())
    np.testing.assert_array_equal(back.gap, run.gap)
    np.testing.assert_array_equal(back.output, run.output)
    assert back.kappa == run.kappa and back.params == run.params


def test_an_empty_run_round_trips_with_its_output_shape() -> None:
    model, _ = small_net()
    empty = nt.Simulation(model, 1.0, 1.0).result()  # nothing measured yet
    back = nt.Run.from_dict(empty.to_dict())
    assert empty.output.shape == back.output.shape == (0, model.n)


def test_stats_report_what_the_integrator_used() -> None:
    model, _ = small_net()
    run = nt.simulate(model, 1.0, 1.0, method="RK45", rtol=1e-20, atol=1e-9)
    assert run.stats["method"] == "dopri5"
    assert run.stats["rtol"] == 100 * np.finfo(float).eps  # raised, like scipy's
    assert run.stats["atol"] == 1e-9


def test_bounds_are_evaluated_on_the_run_grid() -> None:
    run = nt.simulate(nt.Converse(3.0, 0.4, 2.0), 1.5, 3.0, [0.5, 1.0, 3.0])
    b = run.bounds()
    assert set(b) == {"prop_1_1", "prop_3_1", "theorem_1_2", "theorem_3_2", "theorem_1_3_lower"}
    kappa_t = run.times * run.lip_dh * math.sqrt(run.R0) / run.alpha
    np.testing.assert_allclose(b["theorem_1_2"].value, np.minimum(6 * kappa_t * math.sqrt(run.R0), math.sqrt(8 * run.R0)))
    np.testing.assert_allclose(b["theorem_1_2"].value, bounds.theorem_1_2(run.times, 1.5, run.R0, 2.0).value)
