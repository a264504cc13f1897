"""Side-by-side performance runs: the engine against a scipy reference, same run.

    python benchmarks/bench.py            # every workload
    python benchmarks/bench.py W1 W3      # some of them
    python benchmarks/bench.py --quick    # smaller W1/W2 reference (fewer runs)

The reference is what a user would write: ``scipy.integrate.solve_ivp`` with
DOP853 and a vectorised numpy right-hand side integrating w and wbar together,
one model after another. Both must give the same gaps to the stated accuracy;
the script prints wall times, their ratio, function evaluations per run and
time per right-hand-side evaluation against the machine's measured
matrix-multiply rate. Nothing here is a pass/fail timing test.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import sys
import threading
import time

import numpy as np
from scipy.integrate import solve_ivp

import ntk_tui as nt


def reference_gaps(X, y, m, w0, alpha, T, times, rtol, atol):
    """Gap at `times` from scipy DOP853 on (w, wbar) with a vectorised numpy rhs."""
    n, d = X.shape
    sm, sn = math.sqrt(m), math.sqrt(n)
    ys = y / sn

    def output(w):
        """h(w) and the activations S = tanh(Z) it came from (reused by the gradient)."""
        a, U = w[:m], w[m:].reshape(m, d)
        S = np.tanh(sm * (X @ U.T))
        return S @ a / (sm * sn), S

    def grad(w, S, r):
        """J(w)^T r from the activations `output(w)` returned: the backward pass only."""
        ga = S.T @ r / (sm * sn)
        C = (1.0 - S * S) * w[:m] * r[:, None] / sn
        return np.concatenate([ga, (C.T @ X).ravel()])

    h0, S0 = output(w0)
    a0 = w0[:m]
    A0 = S0 / (sm * sn)
    B0 = (1.0 - S0 * S0) * a0 / sn

    def j0(v):
        return A0 @ v[:m] + np.sum(B0 * (X @ v[m:].reshape(m, d).T), axis=1)

    def j0t(q):
        return np.concatenate([A0.T @ q, ((B0 * q[:, None]).T @ X).ravel()])

    p = len(w0)
    nfev = [0]

    def rhs(t, s):
        nfev[0] += 1
        w, wb = s[:p], s[p:]
        f, S = output(w)
        r = ys - alpha * (f - h0)  # centred network
        rb = ys - alpha * j0(wb - w0)
        return np.concatenate([grad(w, S, r) / alpha, j0t(rb) / alpha])

    sol = solve_ivp(rhs, (0.0, T), np.concatenate([w0, w0]), method="DOP853", t_eval=times, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(sol.message)
    gaps = []
    for k in range(len(times)):
        w, wb = sol.y[:p, k], sol.y[p:, k]
        f, _ = output(w)
        gaps.append(np.linalg.norm(alpha * (f - h0) - alpha * j0(wb - w0)))
    return np.array(gaps), nfev[0]


def one_blas_thread():
    """numpy's BLAS on one thread (None without threadpoolctl). Used to measure the
    one-core matmul rate, and while the engine is timed so that numpy's idle BLAS
    threads do not spin on the cores the engine uses (it does not call BLAS)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return None
    return threadpool_limits(1)


def quiet_blas():
    return one_blas_thread() or contextlib.nullcontext()


def matmul_rate() -> float:
    """Measured double-precision matrix-multiply rate (GFLOP/s) of this machine, one core."""
    a = np.random.default_rng(0).standard_normal((1024, 1024))
    b = a.copy()
    limits = one_blas_thread()
    if limits is None:
        print("  (threadpoolctl missing: rate measured with numpy's default threads)")
    best = 1e9
    with limits or contextlib.nullcontext():
        for _ in range(5):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
    return 2 * 1024**3 / best / 1e9


def twolayer_sweep(n, d, m, seeds, alphas, T, times):
    X, y = nt.datasets.sphere(n=n, d=d, seed=0)
    models = [nt.TwoLayer(X, y, m=m, seed=s) for s in seeds]
    return X, y, models


def compare(label, models, X, y, m, alphas, T, times, ref_rtol, ref_atol, tol_rel, tol_abs, ref_runs=None):
    print(f"\n== {label}: {len(models)} models x {len(alphas)} alphas, m={m}, n={X.shape[0]}, d={X.shape[1]}, T={T}")
    t0 = time.perf_counter()
    with quiet_blas():
        batch = nt.simulate_batch(models, alphas, T, times, metrics=["gap"])
    t_engine = time.perf_counter() - t0
    nfev_engine = np.array([[r.stats["nfev"] for r in row] for row in batch.runs])
    pairs = [(i, j) for i in range(len(models)) for j in range(len(alphas))]
    if ref_runs is not None and ref_runs < len(pairs):
        pick = np.linspace(0, len(pairs) - 1, ref_runs).round().astype(int)
        pairs = [pairs[k] for k in pick]
    t0 = time.perf_counter()
    refs, nfev_ref = {}, []
    for i, j in pairs:
        refs[i, j], nf = reference_gaps(X, y, m, models[i].w0, alphas[j], T, times, ref_rtol, ref_atol)
        nfev_ref.append(nf)
    t_ref = (time.perf_counter() - t0) * len(models) * len(alphas) / len(pairs)
    # Agreement: where engine and reference differ by more than the tolerance, a
    # tight engine run (rtol 1e-12) tells whose error it is; the test suite checks
    # the engine's gap against scipy and its Richardson extrapolation independently.
    worst, blamed = 0.0, []
    for (i, j), g in refs.items():
        err = float((np.abs(batch.gap[i, j] - g) / (tol_rel * np.abs(g) + tol_abs)).max())
        if err > 1:
            tight = nt.simulate(models[i], alphas[j], T, times, rtol=1e-12, atol=1e-16, metrics=["gap"]).gap
            rel = lambda a: float(np.max(np.abs(a - tight) / tight))  # noqa: E731
            blamed.append((alphas[j], rel(batch.gap[i, j]), rel(g)))
            if rel(batch.gap[i, j]) > tol_rel:
                worst = max(worst, err)
        else:
            worst = max(worst, err)
    scaled = "" if len(pairs) == len(models) * len(alphas) else f" (measured on {len(pairs)} runs, scaled)"
    print(f"  engine   : {t_engine:8.3f} s   nfev/run {nfev_engine.mean():8.0f}   ({os.cpu_count()} threads)")
    print(f"  reference: {t_ref:8.3f} s   nfev/run {np.mean(nfev_ref):8.0f}   scipy DOP853 rtol={ref_rtol:g} atol={ref_atol:g}{scaled}")
    print(f"  speed-up : {t_ref / t_engine:8.1f}x")
    print(f"  agreement: worst |gap - ref| / ({tol_rel:g} |ref| + {tol_abs:g}) = {worst:.3f} over the runs where the"
          f" reference is accurate  ({'OK' if worst <= 1 else 'MISMATCH'})")
    for a, e_eng, e_ref in sorted(blamed)[:: max(1, len(blamed) // 8)]:
        print(f"    alpha {a:9.3g}: vs a tight engine run (rtol 1e-12) the engine is off by {e_eng:.1e},"
              f" the reference by {e_ref:.1e}")
    return batch, t_engine, t_ref, nfev_engine, np.array(nfev_ref)


def w1(quick: bool) -> None:
    n, d, m, T = 64, 8, 256, 1000.0
    X, y, models = twolayer_sweep(n, d, m, range(4), None, T, None)
    alphas = np.geomspace(1, 1e4, 16)
    times = np.geomspace(1e-2, T, 32)
    compare("W1 small sweep", models, X, y, m, alphas, T, times, 1e-10, 1e-12, 1e-3, 1e-9, ref_runs=16 if quick else None)


def w2(quick: bool) -> None:
    n, d, m, T = 256, 32, 4096, 100.0
    X, y, models = twolayer_sweep(n, d, m, range(4), None, T, None)
    alphas = np.array([1.0, 21.5, 464.0, 1e4])
    times = np.geomspace(1e-2, T, 32)
    batch, t_eng, t_ref, nf_eng, nf_ref = compare(
        "W2 wide models", models, X, y, m, alphas, T, times, 1e-8, 1e-12, 1e-3, 1e-9, ref_runs=4 if quick else None
    )
    runs = len(models) * len(alphas)
    threads = min(os.cpu_count() or 1, runs)
    per_eval_engine = t_eng * threads / nf_eng.sum()  # core-seconds per evaluation
    per_eval_ref = t_ref / (nf_ref.mean() * runs)
    rate = matmul_rate()
    # Products of 2nmd flops per evaluation of the two-flow right-hand side: the
    # engine 4 (J0^T u for wbar, X dU^T forward, S1 (a0 S_U) for J0 s, C^T X backward), the
    # reference 4 as well (one forward-backward pass, J0 and J0^T for wbar); a bare
    # gradient of the nonlinear flow alone would need 2.
    floor_engine = 8 * n * m * d / (rate * 1e9)
    floor_bare = 4 * n * m * d / (rate * 1e9)
    wall_per_eval = t_eng / nf_eng.sum()
    print(f"  time per rhs evaluation (wall clock, whole machine): engine {wall_per_eval * 1e3:.2f} ms"
          f" ({threads} runs in parallel), reference {per_eval_ref * 1e3:.2f} ms  -> {per_eval_ref / wall_per_eval:.1f}x")
    print(f"  engine core time per evaluation: {per_eval_engine * 1e3:.2f} ms"
          f" ({8 * n * m * d / per_eval_engine / 1e9:.1f} GFLOP/s in its products alone)")
    print(f"  matmul rate (1 core, numpy 1024^3): {rate:.1f} GFLOP/s")
    print(f"  FLOP floor per evaluation (its arithmetic at the matmul rate): {floor_engine * 1e3:.2f} ms for the engine's"
          f" 4 products (8nmd) -> engine at {per_eval_engine / floor_engine:.2f}x of it"
          f" ({per_eval_engine / floor_bare:.2f}x of the 2 products of a bare gradient, {floor_bare * 1e3:.2f} ms)")
    # kernel metrics cost on one W2 run
    t0 = time.perf_counter()
    nt.simulate(models[0], 21.5, T, times, metrics=["gap"])
    t_gap = time.perf_counter() - t0
    t0 = time.perf_counter()
    nt.simulate(models[0], 21.5, T, times, metrics=["gap", "kernel_drift"])
    t_kern = time.perf_counter() - t0
    print(f"\n== Kernel metrics: one W2 run with kernel_drift at 32 times {t_kern:.2f} s vs gap only {t_gap:.2f} s"
          f" -> {t_kern / t_gap:.2f}x")


def w3(quick: bool) -> None:
    print("\n== W3 converse sweep: 10,000 Converse models over kappa in [1e-4, 1e4], default tolerances")
    kappas = np.geomspace(1e-4, 1e4, 10_000)
    alpha, T, R0 = 1.0, 1.0, 0.5
    t0 = time.perf_counter()
    models = [nt.Converse(T, R0, k * alpha / (T * math.sqrt(R0))) for k in kappas]
    t_models = time.perf_counter() - t0
    tight = nt.simulate_batch(models[::50], [alpha], T, [T], metrics=["gap"], rtol=1e-12, atol=1e-16).gap[:, 0, -1]
    # Large kappa is stiff (the residual decays at a rate ~kappa once the weight has
    # moved): Rodas4 is the integrator for it; DOP853 is shown for comparison.
    for method in ("rodas4", "dop853"):
        t0 = time.perf_counter()
        with quiet_blas():
            batch = nt.simulate_batch(models, [alpha], T, [T], metrics=["gap"], method=method)
            g = batch.gap[:, 0, -1]
        total = t_models + time.perf_counter() - t0
        nfev = np.array([r.stats["nfev"] for row in batch.runs for r in row])
        err = float(np.max(np.abs(g[::50] - tight) / tight))
        lower = np.minimum(kappas / 5, 1 / 5)
        print(f"  {method}: total {total:.3f} s (model construction + batch + its gaps), all ok: {(batch.status == 'ok').all()},"
              f" nfev per run {nfev.mean():.0f} (at kappa = 1e4: {nfev[-1]}), worst gap error vs rtol 1e-12"
              f" on 200 runs {err:.1e}, Theorem 1.3 lower bound holds on all: {(g / math.sqrt(R0) >= lower).all()}")


def cancel_latency() -> None:
    X, y = nt.datasets.sphere(n=64, d=8, seed=0)
    models = [nt.TwoLayer(X, y, m=1024, seed=s) for s in range(4)]
    job = nt.start_batch(models, np.geomspace(1, 1e4, 8), 1e4, metrics=["gap"])
    while job.progress[0] < 1:
        time.sleep(0.01)
    t0 = time.perf_counter()
    job.cancel()
    job.wait()
    print(f"\n== Cancellation: batch returned {1e3 * (time.perf_counter() - t0):.1f} ms after cancel();"
          f" {int((job.result().status == 'ok').sum())} finished runs kept")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="*", default=["W1", "W2", "W3", "cancel"])
    ap.add_argument("--quick", action="store_true", help="time the reference on a subset of runs and scale")
    args = ap.parse_args()
    print(f"ntk_tui {nt.__version__} | Python {sys.version.split()[0]} | numpy {np.__version__} | {platform.machine()}"
          f" | {os.cpu_count()} cores | threads {threading.active_count()}")
    for w in args.workloads:
        {"W1": w1, "W2": w2, "W3": w3, "cancel": lambda q: cancel_latency()}[w](args.quick)


if __name__ == "__main__":
    main()
