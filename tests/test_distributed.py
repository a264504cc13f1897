"""Sweeps on Dask distributed, against a LocalCluster on this machine."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ntk_tui


distributed = pytest.importorskip("distributed")

from ntk_tui.config import SweepSpec  # noqa: E402
from ntk_tui.distributed import DaskUnavailable, connect, default_chunk_size, run_sweep_dask  # noqa: E402
from ntk_tui.store import Store  # noqa: E402
from ntk_tui.sweep import run_sweep  # noqa: E402

PKG_ROOT = str(Path(ntk_tui.__file__).resolve().parent.parent)

SMALL = SweepSpec(family="twolayer", alphas=[10.0, 100.0, 1000.0], seeds=[0, 1], Ts=[1.0, 3.0],
                  model={"m": 16}, data={"n": 8, "d": 2}, integrator={"times": 5})


@pytest.fixture(scope="module")
def client():
    os.environ["PYTHONPATH"] = os.pathsep.join([PKG_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.CRITICAL)
    c = distributed.Client(cluster)
    yield c
    c.close()
    # closed here rather than whenever the garbage collector finalizes it, in
    # the middle of a later test (its finalizer runs Python code in the main thread)
    cluster.close()
    cluster.close()


def _same_rows(a, b):
    assert [r["index"] for r in a.rows] == [r["index"] for r in b.rows]
    for ra, rb in zip(a.rows, b.rows):
        for key in ("T", "alpha", "m", "seed", "status", "R0", "kappa", "gap_T", "bound_theorem_1_2"):
            assert ra.get(key) == rb.get(key), (key, ra, rb)


def test_same_results_as_local(client, tmp_path):
    local = run_sweep(SMALL, threads=2)
    store = Store(tmp_path / "h.sqlite3")
    remote = run_sweep(SMALL, client=client, store=store, chunk_size=3)
    assert remote.status == "done" and remote.n_ok == len(SMALL) == 12
    assert remote.scheduler.startswith("tcp://")
    _same_rows(local, remote)
    for i in local.runs:
        np.testing.assert_array_equal(local.runs[i].gap, remote.runs[i].gap)
        np.testing.assert_array_equal(local.runs[i].output, remote.runs[i].output)
    assert remote.fits == local.fits
    # gathered into the same store layout as a local sweep
    rec = store.get(remote.record_id)
    assert rec.status == "done" and rec.n_runs == 12
    back = store.load(remote.record_id, runs=True)
    np.testing.assert_array_equal(back.runs[5].gap, local.runs[5].gap)


def test_data_file_is_sent_to_the_workers(client, tmp_path):
    X, y = ntk_tui.datasets.sphere(8, 2, seed=5)
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",")
    spec = SweepSpec(family="twolayer", alphas=[10.0, 100.0], model={"m": 8}, data={"source": "file", "path": str(path)},
                     integrator={"times": 4})
    local = run_sweep(spec, threads=1)
    remote = run_sweep_dask(spec, client, chunk_size=1)
    _same_rows(local, remote)


def test_killed_worker_chunk_is_retried(client, tmp_path):
    # two chunks of about a second each, so a worker can be killed while it computes one
    spec = SweepSpec(family="twolayer", alphas=[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0], Ts=[100.0],
                     model={"m": 256}, data={"n": 32, "d": 4}, integrator={"times": 4})
    killed = {}

    def progress(done, total):
        if killed:
            return
        deadline = time.time() + 30
        while time.time() < deadline:
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if busy:
                break
            time.sleep(0.02)
        time.sleep(0.3)  # let the chunk start computing
        worker = next(iter(busy))
        pid = client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        killed.update(worker=worker, pid=pid, keys=list(busy[worker]))

    store = Store(tmp_path / "h.sqlite3")
    remote = run_sweep_dask(spec, client, progress=progress, store=store, chunk_size=4)
    assert killed, "no worker was killed"
    # the chunk the killed worker was computing went to "processing" again: it was retried
    key = killed["keys"][0]
    story = client.run_on_scheduler(lambda dask_scheduler: [tuple(t[:3]) for t in dask_scheduler.story(key)])
    assert sum(1 for k, start, finish in story if finish == "processing") >= 2, story
    assert any(finish == "memory" for k, start, finish in story), story
    assert remote.status == "done" and remote.n_ok == 8, remote.rows
    local = run_sweep(spec, threads=2)
    _same_rows(local, remote)
    assert store.get(remote.record_id).n_runs == 8
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_cli_scheduler_option(client, tmp_path):
    address = client.scheduler.address
    db = tmp_path / "h.sqlite3"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PKG_ROOT, os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-m", "ntk_tui", "sweep", "--family", "converse", "--alpha", "100,1000,10000",
                        "--T", "1,2", "--times", "4", "--scheduler", address, "--db", str(db), "--json"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["n_done"] == 6 and doc["scheduler"] == address
    local = run_sweep(SweepSpec(family="converse", alphas=[100.0, 1000.0, 1e4], Ts=[1.0, 2.0],
                                integrator={"times": 4}), threads=1)
    assert [f["slope"] for f in doc["fits"]["alpha"]] == pytest.approx([f["slope"] for f in local.fits["alpha"]],
                                                                     rel=1e-12)
    assert Store(db).list(kind="sweep")[0].n_runs == 6


def test_unreachable_scheduler():
    with pytest.raises(DaskUnavailable, match="cannot reach the Dask scheduler"):
        connect("tcp://127.0.0.1:9", timeout=1)


def test_default_chunk_size():
    assert default_chunk_size(0, 4) == 1
    assert default_chunk_size(10, 4) == 1
    assert default_chunk_size(1000, 4) == 63
    assert default_chunk_size(10**6, 4) == 64
