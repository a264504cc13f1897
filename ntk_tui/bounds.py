"""The theory's bounds on the NTK approximation error, vectorised over numpy arrays.

Every function here implements one row of section 3 of THEORY.md, i.e. the
*corrected* form of a result of the seed paper (a paraphrase of Boix-Adsera &
Littwin, "Tight conditions for when the NTK approximation is valid", 2023).
Equation numbers ``(5)``, ``(6)``, ... refer to that seed text.

Notation (THEORY.md section 1): ``t`` is the training time, ``alpha > 0`` the
lazy-training scale, ``R0 = R(alpha h(w0))`` the initial square loss,
``lip_h = Lip(h)`` and ``lip_dh = Lip(Dh)`` the Lipschitz constants of the model
and of its Jacobian on the ball of radius ``rho`` around ``w0``, and
``kappa = t Lip(Dh) sqrt(R0) / alpha``.

All array arguments broadcast against each other (numpy rules); every bound is
returned as a :class:`Bound` whose ``value`` and ``valid`` arrays have the
broadcast shape (0-d arrays for scalar inputs). ``valid`` is False where the
hypothesis of the result (a time horizon) does not hold; ``value`` is still
computed there so that a plot can show where the guarantee stops.

Conventions:

* Lipschitz constants and ``rho`` may be ``inf`` ("unknown"/"no restriction");
  ``t`` may be ``inf``.  A product with a zero factor is 0 even if another
  factor is infinite (a model with ``Lip(Dh) = 0`` is linear and its gap is
  exactly 0; at ``t = 0`` or ``R0 = 0`` nothing moves).
* Bad inputs raise ``ValueError`` naming the parameter:
  NaN anywhere, ``alpha`` not a positive finite number, ``R0`` negative or
  infinite, negative ``t``, negative Lipschitz constants or ``rho``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Bound",
    "BOUND_NAMES",
    "kappa",
    "prop_1_1",
    "prop_3_1",
    "theorem_1_2",
    "theorem_1_3_lower",
    "theorem_3_2",
    "corollary_2_2",
    "lemma_3_3_rhs",
    "prop_1_1_valid_until",
    "theorem_1_2_valid_until",
    "theorem_3_2_valid_until",
    "corollary_2_2_valid_until",
    "validity_end",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


class Bound(NamedTuple):
    """A bound evaluated on an array of inputs.

    ``value``: the bound (float array); ``valid``: where the result's
    hypotheses (time horizon) hold (bool array of the same shape).
    """

    value: FloatArray
    valid: BoolArray


# --------------------------------------------------------------------------
# input checking and helpers
# --------------------------------------------------------------------------


_F = TypeVar("_F", bound=Callable[..., Any])


def _broadcasting(fn: _F) -> _F:
    """Array arguments that do not broadcast together are named in the error."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        shapes = {k: np.shape(v) for k, v in sig.bind(*args, **kwargs).arguments.items() if not isinstance(v, str)}
        try:
            np.broadcast_shapes(*shapes.values())
        except ValueError:
            listed = ", ".join(f"{k} {s}" for k, s in shapes.items() if s)
            raise ValueError(f"array arguments must broadcast against each other (numpy rules); got {listed}") from None
        return fn(*args, **kwargs)

    return checked  # type: ignore[return-value]


def _arr(
    name: str,
    x: ArrayLike,
    *,
    positive: bool = False,
    finite: bool = False,
) -> FloatArray:
    """Convert ``x`` to a float array and check it (non-negative, no NaN)."""
    if x is None:
        raise ValueError(f"{name} must be a number or an array of numbers (got None)")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers (got {x!r})") from None
    if np.isnan(a).any():
        raise ValueError(f"{name} must not be NaN (got {_show(x)})")
    if positive:
        if (a <= 0).any():
            raise ValueError(f"{name} must be a positive number (got {_show(x)})")
    elif (a < 0).any():
        raise ValueError(f"{name} must be a non-negative number (got {_show(x)})")
    if finite and np.isinf(a).any():
        raise ValueError(f"{name} must be finite (got {_show(x)})")
    return a


def _show(x: ArrayLike) -> str:
    """Short representation of a bad input for error messages."""
    a = np.asarray(x)
    if a.ndim == 0:
        return repr(a.item())
    text = np.array2string(a.ravel()[:6], separator=", ")
    return text if a.size <= 6 else text[:-1] + ", ...]"


def _mul(*factors: ArrayLike) -> FloatArray:
    """Broadcast product of non-negative factors with the convention 0 * inf = 0."""
    arrays = np.broadcast_arrays(*[np.asarray(f, dtype=np.float64) for f in factors])
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.ones(arrays[0].shape, dtype=np.float64)
        for a in arrays:
            out = out * a
    zero = np.zeros(out.shape, dtype=bool)
    for a in arrays:
        zero |= a == 0
    return np.where(zero, 0.0, out)


def _inv(x: FloatArray) -> FloatArray:
    """1/x for positive finite x."""
    return 1.0 / x


def _shape_of(*arrays: ArrayLike) -> tuple[int, ...]:
    return np.broadcast_shapes(*[np.shape(a) for a in arrays])


def _le(t: FloatArray, end: FloatArray) -> BoolArray:
    """``t <= end`` as a broadcast bool array (inf <= inf is True).

    A relative slack of 1e-12 keeps a horizon computed to be exactly ``t`` (e.g.
    ``rho = sqrt(T R0)/alpha`` gives ``alpha² rho² / R0 = T``) valid despite rounding.
    """
    return np.asarray(t <= end * (1 + 1e-12), dtype=bool)


# --------------------------------------------------------------------------
# kappa and validity horizons
# --------------------------------------------------------------------------


@_broadcasting
def kappa(t: ArrayLike, alpha: ArrayLike, R0: ArrayLike, lip_dh: ArrayLike) -> FloatArray:
    """The dimensionless ``kappa = t Lip(Dh) sqrt(R0) / alpha`` (seed, before Prop. 1.1).

    Time has units ``[alpha]^2 [w]^2 / [y]^2``, so ``kappa`` is dimensionless;
    the NTK approximation holds (relative to ``sqrt(R0)``) when ``kappa << 1``.
    """
    t_ = _arr("t", t)
    a_ = _arr("alpha", alpha, positive=True, finite=True)
    r_ = _arr("R0", R0, finite=True)
    l_ = _arr("lip_dh", lip_dh)
    return _mul(t_, l_, np.sqrt(r_), _inv(a_))


def _kappa_checked(t: FloatArray, a: FloatArray, r: FloatArray, l: FloatArray) -> FloatArray:
    return _mul(t, l, np.sqrt(r), _inv(a))


@_broadcasting
def prop_1_1_valid_until(
    alpha: ArrayLike, R0: ArrayLike, lip_h: ArrayLike, rho: ArrayLike = np.inf
) -> FloatArray:
    """End of validity of Prop. 1.1: ``alpha rho / (Lip(h) sqrt(R0))``.

    ``inf`` when ``rho`` is infinite, or when ``Lip(h) sqrt(R0) = 0`` (nothing
    moves); 0 when ``Lip(h)`` is infinite and ``rho`` finite.
    """
    a = _arr("alpha", alpha, positive=True, finite=True)
    r = _arr("R0", R0, finite=True)
    lh = _arr("lip_h", lip_h)
    rh = _arr("rho", rho)
    return _prop_1_1_end(a, r, lh, rh)


def _prop_1_1_end(a: FloatArray, r: FloatArray, lh: FloatArray, rh: FloatArray) -> FloatArray:
    denom = _mul(lh, np.sqrt(r))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = (a * rh) / denom
    return np.where(np.isinf(rh) | (denom == 0), np.inf, ratio)


@_broadcasting
def theorem_1_2_valid_until(alpha: ArrayLike, R0: ArrayLike, rho: ArrayLike = np.inf) -> FloatArray:
    """End of validity of Theorem 1.2 (and 3.2): ``alpha^2 rho^2 / R0``.

    By the (corrected) Prop. 3.1 the weights stay in the ball of radius
    ``sqrt(T R0)/alpha <= rho`` up to this time. ``inf`` when ``rho`` is
    infinite or ``R0 = 0``.
    """
    a = _arr("alpha", alpha, positive=True, finite=True)
    r = _arr("R0", R0, finite=True)
    rh = _arr("rho", rho)
    return _thm_1_2_end(a, r, rh)


def _thm_1_2_end(a: FloatArray, r: FloatArray, rh: FloatArray) -> FloatArray:
    num = _mul(a, a, rh, rh)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = num / r
    return np.where(np.isinf(rh) | (r == 0), np.inf, ratio)


theorem_3_2_valid_until = theorem_1_2_valid_until


@_broadcasting
def corollary_2_2_valid_until(alpha: ArrayLike, c: ArrayLike = 1.0) -> FloatArray:
    """End of validity of Corollary 2.2: ``c alpha^2`` (``c`` unspecified by the paper)."""
    a = _arr("alpha", alpha, positive=True, finite=True)
    c_ = _arr("c", c, positive=True, finite=True)
    return c_ * a * a


# --------------------------------------------------------------------------
# the bounds
# --------------------------------------------------------------------------


@_broadcasting
def prop_1_1(
    t: ArrayLike,
    alpha: ArrayLike,
    R0: ArrayLike,
    lip_h: ArrayLike,
    lip_dh: ArrayLike,
    rho: ArrayLike = np.inf,
) -> Bound:
    """Proposition 1.1 (Chizat et al.), seed eq. (5), corrected form (cf. eq. (16)).

    ``gap(t) <= t Lip(h)^2 kappa sqrt(R0) = t^2 Lip(h)^2 Lip(Dh) R0 / alpha``
    (the seed's eq. (5) writes ``kappa R0``, which is dimensionally wrong; the
    corrected form is what eq. (16) derives).

    Validity: ``t <= alpha rho / (Lip(h) sqrt(R0))`` (the weights stay in the
    ball of radius ``rho`` where the Lipschitz constants hold).
    """
    t_ = _arr("t", t)
    a_ = _arr("alpha", alpha, positive=True, finite=True)
    r_ = _arr("R0", R0, finite=True)
    lh = _arr("lip_h", lip_h)
    ld = _arr("lip_dh", lip_dh)
    rh = _arr("rho", rho)
    value = _mul(t_, t_, lh, lh, ld, r_, _inv(a_))
    end = _prop_1_1_end(a_, r_, lh, rh)
    shape = _shape_of(value, end, t_)
    return Bound(np.broadcast_to(value, shape).copy(), np.broadcast_to(_le(t_, end), shape).copy())


@_broadcasting
def prop_3_1(t: ArrayLike, alpha: ArrayLike, R0: ArrayLike) -> Bound:
    """Proposition 3.1, seed eq. (17)-(18), corrected form: weight change.

    ``||w(t) - w0|| <= sqrt(t R0) / alpha`` and the same for ``wbar`` (the
    seed writes ``sqrt(t R0 / alpha)``; Cauchy-Schwarz with
    ``int ||dw/dt||^2 = (R0 - R(t)) / alpha^2`` gives the corrected form).

    Validity: always (square loss, any smooth model).
    """
    t_ = _arr("t", t)
    a_ = _arr("alpha", alpha, positive=True, finite=True)
    r_ = _arr("R0", R0, finite=True)
    value = np.sqrt(_mul(t_, r_)) / a_
    shape = _shape_of(value, t_)
    return Bound(np.broadcast_to(value, shape).copy(), np.ones(shape, dtype=bool))


@_broadcasting
def theorem_1_2(
    t: ArrayLike,
    alpha: ArrayLike,
    R0: ArrayLike,
    lip_dh: ArrayLike,
    rho: ArrayLike = np.inf,
) -> Bound:
    """Theorem 1.2 (main result), seed eq. (6), corrected form.

    ``gap(t) <= min(6 kappa sqrt(R0), sqrt(8 R0))`` (the seed writes ``8 R0``;
    ``||r||, ||rbar|| <= sqrt(2 R0)`` gives ``sqrt(8 R0)``).

    Validity: ``t <= alpha^2 rho^2 / R0``.
    """
    t_ = _arr("t", t)
    a_ = _arr("alpha", alpha, positive=True, finite=True)
    r_ = _arr("R0", R0, finite=True)
    ld = _arr("lip_dh", lip_dh)
    rh = _arr("rho", rho)
    k = _kappa_checked(t_, a_, r_, ld)
    value = np.minimum(_mul(6.0, k, np.sqrt(r_)), np.sqrt(8.0 * r_))
    end = _thm_1_2_end(a_, r_, rh)
    shape = _shape_of(value, end, t_)
    return Bound(np.broadcast_to(value, shape).copy(), np.broadcast_to(_le(t_, end), shape).copy())


@_broadcasting
def theorem_1_3_lower(t: ArrayLike, alpha: ArrayLike, R0: ArrayLike, lip_dh: ArrayLike) -> Bound:
    """Theorem 1.3 (converse), seed eq. (7), corrected form: a LOWER bound.

    On the converse model of THEORY.md 4.1 (``h(w) = a w + (b/2) w^2`` with
    ``a = 1/sqrt(T)``, ``b = Lip(Dh)``, ``w0 = 0``, ``y* = sqrt(2 R0)``):
    ``gap(T) >= min(kappa sqrt(R0) / 5, sqrt(R0) / 5)`` (the seed writes
    ``R0 / 5``, which is not homogeneous in the output scale).

    Validity: the statement is about that one model, at the horizon ``T`` it
    was built for (``t = T``); it says nothing about other models or other
    times. The returned mask is all True; callers decide where it applies.
    """
    t_ = _arr("t", t)
    a_ = _arr("alpha", alpha, positive=True, finite=True)
    r_ = _arr("R0", R0, finite=True)
    ld = _arr("lip_dh", lip_dh)
    k = _kappa_checked(t_, a_, r_, ld)
    s = np.sqrt(r_)
    value = np.minimum(_mul(k, s), s) / 5.0
    shape = _shape_of(value, t_)
    return Bound(np.broadcast_to(value, shape).copy(), np.ones(shape, dtype=bool))


@_broadcasting
def theorem_3_2(
    t: ArrayLike,
    alpha: ArrayLike,
    R0: ArrayLike,
    lip_dh: ArrayLike,
    rho: ArrayLike = np.inf,
) -> Bound:
    """Theorem 3.2 (frozen-kernel variant), seed eq. (20) with (26)-(27), corrected form.

    For ``r'`` evolving under the frozen kernel ``K_T`` from ``r'(0) = r(0)``:
    ``||r'(T) - rbar(T)|| <= min(3 kappa sqrt(R0), sqrt(8 R0))`` (the seed
    writes ``8 R0``). Note this bounds ``r'``, not the gap ``r - rbar``.

    Validity: ``t <= alpha^2 rho^2 / R0`` (as Theorem 1.2).
    """
    t_ = _arr("t", t)
    a_ = _arr("alpha", alpha, positive=True, finite=True)
    r_ = _arr("R0", R0, finite=True)
    ld = _arr("lip_dh", lip_dh)
    rh = _arr("rho", rho)
    k = _kappa_checked(t_, a_, r_, ld)
    value = np.minimum(_mul(3.0, k, np.sqrt(r_)), np.sqrt(8.0 * r_))
    end = _thm_1_2_end(a_, r_, rh)
    shape = _shape_of(value, end, t_)
    return Bound(np.broadcast_to(value, shape).copy(), np.broadcast_to(_le(t_, end), shape).copy())


@_broadcasting
def corollary_2_2(t: ArrayLike, alpha: ArrayLike, C: ArrayLike = 1.0, c: ArrayLike = 1.0) -> Bound:
    """Corollary 2.2 (lazy two-layer mean-field network), seed eq. (12).

    ``gap(t) <= C min(t / alpha, 1)`` for ``t <= c alpha^2``.

    ``C`` and ``c`` are constants "depending only on K" that the paper does not
    specify: with the defaults ``C = c = 1`` this is a *shape* reference (the
    slope ``T/alpha`` and where it saturates), not a checkable bound.

    Validity: ``t <= c alpha^2``.
    """
    t_ = _arr("t", t)
    a_ = _arr("alpha", alpha, positive=True, finite=True)
    C_ = _arr("C", C, positive=True, finite=True)
    c_ = _arr("c", c, positive=True, finite=True)
    value = C_ * np.minimum(t_ / a_, 1.0)
    end = c_ * a_ * a_
    shape = _shape_of(value, end, t_)
    return Bound(np.broadcast_to(value, shape).copy(), np.broadcast_to(_le(t_, end), shape).copy())


@_broadcasting
def lemma_3_3_rhs(t: ArrayLike, B_norm: ArrayLike) -> FloatArray:
    """Right-hand side of Lemma 3.3, seed eq. (23)-(25): ``2 sqrt(t) ||B||_op``.

    ``||exp(-(A+B)^T (A+B) t) - exp(-A^T A t)||_op <= 2 sqrt(t) ||B||_op`` for
    all ``t >= 0`` and all operators ``A``, ``B``.
    """
    t_ = _arr("t", t)
    b_ = _arr("B_norm", B_norm)
    return _mul(2.0, np.sqrt(t_), b_)


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------

#: Names of the bound functions, in the order of THEORY.md section 3.
BOUND_NAMES: tuple[str, ...] = (
    "prop_1_1",
    "prop_3_1",
    "theorem_1_2",
    "theorem_1_3_lower",
    "theorem_3_2",
    "corollary_2_2",
)


def _always(**_: ArrayLike) -> FloatArray:
    return np.asarray(np.inf)


_ENDS: dict[str, Callable[..., FloatArray]] = {
    "prop_1_1": prop_1_1_valid_until,
    "prop_3_1": _always,
    "theorem_1_2": theorem_1_2_valid_until,
    "theorem_1_3_lower": _always,
    "theorem_3_2": theorem_3_2_valid_until,
    "corollary_2_2": corollary_2_2_valid_until,
}


def validity_end(name: str, **params: ArrayLike) -> FloatArray:
    """Time at which bound ``name`` stops being valid (``inf`` if never).

    ``params`` are the keyword arguments of the matching ``*_valid_until``
    function, e.g. ``validity_end("theorem_1_2", alpha=10, R0=0.5, rho=1)``
    (for ``prop_1_1``: ``alpha, R0, lip_h, rho``; for ``corollary_2_2``:
    ``alpha, c``). Always-valid bounds (``prop_3_1``, ``theorem_1_3_lower``)
    accept and ignore any parameters.
    """
    try:
        fn = _ENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown bound {name!r}; accepted: {', '.join(BOUND_NAMES)}"
        ) from None
    try:
        return fn(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for validity_end({name!r}): {exc}") from None
