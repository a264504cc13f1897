"""Run history: an embedded SQLite database of finished runs and sweeps.

Layout (schema version ``SCHEMA_VERSION``, kept in ``PRAGMA user_version``)::

    records(id, kind 'run'|'sweep', parent_id -> records.id (a sweep's runs),
            name, created (ISO 8601 UTC), status, family,
            config JSON, summary JSON, data JSON, build JSON)
    arrays(record_id -> records.id, name, npy BLOB)     -- numpy .npy bytes

A run's ``data`` is ``run.to_dict()`` with every numeric array replaced by a
reference to a row of ``arrays``; ``Run.from_dict`` rebuilds the run.

Every write is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) in WAL
mode with ``synchronous=FULL``: a crash or Ctrl-C loses at most the write in
progress, and concurrent writers (other processes, other threads) wait for
each other (``busy_timeout``) instead of corrupting the file.

The database location is, in order: the ``path`` argument (the CLI's
``--db``), the ``NTK_TUI_DB`` environment variable, and ``history.sqlite3``
in the user data directory (platformdirs).
"""

from __future__ import annotations

import builtins
import datetime as _dt
import io
import json
import math
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

__all__ = [
    "SCHEMA_VERSION",
    "ENV_VAR",
    "Record",
    "Store",
    "StoreError",
    "default_db_path",
]

SCHEMA_VERSION = 1
ENV_VAR = "NTK_TUI_DB"
APP_ID = 0x6E746B74  # "ntkt" in PRAGMA application_id: marks our databases

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS records (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL CHECK (kind IN ('run', 'sweep')),
    parent_id INTEGER REFERENCES records(id) ON DELETE CASCADE,
    name      TEXT,
    created   TEXT NOT NULL,
    status    TEXT NOT NULL,
    family    TEXT,
    config    TEXT NOT NULL,
    summary   TEXT NOT NULL,
    data      TEXT NOT NULL,
    build     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_parent ON records(parent_id);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind, created);
CREATE TABLE IF NOT EXISTS arrays (
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    npy       BLOB NOT NULL,
    PRIMARY KEY (record_id, name)
) WITHOUT ROWID;
"""

# Migrations: MIGRATIONS[v] upgrades a database from schema v to v + 1 (SQL
# script or a callable taking the connection). Run inside one transaction.
MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {}


def _retry_while_locked(op: Any, timeout: float) -> Any:
    """Runs ``op`` until it does not fail with "database is locked" (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return op()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class StoreError(RuntimeError):
    """The history database cannot be used; the message says why and what to do."""


def default_db_path() -> Path:
    """``$NTK_TUI_DB`` if set, else ``history.sqlite3`` in the user data dir."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ntk-tui", appauthor=False)) / "history.sqlite3"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- array packing


def _is_numeric_array(value: Any) -> bool:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufc" and value.ndim >= 1
    if isinstance(value, (list, tuple)) and len(value) >= 2:
        first = value[0]
        if isinstance(first, (list, tuple)):
            first = first[0] if first else None
        if isinstance(first, bool) or not isinstance(first, (int, float)):
            return False
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            return False
        return arr.dtype.kind in "biuf" and arr.ndim >= 1
    return False


def _npy_bytes(arr: Any) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _npy_load(blob: bytes):
    import numpy as np

    return np.load(io.BytesIO(blob), allow_pickle=False)


def pack(obj: Any, arrays: dict[str, Any], prefix: str = "") -> Any:
    """Replace numeric arrays in a nested dict/list by ``{"__npy__": key}``
    references (collected in ``arrays``); the rest stays JSON-able."""
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): pack(v, arrays, f"{prefix}{k}.") for k, v in obj.items()}
    if _is_numeric_array(obj):
        key = prefix.rstrip(".") or "value"
        arrays[key] = np.asarray(obj)
        return {"__npy__": key, "list": not isinstance(obj, np.ndarray)}
    if isinstance(obj, (list, tuple)):
        return [pack(v, arrays, f"{prefix}{i}.") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):  # 0-d or object arrays
        return obj.tolist()
    return obj


def unpack(obj: Any, load: Callable[[str], Any]) -> Any:
    if isinstance(obj, Mapping):
        if "__npy__" in obj and len(obj) <= 2:
            arr = load(obj["__npy__"])
            return arr.tolist() if obj.get("list") else arr
        return {k: unpack(v, load) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, load) for v in obj]
    return obj


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    return obj


def _dumps(obj: Any) -> str:
    return json.dumps(_jsonable(obj), separators=(",", ":"))


# --------------------------------------------------------------------------- records


@dataclass
class Record:
    """One row of the history (without its arrays)."""

    id: int
    kind: str  # "run" | "sweep"
    name: str | None
    created: str
    status: str
    family: str | None
    parent_id: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    build: dict[str, Any] = field(default_factory=dict)
    n_runs: int = 0  # sweeps: number of stored runs

    @property
    def alpha(self) -> float | None:
        return self.summary.get("alpha")

    @property
    def T(self) -> float | None:
        return self.summary.get("T")

    @property
    def label(self) -> str:
        """A one-line description for lists (the TUI's History screen)."""
        name = f" {self.name}" if self.name else ""
        if self.kind == "run":
            s = self.summary
            parts = [f"#{self.id}{name}", self.family or "?"]
            if s.get("alpha") is not None:
                parts.append(f"alpha={s['alpha']:g}")
            if s.get("T") is not None:
                parts.append(f"T={s['T']:g}")
            if s.get("gap_T") is not None and isinstance(s.get("gap_T"), (int, float)):
                parts.append(f"gap(T)={s['gap_T']:.3g}")
            if self.status != "ok":
                parts.append(f"[{self.status}]")
            return "  ".join(parts)
        parts = [f"#{self.id}{name}", f"sweep {self.family or '?'}", f"{self.n_runs} runs"]
        if self.status != "done":
            parts.append(f"[{self.status}]")
        return "  ".join(parts)


_RECORD_COLS = "id, kind, name, created, status, family, parent_id, config, summary, build"


class Store:
    """The run history database. Safe to share between threads; several
    processes may write to the same file at once."""

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self._lock = threading.RLock()
        if str(self.path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the history directory {self.path.parent}: {exc.strerror}") from None
            if self.path.is_dir():
                raise StoreError(f"history database path {self.path} is a directory")
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the history database {self.path}: {exc}") from None
        try:
            self._setup(timeout)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"{self.path} is not an ntk-tui history database (or it is damaged): {exc}") from None
        except StoreError:
            self._conn.close()
            raise

    # ----------------------------------------------------------------- setup
    def _setup(self, timeout: float) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        c.execute("PRAGMA foreign_keys = ON")
        version = c.execute("PRAGMA user_version").fetchone()[0]
        app_id = c.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the history database {self.path} has schema version {version}, written by a newer "
                f"ntk-tui; this version understands up to {SCHEMA_VERSION}. Upgrade ntk-tui, or use "
                f"another database with --db / ${ENV_VAR}."
            )
        if tables and (app_id not in (0, APP_ID) or (version == 0 and "records" not in tables)):
            raise StoreError(
                f"{self.path} is an SQLite database that does not belong to ntk-tui; "
                f"choose another file with --db / ${ENV_VAR}."
            )
        if str(self.path) != ":memory:" and str(c.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            # Switching to WAL needs an exclusive lock and SQLite does not wait for it
            # (no busy handler): when another process is creating the same file, retry.
            mode = _retry_while_locked(lambda: c.execute("PRAGMA journal_mode = WAL").fetchone()[0], timeout)
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. network file systems
                c.execute("PRAGMA journal_mode = DELETE")
        c.execute("PRAGMA synchronous = FULL")
        if version == SCHEMA_VERSION:
            return
        with self._write():
            version = c.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
            if version == 0:
                for stmt in _split_sql(_SCHEMA_V1):
                    c.execute(stmt)
                c.execute(f"PRAGMA application_id = {APP_ID}")
                version = 1
            while version < SCHEMA_VERSION:
                step = MIGRATIONS.get(version)
                if step is None:
                    raise StoreError(
                        f"the history database {self.path} has schema version {version}, which this "
                        f"version of ntk-tui ({SCHEMA_VERSION}) cannot migrate; export what you need "
                        f"with an older ntk-tui, or start a new database with --db / ${ENV_VAR}."
                    )
                if callable(step):
                    step(c)
                else:
                    for stmt in _split_sql(step):
                        c.execute(stmt)
                version += 1
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _write(self):
        return _Transaction(self)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:  # pragma: no cover
                pass

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def integrity_check(self) -> str:
        """``"ok"`` or SQLite's description of the damage."""
        with self._lock:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    # ----------------------------------------------------------------- writing
    def _insert(self, *, kind: str, parent_id: int | None, name: str | None, status: str,
                family: str | None, config: Any, summary: Any, data: Any, build: Any,
                arrays: Mapping[str, Any]) -> int:
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO records (kind, parent_id, name, created, status, family, config, summary, data, build) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, parent_id, name, _now(), status, family, _dumps(config), _dumps(summary), _dumps(data),
                 _dumps(build)),
            )
            rid = int(cur.lastrowid)
            c.executemany(
                "INSERT INTO arrays (record_id, name, npy) VALUES (?, ?, ?)",
                [(rid, k, _npy_bytes(v)) for k, v in arrays.items()],
            )
        return rid

    def save_run(self, run: Any, name: str | None = None, config: Any = None, *,
                 parent: int | None = None, status: str | None = None, extra: Mapping[str, Any] | None = None,
                 build: Mapping[str, Any] | None = None) -> int:
        """Store a finished (or partial) run with its config, summary and arrays.

        ``config``: a :class:`~ntk_tui.config.RunConfig`, its dict, or ``None``
        (then derived from the run itself: ``RunConfig.from_run``). ``parent``:
        the id of the sweep the run belongs to. Returns the new id."""
        from .config import RunConfig, build_info
        from .export import summary_dict

        if config is None:
            try:
                config = RunConfig.from_run(run)
            except Exception as exc:  # e.g. a two-layer run without its data: keep what is known
                config = {"kind": "run", "run": {"family": run.family, "alpha": run.alpha, "T": run.T},
                          "model": dict(getattr(run, "params", {}) or {}), "incomplete": str(exc)}
        if hasattr(config, "to_dict"):
            config = config.to_dict()
        config = dict(config)
        config.setdefault("kind", "run")
        summary = summary_dict(run)
        if extra:
            summary.update(_jsonable(dict(extra)))
        arrays: dict[str, Any] = {}
        data = pack(run.to_dict(), arrays)
        run_status = status or str(getattr(run, "status", "ok") or "ok")
        return self._insert(kind="run", parent_id=parent, name=name, status=run_status, family=run.family,
                            config=config, summary=summary, data=data, build=build or build_info(),
                            arrays=arrays)

    def begin_sweep(self, spec: Any, name: str | None = None, *, build: Mapping[str, Any] | None = None) -> int:
        """Create the record of a sweep that is about to run (status ``running``);
        its runs are stored with ``save_run(..., parent=id)`` as they finish."""
        from .config import build_info

        config = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
        summary = {"n_total": len(spec) if hasattr(spec, "__len__") else None, "n_done": 0,
                   "pid": os.getpid(), "host": socket.gethostname()}
        return self._insert(kind="sweep", parent_id=None, name=name or getattr(spec, "name", None),
                            status="running", family=getattr(spec, "family", config.get("sweep", {}).get("family")),
                            config=config, summary=summary, data={}, build=build or build_info(), arrays={})

    def finish_sweep(self, sweep_id: int, sweep: Any) -> None:
        """Record a sweep's outcome (status, fits, timing) on its record."""
        summary = sweep.summary_dict() if hasattr(sweep, "summary_dict") else dict(sweep)
        status = getattr(sweep, "status", None) or summary.get("status", "done")
        with self._write() as c:
            c.execute("UPDATE records SET status = ?, summary = ? WHERE id = ? AND kind = 'sweep'",
                      (status, _dumps(summary), int(sweep_id)))

    def save_sweep(self, sweep: Any, name: str | None = None) -> int:
        """Store a finished sweep (a :class:`~ntk_tui.sweep.SweepResult`) and
        its runs. A sweep that was run with ``store=`` is already stored: its id
        is returned (and the name updated if given)."""
        rid = getattr(sweep, "record_id", None)
        if rid is not None and getattr(sweep, "store_path", None) == str(self.path) and self.exists(rid):
            if name:
                self.rename(rid, name)
            return int(rid)
        rid = self.begin_sweep(sweep.spec, name=name or getattr(sweep, "name", None), build=sweep.build)
        for i, row in enumerate(sweep.rows):
            run = sweep.runs.get(row["index"]) if getattr(sweep, "runs", None) else None
            if run is None:
                continue
            row["run_id"] = self.save_run(run, config=sweep.spec.run_config(sweep.task(row["index"])),
                                          parent=rid, extra={"task": sweep.task(row["index"]).to_dict()},
                                          build=sweep.build)
        self.finish_sweep(rid, sweep)
        sweep.record_id = rid
        sweep.store_path = str(self.path)
        return rid

    def rename(self, record_id: int, name: str | None) -> None:
        with self._write() as c:
            c.execute("UPDATE records SET name = ? WHERE id = ?", (name, int(record_id)))

    def delete(self, record_id: int) -> bool:
        """Delete a record (a sweep with all its runs). Returns False if absent."""
        with self._write() as c:
            cur = c.execute("DELETE FROM records WHERE id = ?", (int(record_id),))
            return cur.rowcount > 0

    # ----------------------------------------------------------------- reading
    def _record(self, row: tuple) -> Record:
        rid, kind, name, created, status, family, parent_id, config, summary, build = row
        rec = Record(id=rid, kind=kind, name=name, created=created, status=status, family=family,
                     parent_id=parent_id, config=json.loads(config), summary=json.loads(summary),
                     build=json.loads(build))
        if kind == "sweep" and status == "running" and _process_gone(rec.summary):
            rec.status = "incomplete"  # the process that ran it died (killed, crashed)
        return rec

    def exists(self, record_id: int) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM records WHERE id = ?", (int(record_id),)).fetchone() is not None

    def get(self, record_id: int) -> Record:
        """The :class:`Record` of an id (KeyError if there is none)."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_RECORD_COLS} FROM records WHERE id = ?", (int(record_id),)).fetchone()
            if row is None:
                raise KeyError(f"no record #{record_id} in {self.path}")
            rec = self._record(row)
            if rec.kind == "sweep":
                rec.n_runs = self._conn.execute("SELECT COUNT(*) FROM records WHERE parent_id = ?",
                                                (rec.id,)).fetchone()[0]
        return rec

    def list(self, kind: str | None = None, *, parent: int | None = None, include_children: bool = False,
             limit: int | None = None) -> list[Record]:
        """Records, newest first. By default the top level only (runs and
        sweeps, not the runs inside sweeps); ``parent=ID`` lists a sweep's runs
        (in sweep order); ``include_children=True`` lists everything."""
        if kind not in (None, "run", "sweep"):
            raise ValueError(f"kind must be 'run', 'sweep' or None (got {kind!r})")
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if parent is not None:
            where.append("parent_id = ?")
            args.append(int(parent))
        elif not include_children:
            where.append("parent_id IS NULL")
        sql = (f"SELECT {_RECORD_COLS}, (SELECT COUNT(*) FROM records c WHERE c.parent_id = r.id) "
               f"FROM records r")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id ASC" if parent is not None else " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        out = []
        for row in rows:
            rec = self._record(row[:-1])
            rec.n_runs = int(row[-1])
            out.append(rec)
        return out

    def children(self, sweep_id: int) -> builtins.list[Record]:
        return self.list(parent=sweep_id)

    def _arrays(self, record_id: int) -> dict[str, Any]:
        with self._lock:
            rows = self._conn.execute("SELECT name, npy FROM arrays WHERE record_id = ?", (int(record_id),)).fetchall()
        return {name: _npy_load(blob) for name, blob in rows}

    def load_run_dict(self, record_id: int) -> dict[str, Any]:
        """The stored ``run.to_dict()`` of a run record."""
        with self._lock:
            row = self._conn.execute("SELECT kind, data FROM records WHERE id = ?", (int(record_id),)).fetchone()
        if row is None:
            raise KeyError(f"no record #{record_id} in {self.path}")
        if row[0] != "run":
            raise ValueError(f"record #{record_id} is a {row[0]}, not a run")
        arrays = self._arrays(record_id)
        return unpack(json.loads(row[1]), arrays.__getitem__)

    def load_run(self, record_id: int):
        """The :class:`ntk_tui.Run` of a run record."""
        import ntk_tui as nt

        return nt.Run.from_dict(self.load_run_dict(record_id))

    def iter_runs(self, sweep_id: int) -> Iterator[builtins.tuple[Record, Any]]:
        """``(record, run)`` for every stored run of a sweep, in sweep order."""
        for rec in self.children(sweep_id):
            yield rec, self.load_run(rec.id)

    def load(self, record_id: int, *, runs: bool = False):
        """A run record as :class:`ntk_tui.Run`; a sweep record as
        :class:`ntk_tui.sweep.SweepResult` (its rows and fits; with
        ``runs=True`` also every run)."""
        rec = self.get(record_id)
        if rec.kind == "run":
            return self.load_run(record_id)
        from .sweep import SweepResult

        return SweepResult.from_store(self, rec, runs=runs)


def _process_gone(summary: Mapping[str, Any]) -> bool:
    """Whether the process recorded in a running sweep's summary is dead
    (only decidable on the same host)."""
    pid, host = summary.get("pid"), summary.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    try:  # a zombie (killed child not yet reaped) is gone too
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b")")[-1].split()[0] == b"Z"
    except OSError:
        return False


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error), serialized
    between threads by the store's lock and between processes by SQLite."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            self.store._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store._lock.release()
            raise
        return self.store._conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.store._conn.execute("COMMIT")
            else:
                self.store._conn.execute("ROLLBACK")
        finally:
            self.store._lock.release()

