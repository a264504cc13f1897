"""Exports of runs and sweeps to CSV, JSON and Parquet (by file suffix), and
loading them back (for ``ntk-tui plot``).

Run files hold one row per sample time: ``t``, every metric, and for each
bound ``bound_<name>`` (its value) and ``bound_<name>_valid`` (whether its
hypothesis holds at t). Sweep files hold one row per run: the task (T, alpha,
m, seed), status, R0, kappa, gap at T, each bound at T with its validity and
``ratio_<name>`` = bound / measured. The metadata (summary, full config, fits,
build info) travels with the data: a first ``# ntk-tui ...`` comment line of
JSON in CSV files, the schema metadata key ``ntk_tui`` in Parquet, and the
document itself in JSON (where NaN and infinities are written as null).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping

from .run import SERIES

__all__ = [
    "FORMATS",
    "ExportError",
    "LoadedRun",
    "LoadedBound",
    "summary_dict",
    "run_columns",
    "run_meta",
    "export_run",
    "export_sweep",
    "load_results",
]

FORMATS = (".csv", ".json", ".parquet")
METRIC_COLUMNS = SERIES
RUN_META_KEYS = ("family", "alpha", "T", "R0", "kappa", "rho", "lip_dh", "lip_dh_kind", "lip_h", "status", "metrics")


class ExportError(ValueError):
    """A file cannot be written or read as an ntk-tui result."""


# --------------------------------------------------------------------------- helpers


def _plain(obj: Any, *, finite: bool = False) -> Any:
    """JSON-able copy; with ``finite`` NaN/inf become None (strict JSON)."""
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): _plain(v, finite=finite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, finite=finite) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist(), finite=finite)
    if isinstance(obj, np.generic):
        return _plain(obj.item(), finite=finite)
    if isinstance(obj, float) and finite and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict") and not isinstance(obj, type):
        return _plain(obj.to_dict(), finite=finite)
    return obj


def _suffix(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"unsupported file type {suffix or '(none)'!r} for {path}: use one of {', '.join(FORMATS)}")
    return suffix


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ExportError(
            "Parquet files need pyarrow, an optional extra: pip install 'ntk-tui[parquet]' "
            "(or write .csv / .json instead)"
        ) from None
    return pyarrow


def summary_dict(run: Any) -> dict[str, Any]:
    """The JSON-able summary of a run (``analysis.summarize``) plus a few facts."""
    from .analysis import summarize

    s = summarize(run)
    d = _plain(s.to_dict() if hasattr(s, "to_dict") else vars(s))
    d["n_times"] = int(len(getattr(run, "times", [])))
    d["metrics"] = list(getattr(run, "metrics", ()) or ())
    return d


def run_columns(run: Any) -> dict[str, Any]:
    """Per-time columns of a run: t, metrics, bounds and their validity."""
    import numpy as np

    times = np.asarray(run.times, dtype=float)
    cols: dict[str, Any] = {"t": times}
    for name in METRIC_COLUMNS:
        v = getattr(run, name, None)
        if v is None:
            continue
        cols[name] = np.asarray(v, dtype=float)
    try:
        bounds = run.bounds() if callable(getattr(run, "bounds", None)) else {}
    except Exception:
        bounds = {}
    for name, b in bounds.items():
        value = np.broadcast_to(np.asarray(b.value if hasattr(b, "value") else b[0], dtype=float), times.shape)
        valid = np.broadcast_to(np.asarray(b.valid if hasattr(b, "valid") else b[1], dtype=bool), times.shape)
        cols[f"bound_{name}"] = np.array(value)
        cols[f"bound_{name}_valid"] = np.array(valid)
    return cols


def run_meta(run: Any) -> dict[str, Any]:
    meta = {k: _plain(getattr(run, k, None)) for k in RUN_META_KEYS}
    meta["stats"] = _plain(dict(getattr(run, "stats", {}) or {}))
    return meta


def _meta_document(run: Any, config: Any, build: Any, name: str | None) -> dict[str, Any]:
    from .config import RunConfig, build_info

    if config is None:
        try:
            config = RunConfig.from_run(run)
        except Exception:
            config = None
    return {
        "format": "ntk-tui/run",
        "version": 1,
        "name": name,
        "meta": run_meta(run),
        "summary": summary_dict(run),
        "config": _plain(config) if config is not None else None,
        "build": _plain(build) if build is not None else build_info(),
    }


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _write_csv(path: Path, header: str, doc: Mapping[str, Any], columns: Mapping[str, Any]) -> None:
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        fh.write(f"# {header} " + json.dumps(_plain(doc, finite=True), separators=(",", ":")) + "\n")
        w = csv.writer(fh)
        w.writerow(names)
        cols = [list(_plain(columns[k])) for k in names]
        for i in range(n):
            w.writerow([_csv_cell(c[i]) for c in cols])


def _write_parquet(path: Path, doc: Mapping[str, Any], columns: Mapping[str, Any]) -> None:
    pa = _pyarrow()
    import pyarrow.parquet as pq

    arrays = {}
    for k, v in columns.items():
        vals = _plain(v)
        arrays[k] = pa.array(vals)
    table = pa.table(arrays)
    meta = dict(table.schema.metadata or {})
    meta[b"ntk_tui"] = json.dumps(_plain(doc, finite=True)).encode()
    pq.write_table(table.replace_schema_metadata(meta), str(path))


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_plain(doc, finite=True), fh, indent=1, allow_nan=False)
        fh.write("\n")


# --------------------------------------------------------------------------- export


def export_run(run: Any, path: str | Path, *, config: Any = None, build: Any = None, name: str | None = None) -> Path:
    """Write a run's measurements (one row per time) to ``path`` (.csv, .json or .parquet)."""
    path = Path(path).expanduser()
    suffix = _suffix(path)
    doc = _meta_document(run, config, build, name)
    cols = run_columns(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        _write_csv(path, "ntk-tui run", doc, cols)
    elif suffix == ".parquet":
        _write_parquet(path, doc, cols)
    else:
        doc = dict(doc)
        doc["columns"] = cols
        doc["run"] = run.to_dict() if hasattr(run, "to_dict") else None
        _write_json(path, doc)
    return path


def sweep_columns(sweep: Any) -> dict[str, list]:
    """Per-run columns of a sweep (union of the rows' keys, in first-seen order)."""
    keys: list[str] = []
    for r in sweep.rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    return {k: [r.get(k) for r in sweep.rows] for k in keys}


def export_sweep(sweep: Any, path: str | Path) -> Path:
    """Write a sweep (one row per run, plus spec, fits and build info) to ``path``."""
    path = Path(path).expanduser()
    suffix = _suffix(path)
    doc = sweep.to_dict()
    rows = doc.pop("rows")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        doc["rows"] = rows
        _write_json(path, doc)
        return path
    cols = sweep_columns(sweep)
    if not cols:
        cols = {"index": []}
    if suffix == ".csv":
        _write_csv(path, "ntk-tui sweep", doc, cols)
    else:
        # Parquet needs one type per column: normalize None/int mixes to float where numeric.
        fixed = {}
        for k, v in cols.items():
            if all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in v) and any(
                    isinstance(x, float) for x in v):
                fixed[k] = [float("nan") if x is None else float(x) for x in v]
            else:
                fixed[k] = v
        _write_parquet(path, doc, fixed)
    return path


# --------------------------------------------------------------------------- loading


class LoadedBound:
    def __init__(self, value: Any, valid: Any) -> None:
        self.value = value
        self.valid = valid

    def __iter__(self):
        return iter((self.value, self.valid))


class LoadedRun:
    """A run read back from an export: the attributes of ``ntk_tui.Run`` that
    the files hold (times, metrics, scalars) and ``bounds()``."""

    def __init__(self, doc: Mapping[str, Any], columns: Mapping[str, Any]) -> None:
        import numpy as np

        self.doc = dict(doc)
        meta = dict(doc.get("meta") or {})
        self.name = doc.get("name")
        self.family = meta.get("family")
        self.alpha: float = float("nan")
        self.T: float = float("nan")
        for k in RUN_META_KEYS:
            if k != "family":
                v = meta.get(k)
                setattr(self, k, float("nan") if v is None and k not in ("lip_dh_kind", "status", "metrics") else v)
        self.status = meta.get("status") or "ok"
        self.stats = dict(meta.get("stats") or {})
        self.summary = dict(doc.get("summary") or {})
        self.config = doc.get("config")
        self.build = doc.get("build")
        self.params = dict((self.config or {}).get("model") or {})
        self.times = np.asarray(columns["t"], dtype=float)
        nk = len(self.times)
        for name in METRIC_COLUMNS:
            v = columns.get(name)
            setattr(self, name, np.full(nk, np.nan) if v is None else np.asarray(
                [np.nan if x is None else x for x in v], dtype=float))
        self._bounds = {}
        for key in columns:
            if key.startswith("bound_") and not key.endswith("_valid"):
                bname = key[len("bound_"):]
                value = np.asarray([np.nan if x is None else x for x in columns[key]], dtype=float)
                valid = columns.get(f"{key}_valid")
                valid = np.ones(nk, dtype=bool) if valid is None else np.asarray(
                    [_truthy(x) for x in valid], dtype=bool)
                self._bounds[bname] = LoadedBound(value, valid)

    def bounds(self) -> dict[str, LoadedBound]:
        return dict(self._bounds)

    def __repr__(self) -> str:
        return f"LoadedRun(family={self.family!r}, alpha={self.alpha!r}, T={self.T!r}, k={len(self.times)})"


def _truthy(x: Any) -> bool:
    if isinstance(x, str):
        return x.strip().lower() in ("true", "1", "yes")
    return bool(x)


def _parse_cell(s: str) -> Any:
    if s == "":
        return None
    if s in ("true", "false"):
        return s == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def _read_csv(path: Path) -> tuple[dict[str, Any], dict[str, list]]:
    with open(path, newline="", encoding="utf-8") as fh:
        first = fh.readline()
        if not first.startswith("# ntk-tui "):
            raise ExportError(f"{path} is not an ntk-tui export (no '# ntk-tui' header line)")
        try:
            doc = json.loads(first.split(" ", 3)[3])
        except (IndexError, json.JSONDecodeError) as exc:
            raise ExportError(f"{path}: damaged ntk-tui header line ({exc})") from None
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            header = []
        cols: dict[str, list] = {h: [] for h in header}
        for row in reader:
            for h, cell in zip(header, row):
                cols[h].append(_parse_cell(cell))
    return doc, cols


def _read_parquet(path: Path) -> tuple[dict[str, Any], dict[str, list]]:
    _pyarrow()
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path))
    except Exception as exc:
        raise ExportError(f"cannot read {path} as Parquet: {exc}") from None
    meta = table.schema.metadata or {}
    if b"ntk_tui" not in meta:
        raise ExportError(f"{path} is not an ntk-tui export (no ntk_tui metadata)")
    doc = json.loads(meta[b"ntk_tui"])
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    for k, v in cols.items():  # NaN written for missing values -> None
        cols[k] = [None if isinstance(x, float) and math.isnan(x) else x for x in v]
    return doc, cols


def load_results(path: str | Path):
    """Read an export back: a :class:`LoadedRun` for a run file, a
    :class:`~ntk_tui.sweep.SweepResult` (rows, spec, fits) for a sweep file."""
    path = Path(path).expanduser()
    suffix = _suffix(path)
    if not path.exists():
        raise ExportError(f"file not found: {path}")
    if suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ExportError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or "format" not in doc:
            raise ExportError(f"{path} is not an ntk-tui export")
        cols = doc.get("columns") or {}
        rows = doc.get("rows")
    elif suffix == ".csv":
        doc, cols = _read_csv(path)
        rows = None
    else:
        doc, cols = _read_parquet(path)
        rows = None
    fmt = doc.get("format")
    if fmt == "ntk-tui/run":
        if "t" not in cols:
            raise ExportError(f"{path}: run export without a 't' column")
        return LoadedRun(doc, cols)
    if fmt == "ntk-tui/sweep":
        from .sweep import SweepResult

        if rows is None:
            n = len(next(iter(cols.values()))) if cols else 0
            rows = [{k: v[i] for k, v in cols.items()} for i in range(n)]
        doc = dict(doc)
        doc["rows"] = [{k: v for k, v in r.items()} for r in rows]
        for r in doc["rows"]:
            for key in ("m", "seed", "index", "run_id"):
                if isinstance(r.get(key), float) and r[key] is not None:
                    r[key] = None if math.isnan(r[key]) else int(r[key])
        return SweepResult.from_dict(doc)
    raise ExportError(f"{path}: unknown ntk-tui format {fmt!r}")


def to_csv_string(columns: Mapping[str, Any]) -> str:
    """Columns as CSV text (used for quick previews)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    names = list(columns)
    w.writerow(names)
    n = len(next(iter(columns.values()))) if columns else 0
    cols = [list(_plain(columns[k])) for k in names]
    for i in range(n):
        w.writerow([_csv_cell(c[i]) for c in cols])
    return buf.getvalue()
