"""Batches: equal to single runs, deterministic across thread counts, cancellable."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import ntk_tui as nt


def nets(k: int = 3, m: int = 32):
    X, y = nt.datasets.sphere(16, 4, seed=0)
    return [nt.TwoLayer(X, y, m=m, seed=s) for s in range(k)]


def test_batch_equals_single_runs() -> None:
    models = nets()
    alphas = [1.0, 30.0, 1e4]
    batch = nt.simulate_batch(models, alphas, 50.0)
    assert batch.gap.shape == (3, 3, 64)
    for i, model in enumerate(models):
        for j, a in enumerate(alphas):
            single = nt.simulate(model, a, 50.0)
            np.testing.assert_array_equal(batch.run(i, j).gap, single.gap)
            np.testing.assert_array_equal(batch.kernel_drift[i, j], single.kernel_drift)
            assert batch.run(i, j).stats["nfev"] == single.stats["nfev"]
    assert (batch.status == "ok").all()
    np.testing.assert_array_equal(batch.gap_T, batch.gap[..., -1])


def test_results_identical_whatever_the_thread_count() -> None:
    models = nets(4)
    alphas = np.geomspace(1, 1e3, 5)
    one = nt.simulate_batch(models, alphas, 20.0, threads=1)
    two = nt.simulate_batch(models, alphas, 20.0, threads=2)
    default = nt.simulate_batch(models, alphas, 20.0)
    for name in nt.SERIES:
        a, b, c = getattr(one, name), getattr(two, name), getattr(default, name)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_paired_batch_runs_model_i_with_alpha_i() -> None:
    X, y = nt.datasets.sphere(8, 3, seed=1)
    widths = [16, 64, 256]
    models = [nt.TwoLayer(X, y, m=m) for m in widths]
    alphas = np.sqrt(widths)
    batch = nt.simulate_batch(models, alphas, 10.0, paired=True, metrics=["gap"])
    assert batch.gap.shape == (3, 1, 64)
    for i, m in enumerate(models):
        np.testing.assert_array_equal(batch.run(i).gap, nt.simulate(m, alphas[i], 10.0, metrics=["gap"]).gap)


def test_one_diverging_model_does_not_sink_the_batch() -> None:
    stiff = nt.Quadratic(6, 3, lip_dh=1e6, seed=1)  # explodes the step count at small alpha
    models = [nets(1)[0], stiff, nt.Converse(10.0, 0.5, 1.0)]
    batch = nt.simulate_batch(models, [1e-3], 10.0, max_steps=20_000, metrics=["gap"])
    status = batch.status[:, 0]
    assert status[0] == "ok" and status[2] == "ok", status
    assert status[1].startswith("failed: maximum number of steps"), status[1]
    assert np.isfinite(batch.gap[0, 0]).all() and np.isfinite(batch.gap[2, 0]).all()


def test_batch_arrays_agree_with_its_runs_including_a_partial_one() -> None:
    """The arrays, status and scalars come from the core's results and the Run
    objects are built later; both views must agree, NaN-padded where a run
    stopped early."""
    models = [nets(1)[0], nt.Quadratic(6, 3, lip_dh=1e6, seed=1)]
    alphas = [1e-3, 2.0]
    batch = nt.simulate_batch(models, alphas, 10.0, max_steps=2_000, metrics=["gap", "loss"])
    assert batch.status[1, 0].startswith("failed")
    for i in range(2):
        for j in range(2):
            run = batch.run(i, j)
            k = len(run.times)
            assert batch.status[i, j] == run.status
            assert batch.scalar("kappa")[i, j] == run.kappa
            for name in ("gap", "loss"):
                np.testing.assert_array_equal(getattr(batch, name)[i, j, :k], getattr(run, name))
                assert np.isnan(getattr(batch, name)[i, j, k:]).all()
    assert len(batch.run(1, 0).times) < len(batch.times)
    np.testing.assert_array_equal(batch.times, batch.run(1, 0).requested_times)
    assert batch.run(0, 1).stats["atol"] == nt.DEFAULT_ATOL
    with pytest.raises(ValueError, match="name: unknown series 'nope'; accepted: gap, "):
        batch.job.series("nope")


def test_a_model_with_an_overflowing_kernel_fails_in_its_slots_only() -> None:
    X, y = nt.datasets.sphere(16, 4, seed=0)
    huge = nt.TwoLayer(X, y, m=8, w0=np.r_[np.full(8, 1e160), np.full(32, 0.01)])
    batch = nt.simulate_batch([nets(1)[0], huge], [1.0, 10.0], 5.0, metrics=["gap"])
    assert (batch.status[0] == "ok").all(), batch.status
    for s in batch.status[1]:
        assert s.startswith("failed: model: the initial kernel K0") and "not finite" in s, s
    assert np.isfinite(batch.gap[0]).all()


def test_any_number_of_threads_can_wait_for_a_batch() -> None:
    job = nt.start_batch(nets(2, m=256), [1.0, 10.0], 300.0, metrics=["gap"])
    got: list[tuple[bool, tuple[int, ...]]] = []

    def waiter() -> None:
        got.append((job.wait(), job.result().gap.shape))

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    assert job.wait(float("inf"))  # inf means until the end, like None
    for t in threads:
        t.join()
    assert got == [(True, (2, 2, 64))] * 3
    assert job.wait(0.0) and job.done


def test_progress_is_monotone_and_cancel_keeps_finished_runs() -> None:
    models = nets(2, m=512)
    alphas = np.geomspace(1, 1e4, 16)
    job = nt.start_batch(models, alphas, 3000.0, threads=2, metrics=["gap"])
    seen = [job.progress]
    while job.progress[0] < 3 and not job.done:
        time.sleep(0.005)
        seen.append(job.progress)
    # cancel from another thread, as the TUI's worker would
    t0 = time.perf_counter()
    threading.Thread(target=job.cancel).start()
    assert job.wait(timeout=5.0)
    latency = time.perf_counter() - t0
    batch = job.result()
    done_counts = [d for d, _ in seen]
    assert done_counts == sorted(done_counts)
    assert all(total == 32 for _, total in seen)
    status = batch.status.ravel()
    n_ok = int((status == "ok").sum())
    assert n_ok >= 3, status
    assert (status == "cancelled").sum() >= 1, status
    assert n_ok + (status == "cancelled").sum() == 32
    for idx in np.flatnonzero(status == "ok"):
        i, j = divmod(int(idx), 16)
        assert np.isfinite(batch.gap[i, j]).all()
    # not a timing assertion of speed: cancellation must not wait for the whole
    # batch (which takes tens of seconds here)
    assert latency < 5.0


def test_progress_reaches_total() -> None:
    job = nt.start_batch(nets(2), [1.0, 10.0], 5.0)
    job.wait()
    assert job.progress == (4, 4)
    assert job.done


def test_memory_does_not_grow_with_the_number_of_steps() -> None:
    """Peak memory of a run is independent of its length: only the requested times
    are stored. Two child processes run the same model for 10 and 1000 time units
    (about 30x more steps); their peak RSS must agree to within a few MB."""
    import subprocess
    import sys

    code = (
        "import resource, ntk_tui as nt\n"
        "X, y = nt.datasets.sphere(32, 4, seed=0)\n"
        "m = nt.TwoLayer(X, y, m=512)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "r = nt.simulate_batch([m, m], [1.0, 3.0], {T}, metrics=['gap'])\n"
        "print(sum(x.stats['naccept'] for row in r.runs for x in row), "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = {}
    for T in (10.0, 1000.0):
        res = subprocess.run([sys.executable, "-c", code.format(T=T)], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        steps, grew_kb = map(int, res.stdout.split())
        out[T] = (steps, grew_kb)
    assert out[1000.0][0] > 10 * out[10.0][0], out  # the long run really takes many more steps
    assert abs(out[1000.0][1] - out[10.0][1]) < 8 * 1024, out  # KiB
