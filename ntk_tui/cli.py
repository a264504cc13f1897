"""The ``ntk-tui`` command.

``ntk-tui`` alone (or with ``--preset/--family/...``) opens the terminal app;
the subcommands work headless:

- ``ntk-tui run``: one run, a table of the summary, ``--out`` measurements;
- ``ntk-tui sweep``: alpha / width / seeds / T grids, progress bar, fitted
  exponents of gap(T) next to the theory's, ``--scheduler`` for Dask;
- ``ntk-tui plot``: PNG/SVG/PDF figures of saved runs and sweeps;
- ``ntk-tui history list|show|delete|export``: the run history database.

Exit codes: 0 success, 1 failure (a run failed, a file could not be
written...), 2 usage error (bad arguments or configuration), 130 interrupted.
See docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .run import DEFAULT_ATOL, DEFAULT_RTOL

__all__ = ["main", "build_parser", "UsageError"]

PROG = "ntk-tui"
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DATA_FORMATS = (".csv", ".json", ".parquet")
FIG_FORMATS = (".png", ".svg", ".pdf")


class UsageError(Exception):
    """A user mistake: reported with the subcommand's usage line, exit code 2."""


# =========================================================================== argument types


def _checked(text: str, convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Any:
    """``convert(text)`` if it parses and passes ``ok``, else an argparse error saying it ``must be {what}``."""
    try:
        v = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"must be {what} (got {text})")
    return v


def _positive_float(text: str) -> float:
    return _checked(text, float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def _nonneg_float(text: str) -> float:
    return _checked(text, float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")


def _positive_int(text: str) -> int:
    return _checked(text, int, lambda v: v >= 1, "a positive whole number")


def _nonneg_int(text: str) -> int:
    return _checked(text, int, lambda v: v >= 0, "a whole number >= 0")


def _sign(text: str) -> int:
    if text in ("1", "+1", "+"):
        return 1
    if text in ("-1", "-"):
        return -1
    raise argparse.ArgumentTypeError(f"must be 1 or -1 (got {text!r})")


def _grid(text: str, *, integer: bool = False) -> list:
    """``"10,100,1000"`` or ``"LO:HI:N"`` (N log-spaced values from LO to HI)."""
    text = text.strip()
    kind = "whole numbers" if integer else "numbers"
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"a range is LO:HI:N (got {text!r})")
        try:
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise argparse.ArgumentTypeError(f"a range is LO:HI:N with numbers LO, HI and a count N (got {text!r})") from None
        if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
            raise argparse.ArgumentTypeError(f"range ends must be positive numbers (got {text!r})")
        if n < 1:
            raise argparse.ArgumentTypeError(f"a range needs N >= 1 values (got {text!r})")
        if n == 1:
            vals = [lo]
        else:
            vals = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
        if integer:
            ints: list = []
            for v in vals:
                iv = int(round(v))
                if iv not in ints:
                    ints.append(iv)
            return ints
        return [float(f"{v:.12g}") for v in vals]
    items = [s for s in text.replace(" ", ",").split(",") if s]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind} (got {text!r})")
    out: list = []
    for s in items:
        try:
            v = int(s) if integer else float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind} (got {s!r} in {text!r})") from None
        if not (v > 0 and math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"values must be positive (got {s})")
        out.append(v)
    return out


def _float_grid(text: str) -> list:
    return _grid(text)


def _int_grid(text: str) -> list:
    return _grid(text, integer=True)


def _seed_list(text: str) -> list:
    items = [s for s in text.replace(" ", ",").split(",") if s]
    out: list = []
    for s in items:
        if "-" in s[1:]:
            a, b = s.split("-", 1)
            try:
                lo, hi = int(a), int(b)
            except ValueError:
                raise argparse.ArgumentTypeError(f"seeds are whole numbers or ranges like 0-9 (got {s!r})") from None
            if lo < 0 or hi < lo:
                raise argparse.ArgumentTypeError(f"bad seed range {s!r}")
            out.extend(range(lo, hi + 1))
        else:
            try:
                v = int(s)
            except ValueError:
                raise argparse.ArgumentTypeError(f"seeds are whole numbers or ranges like 0-9 (got {s!r})") from None
            if v < 0:
                raise argparse.ArgumentTypeError(f"seeds must be >= 0 (got {v})")
            out.append(v)
    if not out:
        raise argparse.ArgumentTypeError("no seeds given")
    return out


def _writable(text: str) -> str:
    """Refuses, before any computation, an output path that could not be written:
    its folder (created if missing) must sit in a writable existing folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"output path is a folder, not a file (got {text!r})")
    folder = path.parent.resolve()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {folder} is not a writable folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: the file is read-only")
    return text


def _data_path(text: str) -> str:
    if Path(text).suffix.lower() not in DATA_FORMATS:
        raise argparse.ArgumentTypeError(
            f"output file must end in {', '.join(DATA_FORMATS)} (got {text!r})")
    return _writable(text)


def _fig_path(text: str) -> str:
    if Path(text).suffix.lower() not in FIG_FORMATS:
        raise argparse.ArgumentTypeError(f"figure file must end in {', '.join(FIG_FORMATS)} (got {text!r})")
    return _writable(text)


def _record_id(text: str) -> int:
    t = text.lstrip("#")
    try:
        v = int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a history id is a whole number like 12 (got {text!r})") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"history ids start at 1 (got {text})")
    return v


# =========================================================================== parser


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and the usage line on every error."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _presets_epilog() -> str:
    try:
        from .tui.presets import PRESETS
    except Exception:
        return ""
    lines = ["presets (ntk-tui --preset NAME):"]
    for name, desc in PRESETS.items():
        short = desc.split(":")[0]
        lines.append(f"  {name:<12} {short}")
    return "\n".join(lines)


def _model_options(p: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    g = p.add_argument_group("model (which options apply depends on the family)")
    g.add_argument("--m", type=_positive_int, metavar="M", help="twolayer: width (hidden units)")
    g.add_argument("--n", type=_positive_int, metavar="N",
                   help="twolayer: number of data points; quadratic/linear: number of outputs")
    g.add_argument("--d", type=_positive_int, metavar="D", help="twolayer: input dimension")
    g.add_argument("--p", type=_positive_int, metavar="P", help="quadratic/linear: number of parameters")
    g.add_argument("--R0", type=_positive_float, metavar="R0", help="converse: initial loss R0")
    g.add_argument("--lip-dh", type=_nonneg_float, metavar="L", help="converse/quadratic: Lip(Dh)")
    g.add_argument("--sign", type=_sign, metavar="{1,-1}", help="converse: sign of the curvature b")
    g.add_argument("--activation", metavar="NAME",
                   help="twolayer: tanh, sigmoid, erf or softplus (smooth activations only)")
    if not sweep:
        g.add_argument("--seed", type=_nonneg_int, metavar="S", help="twolayer/quadratic/linear: initialisation seed")
    g.add_argument("--centered", dest="centered", action="store_true", default=None,
                   help="twolayer: use h(w) - h(w0) (default)")
    g.add_argument("--no-centered", dest="centered", action="store_false", help="twolayer: do not centre")
    g.add_argument("--target", metavar="NAME", help="twolayer synthetic data: target function (sin, linear, teacher, sign)")
    g.add_argument("--data", metavar="FILE", help="twolayer: data file (.npy/.npz/.csv, last column = y)")
    g.add_argument("--data-seed", type=_nonneg_int, metavar="S", help="twolayer synthetic data: its seed")


def _integrator_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("integrator")
    g.add_argument("--times", type=_positive_int, metavar="K",
                   help="number of log-spaced sample times in [1e-5 T, T] (default 64)")
    g.add_argument("--rtol", type=_positive_float, help=f"relative tolerance (default {DEFAULT_RTOL:g})")
    g.add_argument("--atol", type=_positive_float, help=f"absolute tolerance (default {DEFAULT_ATOL:g})")
    g.add_argument("--method", help="ODE integrator: dop853 (default), dopri5, or rodas4 for stiff runs of models with p <= 200")
    g.add_argument("--max-steps", type=_positive_int, metavar="N", help="step limit (default 1000000)")
    g.add_argument("--metrics", metavar="LIST", help="comma-separated metrics to compute (default: all)")


def _db_options(p: argparse.ArgumentParser, *, save: bool = True) -> None:
    g = p.add_argument_group("history")
    g.add_argument("--db", metavar="PATH", help="history database (default: $NTK_TUI_DB or the user data dir)")
    if save:
        g.add_argument("--no-save", action="store_true", help="do not store the result in the history")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A terminal laboratory for the neural tangent kernel approximation: gradient flow vs.\n"
                    "its linearization, against the theory's bounds. Without a command, opens the terminal app.",
        epilog=_presets_epilog() + "\n\nrun 'ntk-tui COMMAND --help' for the options of a command; see docs/cli.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    tui = parser.add_argument_group("terminal app (no command)")
    tui.add_argument("--preset", metavar="NAME", help="open the app with a preset (listed below)")
    tui.add_argument("--family", dest="tui_family", metavar="F", help="model family: converse, twolayer, quadratic, linear")
    tui.add_argument("--alpha", dest="tui_alpha", type=_positive_float, metavar="A", help="scale alpha")
    tui.add_argument("--T", dest="tui_T", type=_positive_float, metavar="T", help="training horizon T")
    tui.add_argument("--set", dest="tui_set", action="append", default=[], metavar="KEY=VALUE",
                     help="any other form field, e.g. --set m=512 --set activation=sigmoid")
    tui.add_argument("--db", dest="db_top", metavar="PATH", help="history database")
    tui.add_argument("--no-braille", action="store_true",
                     help="draw plots with block characters (for terminals without braille glyphs; "
                          "same as NTK_TUI_NO_BRAILLE=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # ---- run
    p = sub.add_parser("run", help="one run: summary table, optional measurements file",
                       description="Integrate the gradient flow and its linearization once and print the summary: "
                                   "R0, kappa, gap at T, each bound with its ratio, the verdict.")
    p.add_argument("--config", metavar="FILE", help="TOML run configuration (options given here override it)")
    p.add_argument("--family", choices=("converse", "twolayer", "quadratic", "linear"), help="model family")
    p.add_argument("--alpha", type=_positive_float, help="scale alpha (default 100)")
    p.add_argument("--T", type=_positive_float, help="training horizon T (default 100)")
    _model_options(p)
    _integrator_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--out", "-o", type=_data_path, metavar="FILE", help="write the measurements (.csv, .json, .parquet)")
    o.add_argument("--plot", type=_fig_path, metavar="FIG", help="write a figure (.png, .svg, .pdf; needs matplotlib)")
    o.add_argument("--name", help="name of the run in the history")
    o.add_argument("--save-config", metavar="FILE", help="write the effective configuration as TOML")
    o.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _db_options(p)
    p.set_defaults(func=cmd_run)

    # ---- sweep
    p = sub.add_parser("sweep", help="a grid of runs and the fitted exponents of gap(T)",
                       description="Run every combination of T, seed and alpha (or width m, with alpha = sqrt(m): "
                                   "the NTK parametrization) and fit the exponents of gap(T) in alpha and in T. Lists are comma-"
                                   "separated (10,100,1000) or log ranges LO:HI:N. Ctrl-C stops and keeps what finished.")
    p.add_argument("--config", metavar="FILE", help="TOML sweep configuration (options given here override it)")
    p.add_argument("--family", choices=("converse", "twolayer", "quadratic", "linear"), help="model family")
    p.add_argument("--alpha", type=_float_grid, metavar="LIST", help="alpha values, e.g. 10,100,1000 or 10:1000:7")
    p.add_argument("--width", type=_int_grid, metavar="LIST",
                   help="twolayer widths m with alpha = sqrt(m) (NTK parametrization), e.g. 64:4096:7")
    p.add_argument("--seeds", type=_seed_list, metavar="LIST", help="seeds, e.g. 0,1,2 or 0-9")
    p.add_argument("--n-seeds", type=_positive_int, metavar="K", help="seeds 0 .. K-1")
    p.add_argument("--T", type=_float_grid, metavar="LIST", help="horizons T (default 10)")
    p.add_argument("--T-scale", type=_positive_float, metavar="C",
                   help="T = C alpha for every run (the edge of the lazy regime) instead of --T")
    _model_options(p, sweep=True)
    _integrator_options(p)
    e = p.add_argument_group("execution")
    e.add_argument("--threads", type=_positive_int, metavar="N", help="runs at once (default: number of cores)")
    e.add_argument("--chunk-size", type=_positive_int, metavar="N",
                   help="runs per batch job (default 1 locally; automatic on Dask)")
    e.add_argument("--scheduler", metavar="ADDR",
                   help="run on Dask: tcp://HOST:8786, or 'local' / 'local:N' for a LocalCluster here")
    o = p.add_argument_group("output")
    o.add_argument("--out", "-o", type=_data_path, metavar="FILE", help="write one row per run (.csv, .json, .parquet)")
    o.add_argument("--plot", type=_fig_path, metavar="FIG", help="write a figure (.png, .svg, .pdf; needs matplotlib)")
    o.add_argument("--name", help="name of the sweep in the history")
    o.add_argument("--save-config", metavar="FILE", help="write the effective configuration as TOML")
    o.add_argument("--json", action="store_true", help="print the result (fits, counts) as JSON")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    o.add_argument("--dry-run", action="store_true", help="print the grid and exit")
    _db_options(p)
    p.set_defaults(func=cmd_sweep)

    # ---- plot
    p = sub.add_parser("plot", help="figures of saved runs and sweeps (needs matplotlib)",
                       description="Render a saved run (gap vs t with the bounds, weight change, kernel drift) or "
                                   "sweep (gap(T) vs alpha or width with fitted slopes and the theory's). RESULTS are "
                                   "files written by --out / history export, or history ids; several runs are "
                                   "compared on one plot.")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="result files (.csv/.json/.parquet) or history ids")
    p.add_argument("--out", "-o", type=_fig_path, action="append", metavar="FIG",
                   help="figure file(s) (.png, .svg, .pdf); default: next to the input, or ntk-tui-ID.png")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="default figure format")
    p.add_argument("--title", help="figure title")
    _db_options(p, save=False)
    p.set_defaults(func=cmd_plot)

    # ---- history
    p = sub.add_parser("history", help="the run history: list, show, delete, export",
                       description="Browse the history database of finished runs and sweeps.")
    hs = p.add_subparsers(dest="history_command", metavar="ACTION", parser_class=_Parser)
    h = hs.add_parser("list", help="list runs and sweeps (newest first)")
    h.add_argument("--kind", choices=("run", "sweep"), help="only runs or only sweeps")
    h.add_argument("--all", action="store_true", help="also the runs inside sweeps")
    h.add_argument("--sweep", type=_record_id, metavar="ID", help="the runs of one sweep")
    h.add_argument("--limit", type=_positive_int, default=50, help="at most this many (default 50)")
    h.add_argument("--json", action="store_true", help="print JSON")
    _db_options(h, save=False)
    h.set_defaults(func=cmd_history_list)
    h = hs.add_parser("show", help="summary, config and build info of one record")
    h.add_argument("id", type=_record_id, help="history id")
    h.add_argument("--config", action="store_true", help="print only its TOML config (to re-run it: --config FILE)")
    h.add_argument("--json", action="store_true", help="print JSON")
    _db_options(h, save=False)
    h.set_defaults(func=cmd_history_show)
    h = hs.add_parser("delete", help="delete records (a sweep with its runs)")
    h.add_argument("ids", type=_record_id, nargs="+", metavar="ID", help="history ids")
    h.add_argument("--yes", "-y", action="store_true", help="do not ask")
    _db_options(h, save=False)
    h.set_defaults(func=cmd_history_delete)
    h = hs.add_parser("export", help="write a record to .csv, .json or .parquet")
    h.add_argument("id", type=_record_id, help="history id")
    h.add_argument("out", type=_data_path, metavar="FILE", help="output file (.csv, .json, .parquet)")
    _db_options(h, save=False)
    h.set_defaults(func=cmd_history_export)
    p.set_defaults(func=cmd_history_help, history_parser=p)
    return parser


# =========================================================================== helpers


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None
    try:
        if not stream.isatty() and "COLUMNS" not in os.environ:
            width = 160  # files and pipes: do not squeeze the tables to 80 columns
    except (AttributeError, ValueError):
        width = 160
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def _db_path(args: argparse.Namespace) -> str | None:
    return getattr(args, "db", None) or getattr(args, "db_top", None)


def _open_store(args: argparse.Namespace):
    from .store import Store

    return Store(_db_path(args))


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        from .analysis import format_si

        return format_si(float(x), digits)
    return str(x)


# family -> applicable CLI model options and where they go: (table, key)
_MODEL_OPTS = {
    "m": {"twolayer": ("model", "m")},
    "n": {"twolayer": ("data", "n"), "quadratic": ("model", "n"), "linear": ("model", "n")},
    "d": {"twolayer": ("data", "d")},
    "p": {"quadratic": ("model", "p"), "linear": ("model", "p")},
    "R0": {"converse": ("model", "R0")},
    "lip_dh": {"converse": ("model", "lip_dh"), "quadratic": ("model", "lip_dh")},
    "sign": {"converse": ("model", "sign")},
    "activation": {"twolayer": ("model", "activation")},
    "seed": {"twolayer": ("model", "seed"), "quadratic": ("model", "seed"), "linear": ("model", "seed")},
    "centered": {"twolayer": ("model", "centered")},
    "target": {"twolayer": ("data", "target")},
    "data": {"twolayer": ("data", "path")},
    "data_seed": {"twolayer": ("data", "seed")},
}


def _opt_name(key: str) -> str:
    return {"lip_dh": "--lip-dh", "data_seed": "--data-seed", "centered": "--centered/--no-centered"}.get(key, f"--{key}")


def _apply_model_options(d: dict, args: argparse.Namespace, family: str) -> None:
    for key, where in _MODEL_OPTS.items():
        value = getattr(args, key, None)
        if value is None:
            continue
        if family not in where:
            raise UsageError(f"{_opt_name(key)} does not apply to family {family!r} "
                             f"(it applies to: {', '.join(where)})")
        table, k = where[family]
        tbl = d.setdefault(table, {}) or {}
        d[table] = tbl
        if table == "data":
            if key == "data":
                d["data"] = {"source": "file", "path": str(Path(value).expanduser().resolve())}
                continue
            if tbl.get("source") in ("file", "inline"):
                raise UsageError(f"{_opt_name(key)} applies to synthetic data, not to a data file")
            tbl.setdefault("source", "sphere")
        tbl[k] = value


def _apply_integrator_options(d: dict, args: argparse.Namespace) -> None:
    integ = dict(d.get("integrator") or {})
    for key in ("times", "rtol", "atol", "method", "max_steps"):
        v = getattr(args, key, None)
        if v is not None:
            integ[key] = v
    if getattr(args, "metrics", None):
        integ["metrics"] = [m.strip() for m in args.metrics.split(",") if m.strip()]
    d["integrator"] = integ


def _load_config_file(path: str, want: str):
    from .config import RunConfig, load_config

    cfg = load_config(path)
    kind = "run" if isinstance(cfg, RunConfig) else "sweep"
    if kind != want:
        raise UsageError(f"{path} describes a {kind}; use 'ntk-tui {kind} --config {path}'")
    return cfg


def _check_metrics(metrics: Any) -> None:
    if not metrics:
        return
    try:
        import ntk_tui as nt

        known = tuple(getattr(nt, "METRICS", ()))
    except Exception:
        known = ()
    bad = [m for m in metrics if known and m not in known]
    if bad:
        raise UsageError(f"unknown metric{'s' if len(bad) > 1 else ''} {', '.join(bad)}; accepted: {', '.join(known)}")


def _section_with_family(args: argparse.Namespace, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config file's tables (or none) and a copy of its ``key`` table, with ``--family`` applied."""
    base = _load_config_file(args.config, key).to_dict() if args.config else {key: {}}
    section = dict(base.get(key) or {})
    if args.family:
        if section.get("family") and section["family"] != args.family:
            base = {key: {}, "integrator": base.get("integrator", {})}  # family changed: model tables no longer apply
            section = {}
        section["family"] = args.family
    if "family" not in section:
        raise UsageError("--family is required (converse, twolayer, quadratic or linear), or give --config FILE")
    return base, section


def _run_config_from_args(args: argparse.Namespace):
    from .config import RunConfig

    base, run = _section_with_family(args, "run")
    if args.alpha is not None:
        run["alpha"] = args.alpha
    if args.T is not None:
        run["T"] = args.T
    run.setdefault("alpha", 100.0)
    run.setdefault("T", 100.0)
    if args.name:
        run["name"] = args.name
    base["run"] = run
    _apply_model_options(base, args, run["family"])
    _apply_integrator_options(base, args)
    _check_metrics((base.get("integrator") or {}).get("metrics") if isinstance(
        (base.get("integrator") or {}).get("metrics"), list) else None)
    return RunConfig.from_dict(base)


def _sweep_spec_from_args(args: argparse.Namespace):
    from .config import SweepSpec

    base, sw = _section_with_family(args, "sweep")
    if args.alpha is not None and args.width is not None:
        raise UsageError("give --alpha or --width (alpha = sqrt(m)), not both")
    if args.alpha is not None:
        sw.pop("width", None)
        sw["alpha"] = args.alpha
    if args.width is not None:
        sw.pop("alpha", None)
        sw["width"] = args.width
    if "alpha" not in sw and "width" not in sw:
        raise UsageError("a sweep needs --alpha LIST or --width LIST (e.g. --alpha 10:1000:5)")
    if args.seeds is not None and args.n_seeds is not None:
        raise UsageError("give --seeds or --n-seeds, not both")
    if args.seeds is not None:
        sw["seeds"] = args.seeds
    if args.n_seeds is not None:
        sw["seeds"] = list(range(args.n_seeds))
    if args.T is not None and args.T_scale is not None:
        raise UsageError("give --T or --T-scale (T = C alpha), not both")
    if args.T is not None:
        sw.pop("T_scale", None)
        sw["T"] = args.T
    if args.T_scale is not None:
        sw.pop("T", None)
        sw["T_scale"] = args.T_scale
    if "T" not in sw and "T_scale" not in sw:
        sw["T"] = [10.0]
    if args.name:
        sw["name"] = args.name
    base["sweep"] = sw
    _apply_model_options(base, args, sw["family"])
    _apply_integrator_options(base, args)
    ex = dict(base.get("execution") or {})
    if args.threads is not None:
        ex["threads"] = args.threads
    if args.chunk_size is not None:
        ex["chunk_size"] = args.chunk_size
    if ex:
        base["execution"] = ex
    metrics = (base.get("integrator") or {}).get("metrics")
    _check_metrics(metrics if isinstance(metrics, list) else None)
    return SweepSpec.from_dict(base)


def _write_config(cfg: Any, path: str) -> None:
    Path(path).expanduser().write_text(cfg.to_toml(), encoding="utf-8")


# =========================================================================== printing


def _summary_tables(summary: dict, run: Any, record_id: int | None, db: str | None):
    from rich.table import Table

    s = summary
    head = Table(show_header=False, box=None, pad_edge=False, padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    title = f"{s.get('family')}  alpha={_fmt(s.get('alpha'))}  T={_fmt(s.get('T'))}"
    head.add_row("run", title + (f"   (history #{record_id})" if record_id else ""))
    head.add_row("R0", _fmt(s.get("R0")))
    head.add_row("kappa(T)", _fmt(s.get("kappa")))
    lip = _fmt(s.get("lip_dh"))
    kind = s.get("lip_dh_kind") or ""
    lip_txt = f"{'<= ' if kind == 'upper_bound' else '= ' if kind == 'exact' else ''}{lip} ({kind or '?'})"
    path_max = s.get("lip_dh_path_max")
    if isinstance(path_max, (int, float)) and math.isfinite(path_max):
        lip_txt += f", >= {_fmt(path_max)} on the path"
    head.add_row("Lip(Dh)", lip_txt)
    at = "gap(T)" if s.get("t") is None or s.get("T") is None or abs(s["t"] - s["T"]) <= 1e-12 * s["T"] \
        else f"gap(t={_fmt(s['t'])})"
    head.add_row(at, f"{_fmt(s.get('gap_T'))}   (relative to ||r(0)||: {_fmt(s.get('relative_gap_T'))})")

    bt = Table(title="bounds at T", title_justify="left", header_style="bold")
    for col in ("bound", "kind", "value", "valid", "measured", "bound/measured", "check"):
        bt.add_column(col, justify="right" if col in ("value", "measured", "bound/measured") else "left")
    for name, b in (s.get("bounds") or {}).items():
        if not b.get("checked"):
            check = "not checked" if b.get("valid") else "hypothesis fails"
        else:
            check = "[red]VIOLATED[/red]" if b.get("violated") else "holds"
        bt.add_row(b.get("label") or name, b.get("kind") or "", _fmt(b.get("value")), _fmt(b.get("valid")),
                   _fmt(b.get("measured")), _fmt(b.get("ratio")), check)
    stats = s.get("stats") or {}
    foot = Table(show_header=False, box=None, pad_edge=False, padding=(0, 2))
    foot.add_column(style="bold")
    foot.add_column()
    foot.add_row("verdict", str(s.get("verdict")))
    foot.add_row("integrator", f"{stats.get('method', '?')}  rtol {_fmt(stats.get('rtol'))}  atol "
                               f"{_fmt(stats.get('atol'))}  nfev {stats.get('nfev', '?')}  accepted "
                               f"{stats.get('naccept', '?')}  rejected {stats.get('nreject', '?')}  "
                               f"{_fmt(stats.get('elapsed_s'))} s")
    if s.get("status") not in (None, "ok"):
        foot.add_row("status", f"[red]{s.get('status')}[/red]")
    return head, bt, foot


def _print_run_summary(console: Any, summary: dict, run: Any, record_id: int | None, db: str | None) -> None:
    head, bt, foot = _summary_tables(summary, run, record_id, db)
    console.print(head)
    console.print(bt)
    console.print(foot)


def _fits_table(fits: dict, variable: str):
    from rich.table import Table

    t = Table(title="scaling exponents of gap(T) (log-log least squares, seeds pooled)", title_justify="left",
              header_style="bold")
    for col in ("exponent in", "at", "fitted", "95% CI", "R^2", "points", "Thm 1.2", "Prop 1.1"):
        t.add_column(col, justify="left" if col in ("exponent in", "at") else "right")
    rows = 0
    for var in (variable, "T"):
        for f in fits.get(var, []):
            lo, hi = f["slope_ci95"]
            ci = "-" if lo is None or (isinstance(lo, float) and math.isnan(lo)) else f"[{lo:.3f}, {hi:.3f}]"
            at = ", ".join(f"{k}={v}" if isinstance(v, int) or (k == "m" and isinstance(v, float) and v.is_integer())
                           and not isinstance(v, bool) else f"{k}={_fmt(v) if isinstance(v, (int, float)) else v}"
                           for k, v in f["at"].items())
            th = f.get("theory") or {}
            t.add_row("width m" if var == "m" else var, at, f"{f['slope']:.3f}", ci, f"{f['r2']:.4f}", str(f["n"]),
                      _fmt(th.get("Thm 1.2"), 3), _fmt(th.get("Prop 1.1"), 3))
            rows += 1
    return t if rows else None


def _runs_table(result: Any):
    from rich.table import Table

    t = Table(title="runs", title_justify="left", header_style="bold")
    var = result.variable
    cols = ["T", "m" if var == "m" else "alpha", "seed", "R0", "kappa", "gap(T)", "Thm 1.2 bound", "status"]
    for c in cols:
        t.add_column(c, justify="left" if c == "status" else "right")
    for r in result.rows:
        xv = r.get("m") if var == "m" else r.get("alpha")
        t.add_row(_fmt(r.get("T")), _fmt(xv), "-" if r.get("seed") is None else str(r.get("seed")), _fmt(r.get("R0")),
                  _fmt(r.get("kappa")), _fmt(r.get("gap_T")), _fmt(r.get("bound_theorem_1_2")),
                  str(r.get("status")))
    return t


def _json_out(obj: Any) -> str:
    from .export import _plain

    return json.dumps(_plain(obj, finite=True), indent=1)


# =========================================================================== commands


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _run_config_from_args(args)
    if args.save_config:
        _write_config(cfg, args.save_config)
    out = _console()
    err = _console(stderr=True)
    import ntk_tui as nt

    store = None if args.no_save else _open_store(args)
    sim = cfg.simulation()
    interrupted = False
    failure: str | None = None
    t0 = time.perf_counter()
    try:
        if args.quiet or not err.is_terminal:
            while not sim.done:
                sim.advance(max_seconds=0.2)
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("times"), TimeElapsedColumn(), console=err, transient=True) as prog:
                task = prog.add_task(f"{cfg.family} alpha={cfg.alpha:g} T={cfg.T:g}", total=sim.n_total)
                while not sim.done:
                    sim.advance(max_seconds=0.1)
                    prog.update(task, completed=sim.n_done)
    except KeyboardInterrupt:
        interrupted = True
    except nt.IntegrationError as exc:
        failure = str(getattr(exc, "reason", exc))
    run = sim.result()
    if failure is not None and getattr(run, "status", "ok") == "ok":
        failure = failure or "failed"
    from .export import summary_dict

    summary = summary_dict(run)
    status = "interrupted" if interrupted else None
    if status:
        summary["status"] = status
    record_id = None
    if store is not None and len(getattr(run, "times", [])) > 0:
        record_id = store.save_run(run, name=cfg.name, config=cfg, status=status)
    if args.out:
        from .export import export_run

        export_run(run, args.out, config=cfg, name=cfg.name)
    if args.plot:
        from .plotting import plot_run

        plot_run(run, args.plot)
    if args.json:
        doc = {"id": record_id, "db": str(store.path) if store else None, "summary": summary,
               "config": cfg.to_dict(), "status": status or str(getattr(run, "status", "ok"))}
        print(_json_out(doc))
    else:
        _print_run_summary(out, summary, run, record_id, None)
        notes = []
        if record_id and store is not None:
            notes.append(f"saved as #{record_id} in {store.path}")
        if args.out:
            notes.append(f"measurements written to {args.out}")
        if args.plot:
            notes.append(f"figure written to {args.plot}")
        for n in notes:
            err.print(n)
    if interrupted:
        err.print(f"interrupted at t={_fmt(summary.get('t'))} of T={_fmt(cfg.T)}; kept what was computed")
        return EXIT_INTERRUPTED
    run_status = str(getattr(run, "status", "ok"))
    if failure or run_status != "ok":
        err.print(f"[red]run failed:[/red] {failure or run_status}")
        return EXIT_FAIL
    _ = t0
    return EXIT_OK


class _RateColumn:
    """'12.3 runs/s' for rich progress bars."""

    @staticmethod
    def make():
        from rich.progress import ProgressColumn
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task):  # type: ignore[override]
                speed = task.finished_speed or task.speed
                if not speed:
                    return Text("- runs/s")
                return Text(f"{speed:.3g} runs/s" if speed >= 0.1 else f"{60 * speed:.3g} runs/min")

        return RateColumn()


def cmd_sweep(args: argparse.Namespace) -> int:
    spec = _sweep_spec_from_args(args)
    if args.save_config:
        _write_config(spec, args.save_config)
    out = _console()
    err = _console(stderr=True)
    if args.dry_run:
        tasks = spec.tasks()
        print(spec.to_toml())
        print(f"# {len(tasks)} runs")
        return EXIT_OK
    from .sweep import run_sweep

    store = None if args.no_save else _open_store(args)
    client = cluster = None
    if args.scheduler:
        from .distributed import connect

        try:
            client, cluster = connect(args.scheduler)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    cancel = threading.Event()
    sigint = {"n": 0}

    def on_sigint(signum, frame):  # first Ctrl-C: stop cleanly; second: abort
        sigint["n"] += 1
        if sigint["n"] > 1:
            raise KeyboardInterrupt
        cancel.set()
        err.print("[yellow]stopping: finishing the store of completed runs (Ctrl-C again to abort)[/yellow]")

    old_handler = None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        if args.quiet or not err.is_terminal:
            result = run_sweep(spec, cancel=cancel, store=store, client=client)
        else:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn.make(),
                          TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err) as prog:
                where = f" on {args.scheduler}" if args.scheduler else ""
                task = prog.add_task(f"sweep {spec.family}{where}", total=len(spec))

                def progress(done: int, total: int) -> None:
                    prog.update(task, completed=done, total=total)

                result = run_sweep(spec, progress=progress, cancel=cancel, store=store, client=client)
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    interrupted = sigint["n"] > 0 or result.status == "interrupted"
    if args.out and result.rows:
        from .export import export_sweep

        export_sweep(result, args.out)
    if args.plot and result.rows:
        from .plotting import PlotError, plot_sweep

        try:
            plot_sweep(result, args.plot)
        except PlotError as exc:
            err.print(f"no figure: {exc}")
    if args.json:
        doc = {"id": result.record_id, "db": result.store_path, **result.summary_dict(),
               "config": spec.to_dict()}
        print(_json_out(doc))
    else:
        if len(result.rows) <= 40:
            out.print(_runs_table(result))
        ft = _fits_table(result.fits, result.variable)
        if ft is not None:
            out.print(ft)
        else:
            out.print("no exponent could be fitted (each fit needs two distinct values with a positive gap)")
        out.print(f"theory: Thm 1.2 gap ~ T/alpha (lazy regime, tight by Thm 1.3); Prop 1.1 bound ~ T^2/alpha; "
                  f"NTK parametrization alpha = sqrt(m): gap ~ T/sqrt(m)")
        line = (f"{result.n_done}/{result.n_total} runs ({result.n_ok} ok, {result.n_failed} failed) in "
                f"{result.elapsed_s:.1f} s, status {result.status}")
        err.print(line)
        if result.record_id:
            err.print(f"saved as #{result.record_id} in {result.store_path}")
        if args.out and result.rows:
            err.print(f"rows written to {args.out}")
        if args.plot and result.rows and Path(args.plot).exists():
            err.print(f"figure written to {args.plot}")
        if result.error:
            err.print(f"[yellow]{result.error}[/yellow]")
    if interrupted:
        return EXIT_INTERRUPTED
    if result.n_total and result.n_ok == 0:
        return EXIT_FAIL
    return EXIT_OK


def _load_result(item: str, args: argparse.Namespace):
    """A file path or a history id -> (object, default figure stem)."""
    p = Path(item).expanduser()
    if p.exists():
        from .export import load_results

        return load_results(p), p.with_suffix("")
    t = item.lstrip("#")
    if t.isdigit():
        store = _open_store(args)
        try:
            obj = store.load(int(t))
        except KeyError:
            raise UsageError(f"no record #{t} in {store.path} (see 'ntk-tui history list')") from None
        kind = "sweep" if hasattr(obj, "rows") else "run"
        return obj, Path(f"ntk-tui-{kind}-{t}")
    raise UsageError(f"{item}: no such file, and not a history id")


def cmd_plot(args: argparse.Namespace) -> int:
    from .plotting import plot_runs, plot_sweep, plot_run, require_matplotlib

    require_matplotlib()
    err = _console(stderr=True)
    loaded = [_load_result(item, args) for item in args.results]
    objs = [o for o, _ in loaded]
    outs = args.out or [str(loaded[0][1]) + (f"-compare" if len(objs) > 1 else "") + f".{args.format}"]
    if len(objs) > 1:
        if any(hasattr(o, "rows") for o in objs):
            raise UsageError("several RESULTS are compared as runs: sweeps are plotted one at a time")
        fig = plot_runs(objs)
    elif hasattr(objs[0], "rows"):
        fig = plot_sweep(objs[0], title=args.title)
    else:
        fig = plot_run(objs[0], title=args.title)
    from .plotting import save_figure

    for o in outs:
        save_figure(fig, o)
        err.print(f"figure written to {o}")
    return EXIT_OK


def cmd_history_help(args: argparse.Namespace) -> int:
    args.history_parser.print_help(sys.stderr)
    return EXIT_USAGE


def _record_line(rec: Any) -> dict:
    s = rec.summary
    d = {"id": rec.id, "kind": rec.kind, "name": rec.name, "created": rec.created, "status": rec.status,
         "family": rec.family, "parent": rec.parent_id}
    if rec.kind == "run":
        d.update({"alpha": s.get("alpha"), "T": s.get("T"), "gap_T": s.get("gap_T"), "kappa": s.get("kappa"),
                  "verdict": s.get("verdict")})
    else:
        cfg = rec.config.get("sweep", {})
        d.update({"alpha": cfg.get("alpha"), "width": cfg.get("width"), "T": cfg.get("T", cfg.get("T_scale")),
                  "seeds": cfg.get("seeds"), "n_runs": rec.n_runs, "n_total": s.get("n_total")})
    return d


def _grid_text(v: Any) -> str:
    if isinstance(v, list):
        if len(v) <= 3:
            return ",".join(_fmt(x) for x in v)
        return f"{_fmt(v[0])}..{_fmt(v[-1])} ({len(v)})"
    return _fmt(v)


def cmd_history_list(args: argparse.Namespace) -> int:
    store = _open_store(args)
    if args.sweep:
        if not store.exists(args.sweep):
            raise UsageError(f"no record #{args.sweep} in {store.path}")
        recs = store.list(parent=args.sweep)[: args.limit]
    else:
        recs = store.list(kind=args.kind, include_children=args.all, limit=args.limit)
    if args.json:
        print(_json_out([_record_line(r) for r in recs]))
        return EXIT_OK
    from rich.table import Table

    t = Table(title=f"history ({store.path})", title_justify="left", header_style="bold")
    for c in ("id", "kind", "name", "created", "family", "alpha / m", "T", "result", "status"):
        t.add_column(c, justify="right" if c == "id" else "left")
    for r in recs:
        d = _record_line(r)
        if r.kind == "run":
            xs, T = _fmt(d["alpha"]), _fmt(d["T"])
            res = f"gap(T) {_fmt(d['gap_T'])}"
        else:
            xs = _grid_text(d["alpha"]) if d.get("alpha") is not None else "m " + _grid_text(d.get("width"))
            T = _grid_text(d["T"]) if r.config.get("sweep", {}).get("T") is not None else f"{_fmt(d['T'])} alpha"
            res = f"{d['n_runs']}/{d.get('n_total') or '?'} runs"
        t.add_row(str(r.id), r.kind + (f" (in #{r.parent_id})" if r.parent_id else ""), r.name or "",
                  r.created.replace("T", " ").split("+")[0], r.family or "", xs, T, res, r.status)
    _console().print(t)
    if not recs:
        _console(stderr=True).print("the history is empty")
    return EXIT_OK


def cmd_history_show(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        rec = store.get(args.id)
    except KeyError:
        raise UsageError(f"no record #{args.id} in {store.path} (see 'ntk-tui history list')") from None
    from .config import dumps_toml

    if args.config:
        header = f"ntk-tui {rec.kind} #{rec.id} ({rec.created}); re-run: ntk-tui {rec.kind} --config FILE"
        print(dumps_toml(rec.config, header=header), end="")
        return EXIT_OK
    if args.json:
        print(_json_out({"record": _record_line(rec), "summary": rec.summary, "config": rec.config,
                         "build": rec.build}))
        return EXIT_OK
    out = _console()
    if rec.kind == "run":
        _print_run_summary(out, rec.summary, None, rec.id, None)
    else:
        from .sweep import SweepResult

        res = SweepResult.from_store(store, rec)
        out.print(f"[bold]sweep #{rec.id}[/bold] {rec.name or ''}  {rec.family}  {res.n_done}/{res.n_total} runs  "
                  f"status {rec.status}")
        if len(res.rows) <= 40:
            out.print(_runs_table(res))
        ft = _fits_table(res.fits, res.variable)
        if ft is not None:
            out.print(ft)
    out.print("[bold]config[/bold] (re-run with --config FILE after 'ntk-tui history show ID --config > FILE'):")
    out.print(dumps_toml(rec.config), markup=False, highlight=False)
    out.print("[bold]build[/bold] " + ", ".join(f"{k} {v}" for k, v in rec.build.items()), markup=True)
    return EXIT_OK


def cmd_history_delete(args: argparse.Namespace) -> int:
    store = _open_store(args)
    missing = [i for i in args.ids if not store.exists(i)]
    if missing:
        raise UsageError(f"no record {', '.join('#' + str(i) for i in missing)} in {store.path}")
    if not args.yes and sys.stdin.isatty():
        answer = input(f"delete {', '.join('#' + str(i) for i in args.ids)} from {store.path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_OK
    for i in args.ids:
        store.delete(i)
        print(f"deleted #{i}")
    return EXIT_OK


def cmd_history_export(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        rec = store.get(args.id)
    except KeyError:
        raise UsageError(f"no record #{args.id} in {store.path} (see 'ntk-tui history list')") from None
    from .export import export_run, export_sweep

    if rec.kind == "run":
        export_run(store.load_run(rec.id), args.out, config=rec.config, build=rec.build, name=rec.name)
    else:
        export_sweep(store.load(rec.id), args.out)
    _console(stderr=True).print(f"#{rec.id} written to {args.out}")
    return EXIT_OK


def _parse_set(items: Sequence[str]) -> dict:
    params = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set expects KEY=VALUE (got {item!r})")
        k, v = item.split("=", 1)
        k, v = k.strip(), v.strip()
        val: Any = v
        if v.lower() in ("true", "yes", "false", "no"):
            val = v.lower() in ("true", "yes")
        else:
            try:
                val = int(v)
            except ValueError:
                try:
                    val = float(v)
                except ValueError:
                    val = v
        params[k] = val
    return params


def cmd_tui(args: argparse.Namespace) -> int:
    if args.preset is not None:
        from .tui.presets import PRESETS

        try:
            from .tui.presets import get_preset

            args.preset = get_preset(args.preset).name
        except (ImportError, ValueError):
            if args.preset not in PRESETS:
                raise UsageError(f"unknown preset {args.preset!r}; accepted: {', '.join(PRESETS)}") from None
    if args.tui_family is not None and args.tui_family not in ("converse", "twolayer", "quadratic", "linear"):
        raise UsageError(f"--family must be one of converse, twolayer, quadratic, linear (got {args.tui_family!r})")
    params = _parse_set(args.tui_set)
    if args.db_top:
        params["db"] = str(Path(args.db_top).expanduser().resolve())
    try:
        from .tui.app import run_app
    except ImportError as exc:
        print(f"{PROG}: cannot start the terminal app: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if args.no_braille:
        params["no_braille"] = True
    run_app(preset=args.preset, family=args.tui_family, alpha=args.tui_alpha, T=args.tui_T, **params)
    return EXIT_OK


def _version_text() -> str:
    from .config import build_info

    b = build_info()
    return (f"ntk-tui {b['version']} (core {b.get('core_version') or '?'}; python {b['python']}, "
            f"numpy {b['numpy']}; {b['platform']})")


# =========================================================================== main


def _subparser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the command that was run (for its usage line)."""
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if action is None or not getattr(args, "command", None):
        return parser
    p = action.choices.get(args.command, parser)
    hc = getattr(args, "history_command", None)
    if hc:
        sub = next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is not None:
            p = sub.choices.get(hc, p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ntk-tui`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or an argparse usage error (exit 2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if args.version:
        print(_version_text())
        return EXIT_OK
    from .config import ConfigError
    from .store import StoreError

    try:
        from .export import ExportError
    except Exception:  # pragma: no cover
        ExportError = ValueError  # type: ignore[misc,assignment]
    try:
        from .plotting import PlotError
    except Exception:  # pragma: no cover
        PlotError = RuntimeError  # type: ignore[misc,assignment]
    func = getattr(args, "func", None)
    if func is None:
        func = cmd_tui
    elif args.command and any(v for v in (args.preset, args.tui_family, args.tui_alpha, args.tui_T)):
        sub = _subparser(parser, args)
        sub.print_usage(sys.stderr)
        print(f"{PROG}: error: put the options after the command: '{PROG} {args.command} --family ...'",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        return func(args)
    except (UsageError, ConfigError) as exc:
        _subparser(parser, args).print_usage(sys.stderr)
        print(f"{_subparser(parser, args).prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"{PROG}: history database error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except (ExportError, PlotError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except ValueError as exc:  # the engine refuses a parameter (message names it)
        _subparser(parser, args).print_usage(sys.stderr)
        print(f"{_subparser(parser, args).prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into head
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return EXIT_OK
    except OSError as exc:
        if exc.filename:
            print(f"{PROG}: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
            return EXIT_FAIL
        raise
    except Exception as exc:  # DaskUnavailable and other environment problems
        from .distributed import DaskUnavailable

        if isinstance(exc, DaskUnavailable):
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_FAIL
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
