"""Independent numpy/scipy reference implementation (ground truth for the tests).

Nothing here uses ``ntk_tui``: the model families of THEORY.md section 4 and
both gradient flows (THEORY.md section 1) are written directly from the
mathematics and integrated with ``scipy.integrate.solve_ivp`` (DOP853) at
tight tolerances. The linearized flow is *integrated* too (not taken from its
closed form), so the closed form used by the engine can be checked against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import erf, expit

Array = np.ndarray
HFun = Callable[[Array], Array]

# --------------------------------------------------------------------------
# activations: (sigma, sigma')
# --------------------------------------------------------------------------

ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (expit, lambda z: expit(z) * (1.0 - expit(z))),
    "erf": (erf, lambda z: 2.0 / math.sqrt(math.pi) * np.exp(-z * z)),
    "softplus": (lambda z: np.logaddexp(0.0, z), expit),
}


@dataclass(frozen=True)
class RefModel:
    """A model ``h: R^p -> R^n`` with its Jacobian, initial weights and target."""

    h: HFun
    jac: HFun
    w0: Array
    y_star: Array

    def r0(self, alpha: float) -> float:
        """``R0 = ||y* - alpha h(w0)||^2 / 2``."""
        return 0.5 * float(np.sum((self.y_star - alpha * self.h(self.w0)) ** 2))


# --------------------------------------------------------------------------
# model families
# --------------------------------------------------------------------------


def twolayer_init(m: int, d: int, seed: int = 0) -> Array:
    """Flattened ``[a (m), U (m*d row-major)]`` with entries i.i.d. ``Unif[-1/sqrt m, 1/sqrt m]``."""
    rng = np.random.default_rng(seed)
    b = 1.0 / math.sqrt(m)
    return rng.uniform(-b, b, size=m * (d + 1))


def twolayer_f(w: Array, X: Array, m: int, activation: str = "tanh") -> Array:
    """Mean-field network ``f_w(x) = (1/sqrt m) sum_i a_i sigma(sqrt(m) <x, u_i>)`` at every row of X."""
    sigma, _ = ACTIVATIONS[activation]
    d = X.shape[1]
    a, U = w[:m], w[m:].reshape(m, d)
    Z = math.sqrt(m) * (X @ U.T)  # (n, m)
    return sigma(Z) @ a / math.sqrt(m)


def twolayer_jac_f(w: Array, X: Array, m: int, activation: str = "tanh") -> Array:
    """Jacobian of ``[f_w(x_j)]_j`` with respect to the flattened ``w`` (n x m(d+1))."""
    sigma, dsigma = ACTIVATIONS[activation]
    n, d = X.shape
    a, U = w[:m], w[m:].reshape(m, d)
    Z = math.sqrt(m) * (X @ U.T)
    da = sigma(Z) / math.sqrt(m)  # df/da_i = sigma(z_i)/sqrt(m)
    dU = (a * dsigma(Z))[:, :, None] * X[:, None, :]  # df/du_i = a_i sigma'(z_i) x
    return np.concatenate([da, dU.reshape(n, m * d)], axis=1)


def twolayer_model(
    X: Array, y: Array, m: int, w0: Array, activation: str = "tanh", centered: bool = True
) -> RefModel:
    """THEORY.md 4.2: ``h(w) = [f_w(x_j)] / sqrt(n)`` (minus ``h(w0)`` if centered), ``y* = y / sqrt(n)``."""
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    w0 = np.asarray(w0, dtype=float).copy()
    s = math.sqrt(n)
    offset = twolayer_f(w0, X, m, activation) / s if centered else np.zeros(n)

    def h(w: Array) -> Array:
        return twolayer_f(w, X, m, activation) / s - offset

    def jac(w: Array) -> Array:
        return twolayer_jac_f(w, X, m, activation) / s

    return RefModel(h, jac, w0, np.asarray(y, dtype=float) / s)


def converse_model(T: float, R0: float, lip_dh: float, sign: int = 1) -> RefModel:
    """THEORY.md 4.1: ``h(w) = a w + (b/2) w^2``, ``a = 1/sqrt(T)``, ``b = sign*lip_dh``, ``w0 = 0``, ``y* = sqrt(2 R0)``."""
    a = 1.0 / math.sqrt(T)
    b = sign * lip_dh

    def h(w: Array) -> Array:
        return np.array([a * w[0] + 0.5 * b * w[0] ** 2])

    def jac(w: Array) -> Array:
        return np.array([[a + b * w[0]]])

    return RefModel(h, jac, np.zeros(1), np.array([math.sqrt(2.0 * R0)]))


def linear_model(J: Array, y_star: Array) -> RefModel:
    """THEORY.md 4.4: ``h(w) = J w``, ``w0 = 0`` (the gap must be exactly 0)."""
    J = np.asarray(J, dtype=float)
    return RefModel(lambda w: J @ w, lambda w: J, np.zeros(J.shape[1]), np.asarray(y_star, dtype=float))


# --------------------------------------------------------------------------
# flows
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RefRun:
    """Measurements of THEORY.md section 2 at ``times`` (arrays of length k; outputs k x n)."""

    times: Array
    output: Array
    output_lin: Array
    gap: Array
    residual: Array
    residual_lin: Array
    weight_change: Array
    weight_change_lin: Array
    jacobian_drift: Array
    kernel_drift: Array
    lip_dh_path: Array
    R0: float


def _integrate(rhs: Callable[[float, Array], Array], y0: Array, times: Array, rtol: float, atol: float) -> Array:
    """Integrate with DOP853 and return the states at ``times`` (k x p)."""
    t_end = float(times[-1])
    if t_end == 0.0:
        return np.tile(y0, (len(times), 1))
    sol = solve_ivp(rhs, (0.0, t_end), y0, method="DOP853", t_eval=times, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"reference integration failed: {sol.message}")
    return sol.y.T


def reference_run(
    h: HFun,
    jac: HFun,
    w0: Array,
    y_star: Array,
    alpha: float,
    times: Array,
    rtol: float = 1e-12,
    atol: float = 1e-14,
) -> RefRun:
    """Integrate the gradient flow (seed eq. 1) and its linearization (eq. 3).

    ``dw/dt = (1/alpha) J(w)^T (y* - alpha h(w))`` and
    ``dwbar/dt = (1/alpha) J0^T (y* - alpha (h0 + J0 (wbar - w0)))``, both from
    ``w0``, each with its own DOP853 integration. ``times`` must be sorted
    and non-negative.
    """
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or np.any(np.diff(times) < 0) or np.any(times < 0):
        raise ValueError("times must be a sorted 1-D array of non-negative numbers")
    w0 = np.asarray(w0, dtype=float)
    y_star = np.asarray(y_star, dtype=float)
    h0, J0 = h(w0), jac(w0)

    def rhs(_t: float, w: Array) -> Array:
        return jac(w).T @ (y_star - alpha * h(w)) / alpha

    def rhs_lin(_t: float, wb: Array) -> Array:
        return J0.T @ (y_star - alpha * (h0 + J0 @ (wb - w0))) / alpha

    W = _integrate(rhs, w0, times, rtol, atol)
    Wb = _integrate(rhs_lin, w0, times, rtol, atol)
    out = np.array([alpha * h(w) for w in W])
    out_lin = alpha * (h0 + (Wb - w0) @ J0.T)
    K0 = J0 @ J0.T
    jd, kd = [], []
    for w in W:
        Jt = jac(w)
        jd.append(np.linalg.norm(Jt - J0, 2))
        kd.append(np.max(np.abs(np.linalg.eigvalsh(Jt @ Jt.T - K0))))
    wc = np.linalg.norm(W - w0, axis=1)
    jd_a = np.array(jd)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(wc > 0, jd_a / wc, 0.0)
    return RefRun(
        times=times,
        output=out,
        output_lin=out_lin,
        gap=np.linalg.norm(out - out_lin, axis=1),
        residual=np.linalg.norm(y_star - out, axis=1),
        residual_lin=np.linalg.norm(y_star - out_lin, axis=1),
        weight_change=wc,
        weight_change_lin=np.linalg.norm(Wb - w0, axis=1),
        jacobian_drift=jd_a,
        kernel_drift=np.array(kd),
        lip_dh_path=np.maximum.accumulate(ratio),
        R0=0.5 * float(np.sum((y_star - alpha * h0) ** 2)),
    )


def run_model(model: RefModel, alpha: float, times: Array, **kw: float) -> RefRun:
    """:func:`reference_run` on a :class:`RefModel`."""
    return reference_run(model.h, model.jac, model.w0, model.y_star, alpha, times, **kw)


def converse_scaled_gap(kappa: float, sign: int = 1, rtol: float = 1e-12, atol: float = 1e-14) -> float:
    """``gap(T) / sqrt(R0)`` of the converse model from its scaled ODE (THEORY.md 4.1).

    With ``s = t/T``, ``z = (b/a) w``, ``q = r/sqrt(R0)``: ``z' = k (1+z) q``,
    ``q' = -(1+z)^2 q`` with the signed ``k = sign*kappa``, ``z(0) = 0``,
    ``q(0) = sqrt(2)``; the linear flow ``qbar' = -qbar``, ``qbar(0) = sqrt(2)``
    is integrated alongside. Returns ``|q(1) - qbar(1)|``.
    """
    if kappa < 0 or sign not in (1, -1):
        raise ValueError("kappa must be >= 0 and sign +1 or -1")
    k = sign * kappa

    def rhs(_s: float, y: Array) -> Array:
        z, q, qb = y
        return np.array([k * (1.0 + z) * q, -((1.0 + z) ** 2) * q, -qb])

    sol = solve_ivp(rhs, (0.0, 1.0), np.array([0.0, math.sqrt(2.0), math.sqrt(2.0)]),
                    method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"reference integration failed: {sol.message}")
    return abs(float(sol.y[1, -1] - sol.y[2, -1]))
