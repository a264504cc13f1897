"""Exports (CSV / JSON / Parquet) of runs and sweeps, loading them back, and figures."""

from __future__ import annotations

import builtins
import json
import math

import numpy as np
import pytest

import ntk_tui
from ntk_tui.config import RunConfig, SweepSpec
from ntk_tui.export import ExportError, LoadedRun, export_run, export_sweep, load_results


FORMATS = ["csv", "json", "parquet"]


CFG = RunConfig(family="twolayer", alpha=10.0, T=5.0, model={"m": 8}, data={"n": 6, "d": 2}, integrator={"times": 7})


@pytest.fixture(scope="module")
def run():
    return CFG.simulate()


@pytest.fixture(scope="module")
def sweep():
    from ntk_tui.sweep import run_sweep

    spec = SweepSpec(family="converse", alphas=[100.0, 1000.0, 1e4], Ts=[1.0, 10.0], integrator={"times": 4})
    return run_sweep(spec, threads=2)


def _no_nan_json(text: str):
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=bad)


@pytest.mark.parametrize("fmt", FORMATS)
def test_run_export_roundtrip(tmp_path, run, fmt):
    pytest.importorskip("pyarrow") if fmt == "parquet" else None
    path = export_run(run, tmp_path / f"run.{fmt}", config=CFG)
    back = load_results(path)
    assert isinstance(back, LoadedRun)
    np.testing.assert_array_equal(back.times, run.times)
    for key in ("gap", "residual", "residual_lin", "weight_change", "kernel_drift", "lip_dh_path"):
        np.testing.assert_array_equal(getattr(back, key), np.asarray(getattr(run, key), dtype=float))
    assert back.family == "twolayer" and back.alpha == 10.0 and back.T == 5.0
    assert back.R0 == pytest.approx(run.R0) and back.kappa == pytest.approx(run.kappa)
    bounds = run.bounds()
    assert set(back.bounds()) == set(bounds)
    for name, b in bounds.items():
        np.testing.assert_array_equal(back.bounds()[name].valid, np.broadcast_to(b.valid, run.times.shape))
        np.testing.assert_allclose(back.bounds()[name].value, np.broadcast_to(b.value, run.times.shape))
    assert back.summary["verdict"]
    # the full config is embedded: the run can be re-created from the file alone
    cfg = RunConfig.from_dict(back.config)
    np.testing.assert_array_equal(cfg.simulate().gap, run.gap)
    assert back.build["version"]


def test_run_json_is_strict_and_complete(tmp_path, run):
    path = export_run(run, tmp_path / "run.json")
    doc = _no_nan_json(path.read_text())
    assert doc["format"] == "ntk-tui/run"
    assert doc["run"]["family"] == "twolayer"
    back = ntk_tui.Run.from_dict(json.loads(path.read_text())["run"])
    np.testing.assert_allclose(back.gap, run.gap)


def test_run_csv_layout(tmp_path, run):
    path = export_run(run, tmp_path / "run.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# ntk-tui run {")
    header = lines[1].split(",")
    assert header[:2] == ["t", "gap"]
    assert "bound_theorem_1_2" in header and "bound_theorem_1_2_valid" in header
    assert len(lines) == 2 + len(run.times)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sweep_export_roundtrip(tmp_path, sweep, fmt):
    pytest.importorskip("pyarrow") if fmt == "parquet" else None
    path = export_sweep(sweep, tmp_path / f"sweep.{fmt}")
    back = load_results(path)
    assert back.n_done == sweep.n_done == 6
    assert back.spec.to_dict() == sweep.spec.to_dict()
    for a, b in zip(back.rows, sweep.rows):
        assert a["index"] == b["index"] and a["T"] == b["T"] and a["alpha"] == b["alpha"]
        assert a["gap_T"] == b["gap_T"]
        assert a["bound_theorem_1_2_valid"] == b["bound_theorem_1_2_valid"]
    for var in ("alpha", "T"):
        assert [f["slope"] for f in back.fits[var]] == pytest.approx([f["slope"] for f in sweep.fits[var]])
    if fmt == "json":
        _no_nan_json(path.read_text())


def test_bad_files(tmp_path, run):
    with pytest.raises(ExportError, match="unsupported file type"):
        export_run(run, tmp_path / "run.xlsx")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ExportError, match="not an ntk-tui export"):
        load_results(other)
    with pytest.raises(ExportError, match="not found"):
        load_results(tmp_path / "missing.json")


def test_parquet_without_pyarrow(tmp_path, run, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *a, **kw):
        if name.startswith("pyarrow"):
            raise ImportError("no pyarrow")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ExportError, match=r"pip install 'ntk-tui\[parquet\]'"):
        export_run(run, tmp_path / "run.parquet")


# --------------------------------------------------------------------------- figures


def test_plot_run_and_sweep(tmp_path, run, sweep):
    pytest.importorskip("matplotlib")
    from ntk_tui.plotting import plot_run, plot_runs, plot_sweep

    fig = plot_run(run, tmp_path / "run.png")
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 3
    plot_sweep(sweep, tmp_path / "sweep.svg")
    svg = (tmp_path / "sweep.svg").read_text()
    assert "<svg" in svg and "slope" in svg  # text kept as text
    plot_runs([run, run], tmp_path / "cmp.pdf")
    assert (tmp_path / "cmp.pdf").read_bytes()[:4] == b"%PDF"
    # a loaded export plots like a run
    plot_run(load_results(export_run(run, tmp_path / "r.csv")), tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_plot_without_matplotlib(monkeypatch, run):
    import sys

    from ntk_tui.plotting import PlotError, plot_run

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotError, match=r"pip install 'ntk-tui\[plot\]'"):
        plot_run(run)


def test_plot_empty_sweep(tmp_path):
    pytest.importorskip("matplotlib")
    from ntk_tui.plotting import PlotError, plot_sweep
    from ntk_tui.sweep import SweepResult

    empty = SweepResult(spec=SweepSpec(family="converse", alphas=[10.0]))
    with pytest.raises(PlotError, match="no finished run"):
        plot_sweep(empty)
    assert math.isnan(float("nan"))
