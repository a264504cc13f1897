"""Sweeps on a Dask distributed cluster (optional extra: ``pip install 'ntk-tui[dask]'``).

The sweep's tasks are cut into chunks; each chunk is one Dask task that runs
one Rust batch (``simulate_batch(..., paired=True)``) on a worker and returns
the runs as plain dicts (``Run.to_dict()``). The client gathers them as they
complete and stores each run at once, exactly like the local path, so the
store and the output files are the same whether a sweep ran here or on a
cluster. A chunk whose worker dies is rescheduled by the Dask scheduler on
another worker; a chunk that raises is retried ``retries`` times.

Usage::

    from dask.distributed import Client
    from ntk_tui.distributed import run_sweep_dask
    result = run_sweep_dask(spec, Client("tcp://HOST:8786"), store=Store())

or ``ntk-tui sweep --scheduler tcp://HOST:8786 ...`` (``--scheduler local``
or ``local:N`` starts a LocalCluster of N worker processes on this machine).

Every worker needs ntk-tui installed (same version as the client: the build
info of each chunk is compared with the client's).
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, Callable, Mapping, Sequence

from .config import DataSpec, SweepSpec, SweepTask, build_info
from .sweep import ProgressFn, SweepResult, _chunks, _Collector, _is_cancelled, _ModelCache, _open_store

__all__ = ["DaskUnavailable", "run_sweep_dask", "run_chunk", "connect", "default_chunk_size"]


class DaskUnavailable(RuntimeError):
    """dask.distributed is not installed or the scheduler cannot be reached."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise DaskUnavailable(
            "distributed sweeps need Dask, an optional extra: pip install 'ntk-tui[dask]' "
            "(or: pip install 'dask[distributed]')"
        ) from None
    return distributed


def connect(scheduler: str, *, timeout: float = 10.0, n_workers: int | None = None):
    """A ``Client`` for ``scheduler``: an address (``tcp://HOST:8786``) or
    ``local`` / ``local:N`` (a LocalCluster of N single-threaded worker
    processes on this machine). Returns ``(client, cluster_or_None)``."""
    distributed = _distributed()
    if scheduler == "local" or scheduler.startswith("local:"):
        n = n_workers
        if ":" in scheduler:
            try:
                n = int(scheduler.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"--scheduler local:N needs an integer N (got {scheduler!r})") from None
            if n < 1:
                raise ValueError(f"--scheduler local:N needs N >= 1 (got {n})")
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        return distributed.Client(cluster), cluster
    try:
        client = distributed.Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise DaskUnavailable(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    return client, None


def default_chunk_size(n_tasks: int, n_workers: int) -> int:
    """About four chunks per worker thread, at most 64 runs per chunk."""
    if n_tasks <= 0:
        return 1
    return max(1, min(64, math.ceil(n_tasks / max(1, 4 * n_workers))))


def run_chunk(spec_dict: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]], threads: int = 1) -> dict[str, Any]:
    """Run one chunk (same T) as one Rust batch; executed on a Dask worker.

    Returns ``{"build": ..., "runs": [(task index, run dict), ...],
    "failed": [(task index, reason), ...]}``."""
    import ntk_tui as nt

    from .config import config_from_dict

    spec = config_from_dict(spec_dict)
    assert isinstance(spec, SweepSpec)
    ts = [SweepTask(**t) for t in tasks]
    cache = _ModelCache(spec, size=len(ts) + 1)
    models = [cache.get(t) for t in ts]
    T = ts[0].T
    batch = nt.simulate_batch(models, [t.alpha for t in ts], T, paired=True, threads=threads,
                              **spec.integrator.kwargs(T))
    import numpy as np

    status = np.asarray(batch.status, dtype=object)
    runs, failed = [], []
    for i, t in enumerate(ts):
        st = str(status[i, 0] if status.ndim >= 2 else status[i])
        try:
            runs.append((t.index, batch.run(i, 0).to_dict()))
        except Exception as exc:
            failed.append((t.index, st if st != "ok" else f"{type(exc).__name__}: {exc}"))
    return {"build": build_info(), "runs": runs, "failed": failed}


def _portable_spec(spec: SweepSpec) -> dict[str, Any]:
    """The spec as sent to workers: a data file is read here and sent inline
    (workers may not see the client's files)."""
    d = spec.to_dict()
    if isinstance(spec.data, DataSpec) and spec.data.source == "file":
        X, y = spec.data.load()
        d["data"] = {"source": "inline", "X": X.tolist(), "y": y.tolist()}
    d.pop("execution", None)
    return d


def run_sweep_dask(spec: SweepSpec, client: Any, progress: ProgressFn | None = None, cancel: Any = None,
                   store: Any = None, *, chunk_size: int | None = None, keep_runs: bool = True,
                   name: str | None = None, retries: int = 2, worker_threads: int = 1,
                   on_run: Callable[[dict, Any], Any] | None = None, poll: float = 0.1) -> SweepResult:
    """Run ``spec`` on the Dask cluster of ``client`` (a ``dask.distributed.Client``).

    Same arguments and result as :func:`ntk_tui.sweep.run_sweep` (which calls
    this when given ``client=``). ``chunk_size``: runs per Dask task (default:
    about four chunks per worker thread, at most 64); ``worker_threads``:
    threads of each chunk's Rust batch (1 lets the worker's own threads
    provide the parallelism); ``retries``: re-runs of a chunk that raised.
    """
    distributed = _distributed()
    import ntk_tui as nt

    store = _open_store(store)
    tasks = spec.tasks()
    if tasks:
        _ModelCache(spec, size=1).get(tasks[0])  # bad parameters fail here, not on the cluster
    try:
        n_threads = sum(client.nthreads().values()) or 1
    except Exception:  # pragma: no cover
        n_threads = 1
    size = chunk_size or spec.chunk_size or default_chunk_size(len(tasks), n_threads)
    chunks = _chunks(tasks, size)
    by_index = {t.index: t for t in tasks}
    address = getattr(getattr(client, "scheduler", None), "address", None)
    result = SweepResult(spec=spec, name=name or spec.name, scheduler=str(address or "dask"))
    sweep_id = store.begin_sweep(spec, name=result.name, build=result.build) if store is not None else None
    result.record_id = sweep_id
    result.store_path = str(store.path) if store is not None else None
    col = _Collector(result, store, sweep_id, keep_runs, progress, on_run)
    payload = _portable_spec(spec)
    run_id = uuid.uuid4().hex[:8]
    futures = []
    chunk_of: dict[str, list[SweepTask]] = {}
    for i, chunk in enumerate(chunks):
        key = f"ntk-sweep-{run_id}-{i}"
        fut = client.submit(run_chunk, payload, [t.to_dict() for t in chunk], worker_threads, key=key,
                            retries=retries, pure=False)
        futures.append(fut)
        chunk_of[fut.key] = chunk
    status = "done"
    t0 = time.perf_counter()
    col.report()
    ac = distributed.as_completed(futures)
    remote_versions: set[str] = set()
    try:
        while not ac.is_empty():
            if _is_cancelled(cancel):
                status = "cancelled"
                break
            if not ac.has_ready():
                time.sleep(poll)
                continue
            for fut in ac.next_batch(block=False):
                chunk = chunk_of[fut.key]
                if fut.status == "error":
                    exc = fut.exception()
                    for t in chunk:
                        col.add_failure(t, f"{type(exc).__name__}: {exc}")
                    continue
                if fut.status == "cancelled":
                    continue
                out = fut.result()
                remote_versions.add(str(out.get("build", {}).get("version")))
                for idx, run_dict in out["runs"]:
                    col.add(by_index[idx], nt.Run.from_dict(run_dict))
                for idx, reason in out["failed"]:
                    col.add_failure(by_index[idx], reason)
                fut.release()
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            try:
                client.cancel(pending)
            except Exception:  # pragma: no cover
                pass
    local = str(result.build.get("version"))
    if remote_versions - {local}:
        result.error = (f"workers run ntk-tui {', '.join(sorted(remote_versions))}, "
                        f"the client {local}: results may differ from a local run")
    return col.finish(status, t0)
