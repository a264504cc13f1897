"""Runs of the engine as Python objects: ``simulate``, ``Simulation``, batches.

The Rust extension returns plain dicts of numpy arrays; this module validates
the Python-side arguments, turns those dicts into :class:`Run` / :class:`Batch`
objects, evaluates the bounds on a run's time grid and raises
:class:`IntegrationError` for failed integrations (keeping the partial run).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import _core, bounds as _bounds

Model = _core.Model
METRICS: tuple[str, ...] = tuple(_core.METRICS)
DEFAULT_RTOL: float = _core.DEFAULT_RTOL
DEFAULT_ATOL: float = _core.DEFAULT_ATOL
MAX_THREADS: int = _core.MAX_THREADS
#: The numeric scalars of a run, as ``Batch.scalar`` accepts them.
RUN_SCALARS: tuple[str, ...] = ("alpha", "T", "R0", "rho", "lip_dh", "lip_h", "kappa")
DEFAULT_METHOD = "dop853"
DEFAULT_MAX_STEPS = 1_000_000
DEFAULT_POINTS = 64

#: Per-time series of a run, each of length k.
SERIES: tuple[str, ...] = (
    "gap",
    "residual",
    "residual_lin",
    "loss",
    "loss_lin",
    "weight_change",
    "weight_change_lin",
    "kernel_drift",
    "jacobian_drift",
    "lip_dh_path",
)


class IntegrationError(RuntimeError):
    """An integration that failed (step-size underflow, max_steps, non-finite state).

    ``run`` holds the measurements made before the failure; ``reason`` says why.
    """

    def __init__(self, reason: str, run: Run) -> None:
        super().__init__(f"integration failed: {reason} (kept {len(run.times)} of the requested times)")
        self.reason = reason
        self.run = run


def default_times(T: float, points: int = DEFAULT_POINTS) -> np.ndarray:
    """``points`` log-spaced times in [1e-5 T, T] (the default sampling grid)."""
    T = _positive("T", T)
    if int(points) < 1:
        raise ValueError(f"points must be at least 1 (got {points})")
    return np.geomspace(1e-5 * T, T, int(points)) if points > 1 else np.array([T])


def _positive(name: str, x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number (got {x!r})") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number (got {x!r})")
    return v


def _number(name: str, x: Any) -> float:
    """A float for the core, which checks the range and names ``name`` in its errors."""
    if isinstance(x, (str, bytes)):
        raise ValueError(f"{name} must be a number (got {x!r})")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (got {x!r})") from None


def _whole(name: str, x: Any, low: int, high: int) -> int:
    """An integer in [low, high]; bools and floats are refused rather than coerced."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not low <= x <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}] (got {x!r})")
    return int(x)


def _times(times: Any, T: float) -> np.ndarray:
    if times is None:
        return default_times(T)
    arr = np.asarray(times, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"times must be a 1-D array of times in [0, T] (got shape {arr.shape})")
    return np.ascontiguousarray(arr)


def _metrics(metrics: Iterable[str] | None) -> list[str] | None:
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [metrics]
    names = list(metrics)
    for m in names:
        if m not in METRICS:
            raise ValueError(f"metrics: unknown metric {m!r}; accepted: {', '.join(METRICS)}")
    return names


def _check_model(model: Any, name: str = "model") -> None:
    if not isinstance(model, Model):
        raise ValueError(f"{name} must be an ntk_tui model (Converse, TwoLayer, Quadratic, Linear); got {type(model).__name__}")


@dataclass(frozen=True)
class Run:
    """The measurements of one run (definitions: THEORY.md section 2).

    Arrays have one entry per reached time; metrics not requested are NaN.
    """

    family: str
    params: dict[str, Any]
    alpha: float
    T: float
    R0: float
    rho: float
    lip_dh: float
    lip_dh_kind: str
    lip_h: float
    kappa: float
    times: np.ndarray
    output: np.ndarray
    output_lin: np.ndarray
    gap: np.ndarray
    residual: np.ndarray
    residual_lin: np.ndarray
    loss: np.ndarray
    loss_lin: np.ndarray
    weight_change: np.ndarray
    weight_change_lin: np.ndarray
    kernel_drift: np.ndarray
    jacobian_drift: np.ndarray
    lip_dh_path: np.ndarray
    stats: dict[str, Any]
    status: str
    metrics: tuple[str, ...]
    requested_times: np.ndarray = field(repr=False)

    @property
    def complete(self) -> bool:
        """True when every requested time was reached."""
        return len(self.times) == len(self.requested_times)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def bounds(self) -> dict[str, _bounds.Bound]:
        """The theory's bounds evaluated on this run's time grid.

        Prop 1.1, Prop 3.1, Theorem 1.2 and Theorem 3.2 always; Theorem 1.3's
        lower bound for the converse model; Corollary 2.2 (shape only, C = c = 1)
        for the two-layer network. Lip constants are the run's (exact or upper
        bounds on the ball of radius rho = sqrt(T R0)/alpha, which neither flow
        leaves before T by Prop 3.1).
        """
        t, a, r0 = self.times, self.alpha, self.R0
        out = {
            "prop_1_1": _bounds.prop_1_1(t, a, r0, self.lip_h, self.lip_dh, self.rho),
            "prop_3_1": _bounds.prop_3_1(t, a, r0),
            "theorem_1_2": _bounds.theorem_1_2(t, a, r0, self.lip_dh, self.rho),
            "theorem_3_2": _bounds.theorem_3_2(t, a, r0, self.lip_dh, self.rho),
        }
        if self.family == "converse":
            out["theorem_1_3_lower"] = _bounds.theorem_1_3_lower(t, a, r0, self.lip_dh)
        if self.family == "twolayer":
            out["corollary_2_2"] = _bounds.corollary_2_2(t, a)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (arrays as lists; NaN kept as float nan)."""
        d: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            d[name] = v.tolist() if isinstance(v, np.ndarray) else (list(v) if isinstance(v, tuple) else v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        """Inverse of :meth:`to_dict`."""
        kw = dict(d)
        for name in ("times", "requested_times", *SERIES):
            kw[name] = np.asarray(kw[name], dtype=np.float64)
        k = len(kw["times"])
        for name in ("output", "output_lin"):
            arr = np.asarray(kw[name], dtype=np.float64)
            kw[name] = arr.reshape(k, -1) if k else arr.reshape(0, kw["params"].get("n", 1))
        kw["metrics"] = tuple(kw["metrics"])
        return cls(**kw)


def _make_run(model: Model, raw: dict[str, Any]) -> Run:
    return Run(
        family=model.family,
        params=dict(model.params),
        alpha=raw["alpha"],
        T=raw["T"],
        R0=raw["R0"],
        rho=raw["rho"],
        lip_dh=raw["lip_dh"],
        lip_dh_kind=model.lip_dh_kind,
        lip_h=raw["lip_h"],
        kappa=raw["kappa"],
        times=raw["times"],
        output=raw["output"],
        output_lin=raw["output_lin"],
        **{name: raw[name] for name in SERIES},
        stats=dict(raw["stats"]),
        status=raw["status"],
        metrics=tuple(raw["metrics"]),
        requested_times=raw["requested_times"],
    )


def _with_options(raw: dict[str, Any], atol: float) -> dict[str, Any]:
    """Adds the requested atol to the stats (the core reports the method and the rtol it used)."""
    raw["stats"]["atol"] = float(atol)
    return raw


def _raise_if_failed(run: Run) -> Run:
    if run.status.startswith("failed"):
        raise IntegrationError(run.status.removeprefix("failed: "), run)
    return run


def simulate(
    model: Model,
    alpha: float,
    T: float,
    times: Sequence[float] | np.ndarray | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    method: str = DEFAULT_METHOD,
    max_steps: int = DEFAULT_MAX_STEPS,
    metrics: Iterable[str] | None = None,
) -> Run:
    """Trains ``model`` by gradient flow at scale ``alpha`` and its linearization, to time T.

    ``times`` (sorted, within [0, T]; default :func:`default_times`) are where
    the measurements are taken, by dense output. ``metrics`` selects the
    optional measurements (default: all of :data:`METRICS`). Raises
    ``ValueError`` for bad inputs and :class:`IntegrationError` (with the
    partial run) when the integration fails.
    """
    _check_model(model)
    T = _positive("T", T)
    raw = _core.simulate(model, *_run_args(alpha, T, times, rtol, atol, method, max_steps, metrics))
    return _raise_if_failed(_make_run(model, _with_options(raw, atol)))


def _run_args(
    alpha: Any, T: float, times: Any, rtol: Any, atol: Any, method: Any, max_steps: Any, metrics: Iterable[str] | None
) -> tuple[float, float, np.ndarray, float, float, str, int, list[str] | None]:
    """The core's run arguments after the model (T already checked positive)."""
    return (
        _number("alpha", alpha), T, _times(times, T), _number("rtol", rtol), _number("atol", atol), str(method),
        _whole("max_steps", max_steps, 1, 2**64 - 1), _metrics(metrics),
    )


class Simulation:
    """A run advanced piece by piece, for live display.

    ``advance`` computes (with the GIL released) until ``max_points`` more
    requested times are measured or ``max_seconds`` have passed (checked
    between integration steps and between measured points), and returns
    the new measurements as a dict of arrays (keys ``"times"``, ``"output"``,
    ``"output_lin"`` and every series). The values are identical to
    :func:`simulate` on the same inputs.
    """

    def __init__(
        self,
        model: Model,
        alpha: float,
        T: float,
        times: Sequence[float] | np.ndarray | None = None,
        rtol: float = DEFAULT_RTOL,
        atol: float = DEFAULT_ATOL,
        method: str = DEFAULT_METHOD,
        max_steps: int = DEFAULT_MAX_STEPS,
        metrics: Iterable[str] | None = None,
    ) -> None:
        _check_model(model)
        T = _positive("T", T)
        self.model = model
        self._atol = atol
        self._sim = _core.Simulation(model, *_run_args(alpha, T, times, rtol, atol, method, max_steps, metrics))

    def advance(self, max_points: int | None = None, max_seconds: float | None = None) -> dict[str, np.ndarray]:
        """Measures the next requested times; raises IntegrationError if the run fails."""
        if max_points is not None:
            max_points = _whole("max_points", max_points, 1, 2**63 - 1)
        if max_seconds is not None:
            max_seconds = _number("max_seconds", max_seconds)
        first, count = self._sim.advance(max_points, max_seconds)
        run = self.result()
        if run.status.startswith("failed"):
            raise IntegrationError(run.status.removeprefix("failed: "), run)
        chunk = {name: getattr(run, name)[first : first + count] for name in ("times", "output", "output_lin", *SERIES)}
        return chunk

    @property
    def done(self) -> bool:
        return bool(self._sim.done)

    @property
    def n_done(self) -> int:
        return int(self._sim.n_done)

    @property
    def n_total(self) -> int:
        return int(self._sim.n_total)

    @property
    def t(self) -> float:
        """Current time of the integrator."""
        return float(self._sim.t)

    @property
    def status(self) -> str:
        return str(self._sim.status)

    def result(self) -> Run:
        """The run so far (complete once ``done``)."""
        return _make_run(self.model, _with_options(self._sim.result(), self._atol))


@dataclass(frozen=True)
class Batch:
    """Results of many runs: arrays of shape ``shape + (k,)``.

    ``shape`` is ``(len(models), len(alphas))`` (or ``(N, 1)`` for paired
    batches). ``status[i, j]`` is ``"ok"``, ``"failed: ..."`` or ``"cancelled"``.
    The arrays and ``status`` are assembled by the core from its results; the
    :class:`Run` objects of ``runs``, ``run(i, j)`` and ``scalar`` are built on
    first use (for 10,000 small runs, building them all takes a fifth as long
    as integrating them).
    """

    models: tuple[Model, ...]
    alphas: np.ndarray
    paired: bool
    #: the requested times
    times: np.ndarray
    #: the finished core batch that holds the results
    job: Any = field(repr=False, compare=False)
    atol: float = field(repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.models), 1 if self.paired else len(self.alphas))

    @cached_property
    def runs(self) -> tuple[tuple[Run, ...], ...]:
        rows, width = self.shape
        raws = self.job.results()
        runs = [_make_run(self.models[idx // width], _with_options(raw, self.atol)) for idx, raw in enumerate(raws)]
        return tuple(tuple(runs[r * width : (r + 1) * width]) for r in range(rows))

    @property
    def status(self) -> np.ndarray:
        return np.array(self.job.statuses(), dtype=object).reshape(self.shape)

    def run(self, i: int, j: int = 0) -> Run:
        return self.runs[i][j]

    def scalar(self, name: str) -> np.ndarray:
        """A run scalar (``R0``, ``kappa``, ``lip_dh``, ``alpha``...) for every run."""
        if name not in RUN_SCALARS:
            raise ValueError(f"name: unknown run scalar {name!r}; accepted: {', '.join(RUN_SCALARS)}")
        return np.array([[getattr(r, name) for r in row] for row in self.runs], dtype=np.float64)

    def __getattr__(self, name: str) -> np.ndarray:
        if name in SERIES:
            return self.job.series(name).reshape(self.shape + (len(self.times),))
        raise AttributeError(name)

    @property
    def gap_T(self) -> np.ndarray:
        """gap at the last requested time (NaN where a run did not get there)."""
        return self.gap[..., -1]


class BatchJob:
    """A batch running in the background: poll ``progress``, ``cancel()``, ``wait()``, ``result()``."""

    def __init__(
        self, job: Any, models: tuple[Model, ...], alphas: np.ndarray, paired: bool, times: np.ndarray, atol: float
    ) -> None:
        self._job = job
        self._times = times
        self._models = models
        self._alphas = alphas
        self._paired = paired
        self._atol = atol
        self._batch: Batch | None = None

    @property
    def progress(self) -> tuple[int, int]:
        """(runs finished, total runs); safe to read from any thread."""
        done, total = self._job.progress
        return int(done), int(total)

    def cancel(self) -> None:
        """Stops the batch within one integration step; finished runs are kept."""
        self._job.cancel()

    @property
    def done(self) -> bool:
        return bool(self._job.done)

    def wait(self, timeout: float | None = None) -> bool:
        """Waits (GIL released) up to ``timeout`` seconds (None or inf: until the end); True when finished.

        Any number of threads may wait at once.
        """
        return bool(self._job.wait(None if timeout is None else _number("timeout", timeout)))

    def result(self) -> Batch:
        """The batch (waits for the end)."""
        if self._batch is None:
            self.wait()
            self._batch = Batch(self._models, self._alphas, self._paired, self._times, self._job, self._atol)
        return self._batch


def start_batch(
    models: Sequence[Model],
    alphas: Sequence[float] | np.ndarray,
    T: float,
    times: Sequence[float] | np.ndarray | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    method: str = DEFAULT_METHOD,
    max_steps: int = DEFAULT_MAX_STEPS,
    metrics: Iterable[str] | None = None,
    threads: int | None = None,
    paired: bool = False,
) -> BatchJob:
    """Starts every (model, alpha) run in parallel without blocking; see :func:`simulate_batch`."""
    models = tuple(models)
    if not models:
        raise ValueError("models must contain at least one model")
    for i, m in enumerate(models):
        _check_model(m, f"models[{i}]")
    alphas_arr = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas_arr.ndim != 1 or alphas_arr.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D sequence of positive numbers (got shape {alphas_arr.shape})")
    if paired:
        if len(alphas_arr) != len(models):
            raise ValueError(f"alphas must have one entry per model when paired=True ({len(models)} models, {len(alphas_arr)} alphas)")
        jobs = [(i, float(a)) for i, a in enumerate(alphas_arr)]
    else:
        jobs = [(i, float(a)) for i in range(len(models)) for a in alphas_arr]
    if threads is not None:
        threads = _whole("threads", threads, 1, MAX_THREADS)
    T = _positive("T", T)
    args = _run_args(1.0, T, times, rtol, atol, method, max_steps, metrics)[1:]
    job = _core.start_batch(list(models), jobs, *args, threads)
    return BatchJob(job, models, alphas_arr, paired, args[1], atol)


def simulate_batch(
    models: Sequence[Model],
    alphas: Sequence[float] | np.ndarray,
    T: float,
    times: Sequence[float] | np.ndarray | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    method: str = DEFAULT_METHOD,
    max_steps: int = DEFAULT_MAX_STEPS,
    metrics: Iterable[str] | None = None,
    threads: int | None = None,
    paired: bool = False,
) -> Batch:
    """Runs every (model, alpha) pair in parallel in Rust (GIL released) and waits.

    With ``paired=True`` model i runs with alpha i only (e.g. width sweeps with
    alpha = sqrt(m)). A failed run is reported in ``Batch.status`` and does not
    sink the batch. Results are identical whatever ``threads`` is.
    """
    job = start_batch(models, alphas, T, times, rtol, atol, method, max_steps, metrics, threads, paired)
    try:
        while not job.wait(0.1):  # short waits, so that Ctrl-C gets through
            pass
    except BaseException:
        job.cancel()
        raise
    return job.result()


def lemma_3_3(A: np.ndarray, B: np.ndarray, t: float) -> tuple[float, float]:
    """Both sides of Lemma 3.3: ``(||exp(-(A+B)^T(A+B)t) - exp(-A^T A t)||, 2 sqrt(t) ||B||)``.

    Computed in Rust from symmetric eigendecompositions.
    """
    A2 = np.ascontiguousarray(np.asarray(A, dtype=np.float64))
    B2 = np.ascontiguousarray(np.asarray(B, dtype=np.float64))
    if A2.ndim != 2 or B2.ndim != 2:
        raise ValueError(f"A and B must be 2-D matrices (got {A2.ndim}-D and {B2.ndim}-D)")
    return _core.lemma_3_3(A2, B2, float(t))
