"""Sweeps: grids, validation, the local batch runner, exponents of gap(T)."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from ntk_tui.config import ConfigError, RunConfig, SweepSpec, loads_config
from ntk_tui.sweep import SweepResult, THEORY_EXPONENTS, fit_exponents, run_sweep

import ntk_tui as nt

TINY = {"times": 6}
TWOLAYER = dict(model={"m": 16}, data={"n": 8, "d": 2}, integrator=TINY)
WIDTHS = dict(data={"n": 8, "d": 2}, integrator=TINY)


# --------------------------------------------------------------------------- specs


def test_grid_order_and_size():
    spec = SweepSpec(family="twolayer", alphas=[10, 100], seeds=[0, 1, 2], Ts=[1, 10], **TWOLAYER)
    tasks = spec.tasks()
    assert len(tasks) == len(spec) == 12
    assert [t.index for t in tasks] == list(range(12))
    assert {(t.T, t.seed, t.alpha) for t in tasks} == {(T, s, a) for T in (1, 10) for s in (0, 1, 2) for a in (10, 100)}
    assert all(t.m is None for t in tasks)


def test_width_grid_is_ntk_parametrization():
    spec = SweepSpec(family="twolayer", widths=[16, 64, 256], Ts=[1.0], **WIDTHS)
    assert spec.variable == "m"
    for t in spec.tasks():
        assert t.alpha == pytest.approx(math.sqrt(t.m))
        assert spec.run_config(t).model["m"] == t.m


def test_T_scale_grid():
    spec = SweepSpec(family="converse", alphas=[10, 100], T_scale=5.0)
    assert [(t.alpha, t.T) for t in spec.tasks()] == [(10, 50), (100, 500)]
    assert loads_config(spec.to_toml()).tasks() == spec.tasks()


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(family="twolayer", alphas=[10], widths=[16]), "not both"),
        (dict(family="quadratic", widths=[16]), "only apply to the twolayer"),
        (dict(family="converse", alphas=[10], seeds=[0, 1]), "deterministic"),
        (dict(family="twolayer"), "needs alpha values or widths"),
        (dict(family="twolayer", alphas=[-1.0]), "positive"),
        (dict(family="twolayer", alphas=[10], Ts=[0.0]), "positive"),
        (dict(family="twolayer", widths=[0]), ">= 1"),
        (dict(family="linear", alphas=[10], model={"m": 3}), "unknown key"),
        (dict(family="twolayer", alphas=[10], model={"activation": "relu"}), "Lip(Dh)"),
    ],
)
def test_spec_validation(kw, msg):
    with pytest.raises(ConfigError, match=re_escape(msg)):
        SweepSpec(**kw)


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


def test_spec_toml_roundtrip():
    spec = SweepSpec(family="twolayer", widths=[16, 64], seeds=[3, 4], Ts=[1.0, 2.5], name="w", **WIDTHS)
    back = loads_config(spec.to_toml())
    assert isinstance(back, SweepSpec)
    assert back.to_dict() == spec.to_dict()


# --------------------------------------------------------------------------- fits (no engine)


def test_fit_exponents_recovers_known_powers():
    rows = []
    for i, (T, a, s) in enumerate((T, a, s) for T in (1.0, 10.0, 100.0) for a in (10.0, 100.0, 1000.0) for s in (0, 1)):
        rows.append({"index": i, "T": T, "alpha": a, "m": None, "seed": s, "status": "ok",
                     "gap_T": 3.0 * T**2 / a * (1.0 + 0.01 * s)})
    fits = fit_exponents(rows, "alpha")
    assert len(fits["alpha"]) == 3 and len(fits["T"]) == 3
    for f in fits["alpha"]:
        assert f["slope"] == pytest.approx(-1.0, abs=1e-9)
        lo, hi = f["slope_ci95"]
        assert lo <= -1.0 <= hi
        assert f["theory"] == THEORY_EXPONENTS["alpha"]
    for f in fits["T"]:
        assert f["slope"] == pytest.approx(2.0, abs=1e-9)
        assert f["theory"] == {"Thm 1.2": 1.0, "Prop 1.1": 2.0}


def test_fit_exponents_skips_failed_and_zero_gaps():
    rows = [{"index": 0, "T": 1.0, "alpha": 10.0, "status": "ok", "gap_T": 0.0},
            {"index": 1, "T": 1.0, "alpha": 100.0, "status": "failed: x", "gap_T": 1.0},
            {"index": 2, "T": 1.0, "alpha": 1000.0, "status": "ok", "gap_T": 1e-3}]
    assert fit_exponents(rows, "alpha") == {"alpha": [], "T": []}


# --------------------------------------------------------------------------- running


def test_converse_exponents_match_theorem_1_2():
    """On the converse model gap(T)/sqrt(R0) depends only on kappa = T Lip sqrt(R0)/alpha
    and is (4/e^2) kappa for small kappa (THEORY.md 4.1): slopes -1 in alpha, +1 in T."""
    spec = SweepSpec(family="converse", alphas=[1e3, 1e4, 1e5], Ts=[1.0, 10.0], integrator={"times": 4})
    res = run_sweep(spec, threads=2)
    assert res.status == "done" and res.n_ok == 6
    for f in res.fits["alpha"]:
        assert f["slope"] == pytest.approx(-1.0, abs=0.02)
    for f in res.fits["T"]:
        assert f["slope"] == pytest.approx(1.0, abs=0.02)
    for r in res.rows:
        kappa = r["T"] * 1.0 * 1.0 / r["alpha"]
        assert r["gap_T"] == pytest.approx(4 / math.e**2 * kappa, rel=0.05)


def test_run_sweep_stores_every_run_with_its_config(tmp_path):
    from ntk_tui.store import Store

    store = Store(tmp_path / "h.sqlite3")
    spec = SweepSpec(family="twolayer", alphas=[10.0, 100.0], seeds=[0, 1], Ts=[1.0], **TWOLAYER)
    seen = []
    res = run_sweep(spec, progress=lambda d, n: seen.append((d, n)), store=store, threads=2)
    assert res.status == "done" and res.n_done == 4
    assert seen[-1] == (4, 4) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    rec = store.get(res.record_id)
    assert rec.kind == "sweep" and rec.status == "done" and rec.n_runs == 4
    children = store.children(res.record_id)
    assert [c.summary["task"]["index"] for c in children] == [0, 1, 2, 3]
    # every stored run re-creates exactly from its own config
    child = children[3]
    cfg = RunConfig.from_dict(child.config)
    rerun = cfg.simulate()
    stored = store.load_run(child.id)
    np.testing.assert_array_equal(rerun.gap, stored.gap)
    np.testing.assert_array_equal(res.runs[3].gap, stored.gap)
    # and the sweep loads back with the same rows and fits
    back = store.load(res.record_id)
    assert isinstance(back, SweepResult)
    assert [r["gap_T"] for r in back.rows] == [r["gap_T"] for r in res.rows]
    assert back.fits == res.fits
    assert store.save_sweep(res) == res.record_id  # already stored: same id


def test_save_sweep_of_unstored_result(tmp_path):
    from ntk_tui.store import Store

    spec = SweepSpec(family="linear", alphas=[1.0, 10.0], model={"p": 4, "n": 3}, integrator=TINY)
    res = run_sweep(spec, threads=1)
    assert all(abs(r["gap_T"]) < 1e-6 for r in res.rows)  # linear model: no gap
    store = Store(tmp_path / "h.sqlite3")
    rid = store.save_sweep(res, name="lin")
    assert store.get(rid).name == "lin" and store.get(rid).n_runs == 2


def test_width_sweep_runs_paired(tmp_path):
    spec = SweepSpec(family="twolayer", widths=[8, 32], Ts=[1.0], **WIDTHS)
    res = run_sweep(spec, threads=2, chunk_size=2)
    assert [r["m"] for r in res.rows] == [8, 32]
    for r in res.rows:
        assert r["alpha"] == pytest.approx(math.sqrt(r["m"]))
        assert res.runs[r["index"]].alpha == pytest.approx(math.sqrt(r["m"]))
        assert res.runs[r["index"]].params["m"] == r["m"]


def test_cancel_keeps_finished_runs(tmp_path):
    from ntk_tui.store import Store

    store = Store(tmp_path / "h.sqlite3")
    cancel = threading.Event()

    def progress(done, total):
        if done >= 2:
            cancel.set()

    spec = SweepSpec(family="converse", alphas=list(np.geomspace(10, 1e4, 12)), Ts=[1.0], integrator={"times": 4})
    res = run_sweep(spec, progress=progress, cancel=cancel, store=store, threads=1)
    assert res.status == "cancelled"
    assert 2 <= res.n_done < 12
    assert store.get(res.record_id).status == "cancelled"
    assert store.get(res.record_id).n_runs == res.n_done
    assert store.integrity_check() == "ok"


def test_bad_model_fails_before_storing(tmp_path):
    from ntk_tui.store import Store

    store = Store(tmp_path / "h.sqlite3")
    spec = SweepSpec(family="twolayer", alphas=[10.0], model={"m": 4}, data={"source": "file", "path": str(tmp_path / "none.csv")})
    with pytest.raises(ConfigError, match="not found"):
        run_sweep(spec, store=store)
    assert store.list() == []


def test_result_dict_roundtrip():
    spec = SweepSpec(family="converse", alphas=[100.0, 1000.0, 1e4], Ts=[1.0], integrator={"times": 3})
    res = run_sweep(spec, threads=1)
    back = SweepResult.from_dict(res.to_dict())
    assert back.rows == res.rows
    assert back.fits == res.fits
    assert back.spec.to_dict() == spec.to_dict()
