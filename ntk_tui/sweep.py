"""Sweeps: many runs over alpha (or width m with alpha = sqrt(m)), seeds and T,
and the fitted scaling exponents of gap(T).

``run_sweep(spec)`` runs the grid locally on the Rust batch engine: the tasks
are cut into chunks (one ``start_batch`` job each, ``paired=True``) and a few
jobs run at once; every finished run is stored (``store=``) the moment its job
completes, so an interrupted sweep keeps everything that finished. With
``client=`` (a ``dask.distributed.Client``) the chunks run on a Dask cluster
instead (see :mod:`ntk_tui.distributed`).

Theory (THEORY.md section 3): in the lazy regime gap(T) is proportional to
T/alpha (Theorem 1.2, tight by Theorem 1.3) and Prop 1.1 bounds it by
T^2/alpha; in the NTK parametrization alpha = sqrt(m), so gap = O(T/sqrt m).
"""

from __future__ import annotations

import collections
import datetime as _dt
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from .config import ConfigError, SweepSpec, SweepTask, build_info

__all__ = [
    "SweepSpec",
    "SweepTask",
    "SweepResult",
    "THEORY_EXPONENTS",
    "run_sweep",
    "fit_exponents",
    "row_from_run",
]

# Exponent of gap(T) predicted by each result, per swept variable.
THEORY_EXPONENTS: dict[str, dict[str, float]] = {
    "alpha": {"Thm 1.2": -1.0, "Prop 1.1": -1.0},
    "m": {"Thm 1.2": -0.5, "Prop 1.1": -0.5},  # alpha = sqrt(m)
    "T": {"Thm 1.2": 1.0, "Prop 1.1": 2.0},
}
# With T = C alpha (the edge of the lazy regime) kappa stays fixed: the
# Theorem 1.2 bound does not fall with alpha, Prop 1.1's T^2/alpha grows.
THEORY_EXPONENTS_T_SCALED: dict[str, dict[str, float]] = {
    "alpha": {"Thm 1.2": 0.0, "Prop 1.1": 1.0},
    "m": {"Thm 1.2": 0.0, "Prop 1.1": 0.5},
}

ProgressFn = Callable[[int, int], Any]


# --------------------------------------------------------------------------- rows and fits


def _last_finite(values: Any) -> float | None:
    import numpy as np

    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        return None
    v = float(arr[-1])
    return v if math.isfinite(v) else None


def row_from_run(task: SweepTask, run: Any, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The flat record of one sweep run (one line of the CSV export)."""
    from .export import summary_dict

    s = dict(summary) if summary is not None else summary_dict(run)
    row: dict[str, Any] = {
        "index": task.index,
        "T": task.T,
        "alpha": task.alpha,
        # the swept width, or the model's own in an alpha sweep of a network
        "m": task.m if task.m is not None else (getattr(run, "params", None) or {}).get("m"),
        "seed": task.seed,
        "status": str(getattr(run, "status", "ok") or "ok"),
        "R0": s.get("R0"),
        "kappa": s.get("kappa"),
        "lip_dh": s.get("lip_dh"),
        "gap_T": s.get("gap_T"),
        "residual_T": _last_finite(getattr(run, "residual", [])),
        "weight_change_T": _last_finite(getattr(run, "weight_change", [])),
        "kernel_drift_T": _last_finite(getattr(run, "kernel_drift", [])),
        "lip_dh_path": _last_finite(getattr(run, "lip_dh_path", [])),
    }
    for name, b in (s.get("bounds") or {}).items():
        row[f"bound_{name}"] = b.get("value")
        row[f"bound_{name}_valid"] = b.get("valid")
        row[f"ratio_{name}"] = b.get("ratio")
    row["verdict"] = s.get("verdict")
    stats = dict(getattr(run, "stats", {}) or {})
    row["nfev"] = stats.get("nfev")
    row["elapsed_s"] = stats.get("elapsed_s")
    return row


def _normalize_fit(fit: Any) -> dict[str, Any]:
    slope = float(fit.slope)
    ci = getattr(fit, "slope_ci95", None)
    if ci is None:
        lo = hi = float("nan")
    elif isinstance(ci, (tuple, list)) or hasattr(ci, "__len__"):
        lo, hi = float(ci[0]), float(ci[1])
    else:  # a half-width
        lo, hi = slope - float(ci), slope + float(ci)
    return {
        "slope": slope,
        "slope_ci95": [lo, hi],
        "intercept": float(getattr(fit, "intercept", float("nan"))),
        "r2": float(getattr(fit, "r2", float("nan"))),
        "n": int(getattr(fit, "n", 0)),
    }


def _fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, Any] | None:
    from .analysis import fit_power_law

    try:
        return _normalize_fit(fit_power_law(list(xs), list(ys)))
    except (ValueError, ZeroDivisionError, FloatingPointError):
        return None


def fit_exponents(rows: Iterable[Mapping[str, Any]], variable: str = "alpha",
                  T_scaled: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Fit gap(T) = C x^slope (log-log least squares, seeds pooled):

    - ``fits[variable]``: slope in alpha (or in the width m), one fit per T;
    - ``fits["T"]``: slope in T, one fit per alpha (or m).

    Only runs with status ``ok`` and a positive finite gap enter a fit; a fit
    needs at least two distinct values of its variable. Each fit carries the
    theory's exponents (``THEORY_EXPONENTS``). With ``T_scaled`` (T = C alpha)
    there is one fit in alpha over all runs and none in T.
    """
    good = [r for r in rows if r.get("status") == "ok" and isinstance(r.get("gap_T"), (int, float))
            and math.isfinite(r["gap_T"]) and r["gap_T"] > 0]
    fits: dict[str, list[dict[str, Any]]] = {variable: [], "T": []}
    xkey = "m" if variable == "m" else "alpha"
    if T_scaled:
        xs = [float(r[xkey]) for r in good]
        if len(set(xs)) >= 2:
            f = _fit(xs, [r["gap_T"] for r in good])
            if f:
                f.update({"variable": variable, "at": {"T": "C alpha"},
                          "theory": dict(THEORY_EXPONENTS_T_SCALED[variable])})
                fits[variable].append(f)
        return fits

    by_T: dict[float, list] = collections.defaultdict(list)
    for r in good:
        by_T[float(r["T"])].append(r)
    for T in sorted(by_T):
        group = by_T[T]
        xs = [float(r[xkey]) for r in group]
        if len(set(xs)) < 2:
            continue
        f = _fit(xs, [r["gap_T"] for r in group])
        if f:
            f.update({"variable": variable, "at": {"T": T}, "theory": dict(THEORY_EXPONENTS[variable])})
            fits[variable].append(f)

    by_x: dict[float, list] = collections.defaultdict(list)
    for r in good:
        by_x[float(r[xkey])].append(r)
    for x in sorted(by_x):
        group = by_x[x]
        Ts = [float(r["T"]) for r in group]
        if len(set(Ts)) < 2:
            continue
        f = _fit(Ts, [r["gap_T"] for r in group])
        if f:
            at = {xkey: int(x) if xkey == "m" else x}
            if xkey == "m":
                at["alpha"] = math.sqrt(x)
            f.update({"variable": "T", "at": at, "theory": dict(THEORY_EXPONENTS["T"])})
            fits["T"].append(f)
    return fits


# --------------------------------------------------------------------------- result


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class SweepResult:
    """What a sweep produced. ``rows`` (sorted by task index) has one flat
    record per finished run (see :func:`row_from_run`); ``runs`` maps task
    index to the :class:`ntk_tui.Run` when kept; ``status`` is ``"done"``,
    ``"cancelled"``, ``"interrupted"`` (Ctrl-C), ``"failed"`` or
    ``"running"`` (a stored sweep whose process died)."""

    spec: SweepSpec
    rows: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[int, Any] = field(default_factory=dict)
    status: str = "running"
    n_total: int = 0
    elapsed_s: float = 0.0
    build: dict[str, Any] = field(default_factory=build_info)
    created: str = field(default_factory=_now)
    name: str | None = None
    record_id: int | None = None
    store_path: str | None = None
    scheduler: str | None = None
    error: str | None = None
    _fits: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.n_total:
            self.n_total = len(self.spec)
        if self.name is None:
            self.name = self.spec.name

    # --- access
    @property
    def variable(self) -> str:
        return self.spec.variable

    @property
    def n_done(self) -> int:
        return len(self.rows)

    @property
    def n_ok(self) -> int:
        return sum(1 for r in self.rows if r.get("status") == "ok")

    @property
    def n_failed(self) -> int:
        return sum(1 for r in self.rows if r.get("status") != "ok")

    @property
    def complete(self) -> bool:
        return self.n_done == self.n_total

    def task(self, index: int) -> SweepTask:
        tasks = self.__dict__.get("_tasks")
        if tasks is None:
            tasks = self.__dict__["_tasks"] = self.spec.tasks()
        return tasks[index]

    def column(self, key: str):
        import numpy as np

        return np.asarray([np.nan if r.get(key) is None else r.get(key) for r in self.rows], dtype=float)

    @property
    def fits(self) -> dict[str, Any]:
        if self._fits is None:
            self._fits = fit_exponents(self.rows, self.variable, T_scaled=self.spec.T_scale is not None)
        return self._fits

    def refit(self) -> dict[str, Any]:
        self._fits = None
        return self.fits

    # --- conversions
    def summary_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "n_total": self.n_total,
            "n_done": self.n_done,
            "n_ok": self.n_ok,
            "n_failed": self.n_failed,
            "elapsed_s": self.elapsed_s,
            "variable": self.variable,
            "family": self.spec.family,
            "Ts": list(self.spec.Ts),
            "fits": self.fits,
            "scheduler": self.scheduler,
            "error": self.error,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "ntk-tui/sweep",
            "version": 1,
            "name": self.name,
            "created": self.created,
            "config": self.spec.to_dict(),
            "summary": self.summary_dict(),
            "build": self.build,
            "rows": [dict(r) for r in self.rows],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SweepResult":
        from .config import config_from_dict

        spec = config_from_dict(d["config"])
        if not isinstance(spec, SweepSpec):
            raise ConfigError("not a sweep")
        summary = dict(d.get("summary") or {})
        res = cls(spec=spec, rows=[dict(r) for r in d.get("rows", [])], status=summary.get("status", "done"),
                  n_total=int(summary.get("n_total") or 0), elapsed_s=float(summary.get("elapsed_s") or 0.0),
                  build=dict(d.get("build") or {}), created=d.get("created") or _now(), name=d.get("name"),
                  scheduler=summary.get("scheduler"), error=summary.get("error"))
        res.rows.sort(key=lambda r: r["index"])
        return res

    @classmethod
    def from_store(cls, store: Any, rec: Any, runs: bool = False) -> "SweepResult":
        from .config import config_from_dict

        spec = config_from_dict(rec.config)
        if not isinstance(spec, SweepSpec):
            raise ConfigError(f"record #{rec.id} is not a sweep")
        summary = dict(rec.summary)
        res = cls(spec=spec, status=rec.status, n_total=int(summary.get("n_total") or len(spec)),
                  elapsed_s=float(summary.get("elapsed_s") or 0.0), build=dict(rec.build), created=rec.created,
                  name=rec.name, record_id=rec.id, store_path=str(store.path), scheduler=summary.get("scheduler"),
                  error=summary.get("error"))
        tasks = spec.tasks()
        for child in store.children(rec.id):
            t = child.summary.get("task") or {}
            idx = t.get("index")
            if idx is None or not (0 <= idx < len(tasks)):
                continue
            row = child.summary.get("row")
            if row is None:
                row = {"index": idx}
            row = dict(row)
            row["run_id"] = child.id
            res.rows.append(row)
            if runs:
                res.runs[idx] = store.load_run(child.id)
        res.rows.sort(key=lambda r: r["index"])
        return res


# --------------------------------------------------------------------------- collecting


class _Collector:
    """Turns finished runs into rows, stores them and reports progress."""

    def __init__(self, result: SweepResult, store: Any, sweep_id: int | None, keep_runs: bool,
                 progress: ProgressFn | None, on_run: Callable[[dict, Any], Any] | None) -> None:
        self.result = result
        self.store = store
        self.sweep_id = sweep_id
        self.keep_runs = keep_runs
        self.progress = progress
        self.on_run = on_run
        self.done_idx: set[int] = set()

    def add(self, task: SweepTask, run: Any) -> None:
        if task.index in self.done_idx:
            return
        from .export import summary_dict

        summary = summary_dict(run)
        row = row_from_run(task, run, summary)
        if self.store is not None and self.sweep_id is not None:
            cfg = self.result.spec.run_config(task)
            row["run_id"] = self.store.save_run(
                run, config=cfg, parent=self.sweep_id,
                extra={"task": task.to_dict(), "row": row}, build=self.result.build)
        self.done_idx.add(task.index)
        self.result.rows.append(row)
        if self.keep_runs:
            self.result.runs[task.index] = run
        if self.on_run is not None:
            self.on_run(row, run)
        self.report()

    def add_failure(self, task: SweepTask, reason: str) -> None:
        """A task whose run could not be produced at all (e.g. its chunk failed)."""
        if task.index in self.done_idx:
            return
        row = {"index": task.index, "T": task.T, "alpha": task.alpha, "m": task.m, "seed": task.seed,
               "status": f"failed: {reason}", "gap_T": None}
        self.done_idx.add(task.index)
        self.result.rows.append(row)
        if self.on_run is not None:
            self.on_run(row, None)
        self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(len(self.done_idx), self.result.n_total)

    def finish(self, status: str, t0: float) -> SweepResult:
        res = self.result
        res.rows.sort(key=lambda r: r["index"])
        res.status = status
        res.elapsed_s = time.perf_counter() - t0
        res.refit()
        if self.store is not None and self.sweep_id is not None:
            self.store.finish_sweep(self.sweep_id, res)
        return res


def _is_cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    if callable(cancel):
        return bool(cancel())
    return bool(cancel)


def _open_store(store: Any):
    if store is None or store is False:
        return None
    if isinstance(store, (str, os.PathLike)):
        from .store import Store

        return Store(store)
    return store


def _chunks(tasks: Sequence[SweepTask], size: int) -> list[list[SweepTask]]:
    """Consecutive tasks with the same T, at most ``size`` per chunk."""
    out: list[list[SweepTask]] = []
    for t in tasks:
        if out and len(out[-1]) < size and out[-1][0].T == t.T:
            out[-1].append(t)
        else:
            out.append([t])
    return out


class _ModelCache:
    """A small LRU of engine models keyed by their parameters (consecutive
    tasks of a sweep share a seed and a width)."""

    def __init__(self, spec: SweepSpec, size: int = 16) -> None:
        self.spec = spec
        self.size = size
        self.cache: "collections.OrderedDict[str, Any]" = collections.OrderedDict()
        self.data_cache: dict = {}

    def get(self, task: SweepTask):
        import json

        from .config import make_model

        params = self.spec.model_params(task)
        key = json.dumps([params, task.T if self.spec.family == "converse" else None], sort_keys=True, default=str)
        model = self.cache.get(key)
        if model is None:
            model = make_model(self.spec.family, params, self.spec.data, task.T, _data_cache=self.data_cache)
            self.cache[key] = model
            while len(self.cache) > self.size:
                self.cache.popitem(last=False)
        else:
            self.cache.move_to_end(key)
        return model


def _status_at(batch: Any, i: int) -> str:
    import numpy as np

    st = np.asarray(batch.status, dtype=object)
    return str(st[i, 0] if st.ndim >= 2 else st[i])


# --------------------------------------------------------------------------- running


def run_sweep(spec: SweepSpec, progress: ProgressFn | None = None, cancel: Any = None, store: Any = None, *,
              threads: int | None = None, chunk_size: int | None = None, keep_runs: bool = True,
              name: str | None = None, client: Any = None, on_run: Callable[[dict, Any], Any] | None = None,
              poll: float = 0.05) -> SweepResult:
    """Run every task of ``spec`` and return a :class:`SweepResult`.

    - ``progress(done, total)`` is called after every finished run;
    - ``cancel``: a ``threading.Event`` (or a callable returning True) that
      stops the sweep; runs in progress are cancelled, finished ones kept
      (status ``"cancelled"``). Ctrl-C (KeyboardInterrupt) does the same
      (status ``"interrupted"``) and the partial result is returned;
    - ``store``: a :class:`~ntk_tui.store.Store` (or a database path): the
      sweep and every run are saved as they finish;
    - ``threads``: runs computed at once (default: ``spec.threads`` or the
      number of cores); ``chunk_size``: runs per Rust batch job (default 1,
      so an interruption loses only the runs in progress);
    - ``client``: a ``dask.distributed.Client`` to run the chunks on a cluster.
    """
    if client is not None:
        from .distributed import run_sweep_dask

        return run_sweep_dask(spec, client, progress=progress, cancel=cancel, store=store,
                              chunk_size=chunk_size, keep_runs=keep_runs, name=name, on_run=on_run)
    import ntk_tui as nt

    store = _open_store(store)
    threads = threads or spec.threads or os.cpu_count() or 1
    chunk_size = chunk_size or spec.chunk_size or 1
    tasks = spec.tasks()
    models = _ModelCache(spec, size=max(16, 4 * threads))
    if tasks:
        models.get(tasks[0])  # bad parameters fail here, before anything is stored
    result = SweepResult(spec=spec, name=name or spec.name, scheduler="local")
    sweep_id = store.begin_sweep(spec, name=result.name, build=result.build) if store is not None else None
    result.record_id = sweep_id
    result.store_path = str(store.path) if store is not None else None
    col = _Collector(result, store, sweep_id, keep_runs, progress, on_run)
    pending = collections.deque(_chunks(tasks, chunk_size))
    inflight: list[tuple[Any, list[SweepTask]]] = []
    status = "done"
    t0 = time.perf_counter()
    col.report()

    def collect(job: Any, chunk: list[SweepTask]) -> None:
        batch = job.result()
        for i, task in enumerate(chunk):
            st = _status_at(batch, i)
            if st == "cancelled":
                continue
            try:
                run = batch.run(i, 0)
            except Exception as exc:  # a failed slot without a usable partial run
                col.add_failure(task, st if st != "ok" else f"{type(exc).__name__}: {exc}")
                continue
            col.add(task, run)

    try:
        while pending or inflight:
            if _is_cancelled(cancel):
                status = "cancelled"
                break
            while pending and len(inflight) < threads:
                chunk = pending.popleft()
                ms = [models.get(t) for t in chunk]
                alphas = [t.alpha for t in chunk]
                job = nt.start_batch(ms, alphas, chunk[0].T, paired=True, threads=1,
                                     **spec.integrator.kwargs(chunk[0].T))
                inflight.append((job, chunk))
            still = []
            for job, chunk in inflight:
                if job.done:
                    collect(job, chunk)
                else:
                    still.append((job, chunk))
            inflight = still
            if inflight:
                inflight[0][0].wait(poll)  # returns as soon as the oldest job ends (GIL released)
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException as exc:
        status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
        _stop(inflight, col, collect)
        col.finish(status, t0)
        raise
    _stop(inflight, col, collect)
    return col.finish(status, t0)


def _stop(inflight: list, col: _Collector, collect: Callable) -> None:
    """Cancel the jobs still running and keep what they finished."""
    for job, _ in inflight:
        try:
            job.cancel()
        except Exception:  # pragma: no cover
            pass
    for job, chunk in inflight:
        try:
            job.wait(10.0)
            if job.done:
                collect(job, chunk)
        except KeyboardInterrupt:  # a second Ctrl-C: give up on the rest
            break
        except Exception:  # pragma: no cover
            pass
    inflight.clear()


def cancel_event() -> threading.Event:
    """A fresh event for ``run_sweep(..., cancel=...)``."""
    return threading.Event()
