"""The run history database: round trips, schema versions, concurrency, interruption."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ntk_tui
from ntk_tui import store as store_mod
from ntk_tui.config import RunConfig
from ntk_tui.store import SCHEMA_VERSION, Store, StoreError, default_db_path


PKG_ROOT = str(Path(ntk_tui.__file__).resolve().parent.parent)


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PKG_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("NTK_TUI_DB", None)
    env.update(extra)
    return env


def _run(alpha: float = 10.0, T: float = 2.0):
    return RunConfig(family="twolayer", alpha=alpha, T=T, model={"m": 8}, data={"n": 6, "d": 2},
                     integrator={"times": 5}).simulate()


# --------------------------------------------------------------------------- basics


def test_run_roundtrip(tmp_path):
    st = Store(tmp_path / "h.sqlite3")
    cfg = RunConfig(family="twolayer", alpha=10.0, T=2.0, model={"m": 8}, data={"n": 6, "d": 2},
                    integrator={"times": 5})
    run = cfg.simulate()
    rid = st.save_run(run, name="first", config=cfg)
    rec = st.get(rid)
    assert rec.kind == "run" and rec.name == "first" and rec.status == "ok" and rec.family == "twolayer"
    assert rec.summary["gap_T"] == pytest.approx(float(run.gap[-1]))
    assert "verdict" in rec.summary and "theorem_1_2" in rec.summary["bounds"]
    assert rec.config == cfg.to_dict()
    assert rec.build["version"] and rec.build["python"] and rec.build["numpy"] == np.__version__
    back = st.load(rid)
    for key in ("times", "gap", "residual", "weight_change", "kernel_drift", "output", "output_lin"):
        np.testing.assert_array_equal(np.asarray(getattr(back, key)), np.asarray(getattr(run, key)))
    assert back.alpha == run.alpha and back.T == run.T and back.family == run.family
    assert dict(back.params)["m"] == 8
    # arrays are stored as .npy blobs, not JSON
    con = sqlite3.connect(st.path)
    names = {r[0] for r in con.execute("SELECT name FROM arrays WHERE record_id = ?", (rid,))}
    assert {"gap", "times", "output"} <= names


@pytest.mark.parametrize("family, model", [("converse", {"R0": 0.5, "lip_dh": 2.0, "sign": -1}),
                                           ("quadratic", {"p": 5, "n": 3, "lip_dh": 0.5, "seed": 4})])
def test_config_derived_from_the_run_recreates_it(tmp_path, family, model):
    st = Store(tmp_path / "h.sqlite3")
    run = RunConfig(family=family, alpha=3.0, T=2.0, model=model, integrator={"times": 5, "rtol": 1e-9}).simulate()
    rid = st.save_run(run)  # no config given: derived from the run itself
    cfg = RunConfig.from_dict(st.get(rid).config)
    assert cfg.integrator.rtol == 1e-9
    np.testing.assert_array_equal(cfg.simulate().gap, run.gap)


def test_twolayer_run_without_config_is_marked(tmp_path):
    st = Store(tmp_path / "h.sqlite3")
    run = _run()
    rec = st.get(st.save_run(run))  # the run does not carry its data set
    assert "data set" in rec.config["incomplete"]
    assert rec.config["run"]["alpha"] == run.alpha


def test_list_get_delete(tmp_path):
    st = Store(tmp_path / "h.sqlite3")
    ids = [st.save_run(_run(alpha=a)) for a in (10.0, 20.0, 40.0)]
    assert [r.id for r in st.list()] == ids[::-1]
    assert [r.id for r in st.list(kind="run", limit=2)] == ids[:0:-1]
    assert st.list(kind="sweep") == []
    assert st.delete(ids[1]) is True
    assert st.delete(ids[1]) is False
    assert [r.id for r in st.list()] == [ids[2], ids[0]]
    with pytest.raises(KeyError):
        st.get(ids[1])
    assert "alpha=20" not in " ".join(r.label for r in st.list())


def test_deleting_a_sweep_deletes_its_runs(tmp_path):
    from ntk_tui.config import SweepSpec
    from ntk_tui.sweep import run_sweep

    st = Store(tmp_path / "h.sqlite3")
    res = run_sweep(SweepSpec(family="converse", alphas=[10.0, 100.0], Ts=[1.0], integrator={"times": 3}),
                    store=st, threads=1)
    assert len(st.list(include_children=True)) == 3
    assert [r.kind for r in st.list()] == ["sweep"]
    st.delete(res.record_id)
    assert st.list(include_children=True) == []
    assert sqlite3.connect(st.path).execute("SELECT COUNT(*) FROM arrays").fetchone()[0] == 0


def test_default_path_env_and_platformdirs(tmp_path, monkeypatch):
    monkeypatch.setenv("NTK_TUI_DB", str(tmp_path / "env.sqlite3"))
    assert default_db_path() == tmp_path / "env.sqlite3"
    assert Store().path == tmp_path / "env.sqlite3"
    monkeypatch.delenv("NTK_TUI_DB")
    import platformdirs

    assert default_db_path().parent == Path(platformdirs.user_data_dir("ntk-tui", appauthor=False))


def test_wal_mode(tmp_path):
    st = Store(tmp_path / "h.sqlite3")
    st.save_run(_run())
    con = sqlite3.connect(st.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# --------------------------------------------------------------------------- schema versions


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "h.sqlite3"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    con.close()
    with pytest.raises(StoreError, match="newer ntk-tui"):
        Store(path)


def test_foreign_and_broken_files_are_refused(tmp_path):
    foreign = tmp_path / "other.sqlite3"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="does not belong to ntk-tui"):
        Store(foreign)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not an ntk-tui history database"):
        Store(junk)


def test_older_schema_is_migrated(tmp_path, monkeypatch):
    path = tmp_path / "h.sqlite3"
    st = Store(path)
    rid = st.save_run(_run())
    st.close()
    # pretend this release has schema 2, whose migration adds a column
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(store_mod.MIGRATIONS, SCHEMA_VERSION, "ALTER TABLE records ADD COLUMN note TEXT")
    st = Store(path)
    assert st.schema_version == SCHEMA_VERSION + 1
    assert st.get(rid).summary["gap_T"] > 0
    cols = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(records)")}
    assert "note" in cols


def test_older_schema_without_migration_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "h.sqlite3"
    Store(path).close()
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="cannot migrate"):
        Store(path)
    # the refused database is untouched
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# --------------------------------------------------------------------------- concurrency

_WRITER = textwrap.dedent("""
    import sys
    from ntk_tui.config import RunConfig
    from ntk_tui.store import Store
    st = Store(sys.argv[1])
    run = RunConfig(family="converse", alpha=float(sys.argv[2]), T=1.0, integrator={"times": 3}).simulate()
    for i in range(int(sys.argv[3])):
        st.save_run(run, name=f"{sys.argv[2]}-{i}")
""")


def test_two_processes_writing_at_once(tmp_path):
    path = tmp_path / "h.sqlite3"
    n = 25
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(a), str(n)], env=_env())
             for a in (10, 20)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    st = Store(path)
    names = [r.name for r in st.list(limit=1000)]
    assert len(names) == 2 * n and len(set(names)) == 2 * n
    assert st.integrity_check() == "ok"


def test_threads_sharing_one_store(tmp_path):
    st = Store(tmp_path / "h.sqlite3")
    run = _run()
    errors = []

    def work(k):
        try:
            for i in range(10):
                st.save_run(run, name=f"{k}-{i}")
                st.list(limit=5)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(st.list(limit=100)) == 40
    assert st.integrity_check() == "ok"


# --------------------------------------------------------------------------- interruption


def _count_runs(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM records WHERE kind = 'run'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


N_SLOW = 40


def _slow_sweep_argv(db: Path) -> list[str]:
    # many small runs, one at a time: the sweep takes several seconds in all
    # (about 0.1-0.3 s per run, about 6 s in all)
    return [sys.executable, "-m", "ntk_tui", "sweep", "--family", "twolayer", "--alpha", f"1:100:{N_SLOW}",
            "--T", "100", "--m", "256", "--n", "32", "--d", "4", "--times", "4", "--threads", "1",
            "--db", str(db), "--quiet"]


def test_killed_sweep_keeps_finished_runs(tmp_path):
    db = tmp_path / "h.sqlite3"
    proc = subprocess.Popen(_slow_sweep_argv(db), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    seen = 0
    while time.time() < deadline and proc.poll() is None:
        seen = _count_runs(db)
        if seen >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    st = Store(db)
    assert st.integrity_check() == "ok"
    sweeps = st.list(kind="sweep")
    assert len(sweeps) == 1
    sweep = sweeps[0]
    assert sweep.status == "incomplete"  # its process is gone
    assert seen <= sweep.n_runs < N_SLOW
    res = st.load(sweep.id)
    assert res.n_done == sweep.n_runs and all(r["status"] == "ok" for r in res.rows)
    assert st.load_run(st.children(sweep.id)[0].id).gap[-1] > 0
    # and the database keeps working
    st.save_run(_run())
    assert st.integrity_check() == "ok"


def test_ctrl_c_stops_a_sweep_cleanly(tmp_path):
    db = tmp_path / "h.sqlite3"
    out = tmp_path / "rows.csv"
    proc = subprocess.Popen(_slow_sweep_argv(db) + ["--out", str(out)], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and _count_runs(db) < 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    st = Store(db)
    sweep = st.list(kind="sweep")[0]
    assert sweep.status == "cancelled"
    assert 2 <= sweep.n_runs < N_SLOW
    assert st.integrity_check() == "ok"
    from ntk_tui.export import load_results

    assert load_results(out).n_done == sweep.n_runs  # the output file has what finished
