"""The ``ntk-tui`` command, end to end (subprocesses) and in process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ntk_tui


from ntk_tui.cli import main

PKG_ROOT = str(Path(ntk_tui.__file__).resolve().parent.parent)
TINY_TWOLAYER = ["--family", "twolayer", "--m", "16", "--n", "8", "--d", "2", "--times", "6"]


def _env(db: Path | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PKG_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("NTK_TUI_DB", None)
    if db is not None:
        env["NTK_TUI_DB"] = str(db)
    env["COLUMNS"] = "200"
    return env


def cli(*args: str, db: Path | None = None, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ntk_tui", *args], env=_env(db), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "history.sqlite3"


# --------------------------------------------------------------------------- run


def test_run_prints_summary_and_writes_measurements(tmp_path, db):
    out = tmp_path / "run.csv"
    p = cli("run", *TINY_TWOLAYER, "--alpha", "100", "--T", "10", "--out", str(out), db=db)
    assert p.returncode == 0, p.stderr
    for word in ("R0", "kappa(T)", "gap(T)", "Theorem 1.2", "Prop 1.1", "bound/measured", "verdict", "nfev"):
        assert word in p.stdout, word
    assert "saved as #1" in p.stderr
    from ntk_tui.export import load_results
    from ntk_tui.store import Store

    back = load_results(out)
    stored = Store(db).load(1)
    np.testing.assert_array_equal(back.gap, stored.gap)
    assert back.alpha == 100.0 and back.T == 10.0 and len(back.times) == 6


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_run_other_formats(tmp_path, db, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"run.{fmt}"
    p = cli("run", "--family", "converse", "--alpha", "10", "--T", "5", "--times", "5", "--out", str(out),
            "--no-save", db=db)
    assert p.returncode == 0, p.stderr
    from ntk_tui.export import load_results

    assert load_results(out).family == "converse"
    assert not db.exists()  # --no-save


def test_run_json_then_rerun_from_history_config(tmp_path, db):
    p = cli("run", *TINY_TWOLAYER, "--alpha", "30", "--T", "4", "--activation", "sigmoid", "--seed", "3",
            "--name", "base", "--json", db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["id"] == 1 and doc["status"] == "ok"
    gap1 = doc["summary"]["gap_T"]
    assert doc["config"]["model"]["activation"] == "sigmoid"
    # the stored config re-runs the same run exactly
    p = cli("history", "show", "1", "--config", db=db)
    assert p.returncode == 0, p.stderr
    cfg = tmp_path / "again.toml"
    cfg.write_text(p.stdout)
    p = cli("run", "--config", str(cfg), "--json", db=db)
    assert p.returncode == 0, p.stderr
    doc2 = json.loads(p.stdout)
    assert doc2["summary"]["gap_T"] == gap1 and doc2["id"] == 2
    # history show has the build info (no git)
    p = cli("history", "show", "2", "--json", db=db)
    build = json.loads(p.stdout)["build"]
    assert build["version"] == ntk_tui.__version__ and build["python"] and build["numpy"]
    assert "core_version" in build


# --------------------------------------------------------------------------- config files


RUN_TOML = """
[run]
name = "from-file"
family = "quadratic"
alpha = 20.0
T = 3.0

[model]
p = 6
n = 4
lip_dh = 0.5
seed = 2

[integrator]
times = 5
rtol = 1e-9
"""

SWEEP_TOML = """
[sweep]
name = "file-sweep"
family = "converse"
alpha = [1000.0, 10000.0, 100000.0]
T = [1.0, 10.0]

[model]
R0 = 2.0
lip_dh = 0.5

[integrator]
times = 4
"""


def test_config_files(tmp_path, db):
    (tmp_path / "run.toml").write_text(RUN_TOML)
    (tmp_path / "sweep.toml").write_text(SWEEP_TOML)
    p = cli("run", "--config", "run.toml", "--alpha", "40", "--save-config", "eff.toml", "--json", db=db, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["summary"]["alpha"] == 40.0  # the option overrides the file
    assert doc["config"]["model"] == {"p": 6, "n": 4, "lip_dh": 0.5, "seed": 2}
    assert doc["config"]["integrator"]["rtol"] == 1e-9
    from ntk_tui.config import load_config

    assert load_config(tmp_path / "eff.toml").alpha == 40.0
    p = cli("sweep", "--config", "sweep.toml", "--json", db=db, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["n_done"] == 6 and doc["status"] == "done"
    # converse model, small kappa: gap(T) = (4/e^2) kappa sqrt(R0), kappa = T Lip sqrt(R0) / alpha
    for f in doc["fits"]["alpha"]:
        assert f["slope"] == pytest.approx(-1.0, abs=0.02)
    for f in doc["fits"]["T"]:
        assert f["slope"] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(
    "text, msg",
    [
        ("[run]\nfamily = 'twolayer'\nalpha = 1.0\nT = 1.0\n[model]\nwidth = 3\n", "unknown key 'width' in [model]"),
        ("[run]\nfamily = 'twolayer'\nalpha = -1.0\nT = 1.0\n", "alpha must be a positive number"),
        ("[run\nfamily = 'x'", "invalid TOML"),
        ("[sweep]\nfamily = 'converse'\nalpha = [10.0]\n", "describes a sweep"),
        ("[other]\nx = 1\n", "needs a [run] or a [sweep] table"),
    ],
)
def test_bad_config_files(tmp_path, db, text, msg):
    (tmp_path / "bad.toml").write_text(text)
    p = cli("run", "--config", str(tmp_path / "bad.toml"), db=db)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr and "usage: ntk-tui run" in p.stderr
    assert "Traceback" not in p.stderr


def test_an_unwritable_output_is_refused_before_computing(tmp_path, db):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    p = cli("run", "--family", "converse", "--out", str(blocker / "x.csv"), db=db)
    assert p.returncode == 2, p.stderr
    assert "is not a writable folder" in p.stderr and "Traceback" not in p.stderr
    assert "saved as" not in p.stdout + p.stderr  # nothing was run


# --------------------------------------------------------------------------- sweep


def test_sweep_alpha_seeds_T(tmp_path, db):
    out = tmp_path / "sweep.csv"
    p = cli("sweep", *TINY_TWOLAYER, "--alpha", "10:1000:3", "--T", "1,4", "--n-seeds", "2", "--out", str(out), db=db)
    assert p.returncode == 0, p.stderr
    assert "scaling exponents of gap(T)" in p.stdout
    assert "Thm 1.2" in p.stdout and "Prop 1.1" in p.stdout and "95% CI" in p.stdout
    assert "12/12 runs (12 ok, 0 failed)" in p.stderr
    from ntk_tui.export import load_results
    from ntk_tui.store import Store

    res = load_results(out)
    assert res.n_done == 12 and sorted({r["seed"] for r in res.rows}) == [0, 1]
    for f in res.fits["alpha"]:  # lazy regime: gap ~ 1/alpha
        assert -1.2 < f["slope"] < -0.8
        assert f["theory"] == {"Thm 1.2": -1.0, "Prop 1.1": -1.0}
    st = Store(db)
    rec = st.list(kind="sweep")[0]
    assert rec.n_runs == 12 and rec.status == "done"
    assert rec.config["sweep"]["alpha"] == [10.0, 100.0, 1000.0]


def test_sweep_width_ntk_parametrization(tmp_path, db):
    pytest.importorskip("pyarrow")
    out = tmp_path / "w.parquet"
    p = cli("sweep", "--family", "twolayer", "--n", "8", "--d", "2", "--times", "4", "--width", "16,64,256", "--T", "2",
            "--out", str(out), "--json", db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["variable"] == "m"
    from ntk_tui.export import load_results

    res = load_results(out)
    assert [r["m"] for r in res.rows] == [16, 64, 256]
    assert [r["alpha"] for r in res.rows] == pytest.approx([4.0, 8.0, 16.0])
    f = res.fits["m"][0]
    assert f["theory"]["Thm 1.2"] == -0.5


def test_sweep_dry_run(db):
    p = cli("sweep", "--family", "converse", "--alpha", "1:100:5", "--T-scale", "2", "--dry-run", db=db)
    assert p.returncode == 0, p.stderr
    assert "T_scale = 2.0" in p.stdout and "# 5 runs" in p.stdout
    assert not db.exists()


# --------------------------------------------------------------------------- plot


def test_plot_files_and_history_ids(tmp_path, db):
    pytest.importorskip("matplotlib")
    p = cli("run", "--family", "converse", "--alpha", "10", "--T", "5", "--times", "8", "--out", "r.json", db=db,
            cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = cli("run", "--family", "converse", "--alpha", "100", "--T", "5", "--times", "8", db=db, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = cli("sweep", "--family", "converse", "--alpha", "100,1000,10000", "--T", "1,3", "--times", "4",
            "--out", "s.csv", db=db, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = cli("plot", "r.json", db=db, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    p = cli("plot", "s.csv", "-o", "s.svg", "-o", "s.png", db=db, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "<svg" in (tmp_path / "s.svg").read_text() and (tmp_path / "s.png").exists()
    p = cli("plot", "1", "2", "-o", "cmp.png", db=db, cwd=tmp_path)  # two runs compared
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "cmp.png").exists()
    p = cli("plot", "#3", "--format", "pdf", db=db, cwd=tmp_path)  # the sweep, from the history
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "ntk-tui-sweep-3.pdf").read_bytes()[:4] == b"%PDF"


# --------------------------------------------------------------------------- history


def test_history_list_show_export_delete(tmp_path, db):
    assert cli("run", "--family", "linear", "--p", "4", "--n", "3", "--times", "4", db=db).returncode == 0
    assert cli("sweep", "--family", "converse", "--alpha", "10,100", "--times", "3", db=db).returncode == 0
    p = cli("history", "list", "--json", db=db)
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert [(r["id"], r["kind"]) for r in rows] == [(2, "sweep"), (1, "run")]
    p = cli("history", "list", "--all", db=db)
    assert p.returncode == 0 and "in #2" in p.stdout
    p = cli("history", "show", "2", db=db)
    assert p.returncode == 0 and "sweep #2" in p.stdout and "[sweep]" in p.stdout
    p = cli("history", "export", "2", str(tmp_path / "s.json"), db=db)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "s.json").read_text())["format"] == "ntk-tui/sweep"
    p = cli("history", "export", "1", str(tmp_path / "r.csv"), db=db)
    assert p.returncode == 0, p.stderr
    p = cli("history", "delete", "2", db=db)
    assert p.returncode == 0 and "deleted #2" in p.stdout
    assert [r["id"] for r in json.loads(cli("history", "list", "--all", "--json", db=db).stdout)] == [1]


def test_db_option_beats_environment(tmp_path):
    env_db, opt_db = tmp_path / "env.sqlite3", tmp_path / "opt.sqlite3"
    p = cli("run", "--family", "converse", "--times", "3", "--db", str(opt_db), db=env_db)
    assert p.returncode == 0, p.stderr
    assert opt_db.exists() and not env_db.exists()


def test_refuses_a_newer_database(tmp_path, db):
    import sqlite3

    from ntk_tui.store import Store

    Store(db).close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 99")
    con.close()
    p = cli("history", "list", db=db)
    assert p.returncode == 1
    assert "newer ntk-tui" in p.stderr and "Traceback" not in p.stderr


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["run", "--family", "converse", "--alpha", "-3"], "--alpha: must be a positive number (got -3)"),
        (["run", "--family", "resnet"], "invalid choice: 'resnet'"),
        (["run", "--alpha", "10"], "--family is required"),
        (["run", "--family", "converse", "--m", "5"], "--m does not apply to family 'converse'"),
        (["run", "--family", "twolayer", "--activation", "relu"], "Lip(Dh)"),
        (["run", "--family", "twolayer", "--times", "0"], "--times: must be a positive whole number"),
        (["run", "--family", "converse", "--out", "x.xlsx"], "output file must end in .csv, .json, .parquet"),
        (["run", "--family", "converse", "--metrics", "gap,bogus"], "unknown metric bogus"),
        (["run", "--config", "missing.toml"], "config file not found"),
        (["run", "--family", "twolayer", "--data", "nope.csv"], "data file not found"),
        (["sweep", "--family", "twolayer"], "a sweep needs --alpha LIST or --width LIST"),
        (["sweep", "--family", "twolayer", "--alpha", "10", "--width", "16"], "not both"),
        (["sweep", "--family", "converse", "--width", "16"], "only apply to the twolayer"),
        (["sweep", "--family", "converse", "--alpha", "1:2"], "a range is LO:HI:N"),
        (["sweep", "--family", "converse", "--alpha", "10", "--seeds", "x"], "seeds are whole numbers"),
        (["sweep", "--family", "converse", "--alpha", "10", "--T", "1", "--T-scale", "2"], "not both"),
        (["history", "show", "abc"], "a history id is a whole number"),
        (["history", "show", "99"], "no record #99"),
        (["history", "frobnicate"], "invalid choice: 'frobnicate'"),
        (["plot", "nothing-here.csv"], "no such file, and not a history id"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["--preset", "nope"], "unknown preset 'nope'"),
    ],
)
def test_bad_arguments(tmp_path, db, argv, msg):
    p = cli(*argv, db=db, cwd=tmp_path)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert msg in p.stderr
    assert "usage: ntk-tui" in p.stderr
    assert "Traceback" not in p.stderr


# --------------------------------------------------------------------------- in process


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "run" in out and "sweep" in out and "history" in out and "presets" in out
    assert main(["sweep", "--help"]) == 0
    assert "--scheduler" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"ntk-tui {ntk_tui.__version__}")


def test_no_command_opens_the_app(monkeypatch, tmp_path):
    import ntk_tui.tui.app as app

    calls = []
    monkeypatch.setattr(app, "run_app", lambda **kw: calls.append(kw))
    assert main(["--preset", "converse", "--alpha", "10", "--T", "5", "--set", "R0=2", "--db", str(tmp_path / "x.db")]) == 0
    kw = calls[-1]
    assert kw["preset"] == "converse" and kw["alpha"] == 10.0 and kw["T"] == 5.0 and kw["R0"] == 2
    assert kw["db"] == str((tmp_path / "x.db").resolve())
    assert main([]) == 0
    assert calls[-1] == {"preset": None, "family": None, "alpha": None, "T": None}
    assert main(["--family", "twolayer", "--set", "m=64"]) == 0
    assert calls[-1]["family"] == "twolayer" and calls[-1]["m"] == 64


def test_app_options_before_a_command_are_refused(capsys):
    assert main(["--family", "converse", "run"]) == 2
    assert "put the options after the command" in capsys.readouterr().err
