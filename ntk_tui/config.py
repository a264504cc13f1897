"""Run and sweep configurations: TOML files, dataclasses, validation, build info.

A configuration describes a run (or a sweep) completely, so that a stored
result can be re-run exactly::

    [run]                      # or [sweep], see below
    name = "baseline"          # optional
    family = "twolayer"        # converse | twolayer | quadratic | linear
    alpha = 100.0
    T = 1000.0

    [model]                    # family parameters (defaults in FAMILY_PARAMS)
    m = 256
    activation = "tanh"
    seed = 0
    centered = true

    [data]                     # twolayer only
    source = "sphere"          # sphere | file
    n = 64
    d = 8
    target = "sin"
    seed = 0
    # path = "data.csv"        # with source = "file"

    [integrator]
    times = 64                 # number of log-spaced times (default_times), or a list
    rtol = 1e-7
    atol = 1e-12
    method = "dop853"
    max_steps = 1000000
    metrics = "all"            # or a list of metric names

A sweep replaces ``[run]`` by ``[sweep]`` with lists::

    [sweep]
    family = "twolayer"
    alpha = [10.0, 100.0, 1000.0]   # or: width = [64, 256, 1024]  (alpha = sqrt(m))
    seeds = [0, 1, 2]
    T = [10.0, 100.0]

    [execution]                # optional, does not change the results
    threads = 2
    chunk_size = 1

Nothing here imports the Rust engine at module import time.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .run import DEFAULT_ATOL, DEFAULT_RTOL

__all__ = [
    "ConfigError",
    "FAMILIES",
    "FAMILY_PARAMS",
    "DATA_DEFAULTS",
    "DataSpec",
    "IntegratorSpec",
    "RunConfig",
    "SweepSpec",
    "SweepTask",
    "build_info",
    "load_config",
    "loads_config",
    "dumps_toml",
    "make_model",
    "model_from_params",
]

FAMILIES = ("converse", "twolayer", "quadratic", "linear")

# Accepted model parameters per family and their defaults (see docs/api.md).
# For "converse" the model's own T defaults to the run's T (Theorem 1.3 builds
# the model for the horizon T: a = 1/sqrt(T)).
FAMILY_PARAMS: dict[str, dict[str, Any]] = {
    "converse": {"T": None, "R0": 1.0, "lip_dh": 1.0, "sign": 1},
    "twolayer": {"m": 256, "activation": "tanh", "seed": 0, "centered": True},
    "quadratic": {"p": 32, "n": 64, "lip_dh": 1.0, "seed": 0},
    "linear": {"p": 32, "n": 64, "seed": 0},
}

DATA_DEFAULTS: dict[str, Any] = {"source": "sphere", "n": 64, "d": 8, "target": "sin", "seed": 0}

INTEGRATOR_DEFAULTS: dict[str, Any] = {
    "times": 64,
    "rtol": DEFAULT_RTOL,
    "atol": DEFAULT_ATOL,
    "method": "dop853",
    "max_steps": 1_000_000,
    "metrics": None,
}

SMOOTH_ACTIVATIONS = ("tanh", "sigmoid", "erf", "softplus")


class ConfigError(ValueError):
    """A configuration (file or options) is invalid; the message says why."""


# --------------------------------------------------------------------------- helpers


def _num(value: Any, name: str, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number (got {value!r})") from None
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number (got {value!r})")
    if positive and not value > 0:
        raise ConfigError(f"{name} must be a positive number (got {value:g})")
    if nonneg and value < 0:
        raise ConfigError(f"{name} must be >= 0 (got {value:g})")
    return value


def _int(value: Any, name: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer (got {value!r})")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        try:
            value = int(str(value))
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be an integer (got {value!r})") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum} (got {value})")
    return value


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
        return False
    raise ConfigError(f"{name} must be true or false (got {value!r})")


def _check_keys(table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = list(allowed)
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in {where}; "
            f"accepted: {', '.join(allowed)}"
        )


def _family(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in FAMILIES:
        raise ConfigError(f"family must be one of {', '.join(FAMILIES)} (got {value!r})")
    return value.lower()


def _validate_model(family: str, model: Mapping[str, Any], where: str = "[model]") -> dict[str, Any]:
    """Fill defaults and validate the family parameters."""
    spec = FAMILY_PARAMS[family]
    _check_keys(model, spec, f"{where} for family {family!r}")
    out = dict(spec)
    out.update(model)
    if family == "converse":
        if out["T"] is not None:
            out["T"] = _num(out["T"], "model T", positive=True)
        out["R0"] = _num(out["R0"], "R0", positive=True)
        out["lip_dh"] = _num(out["lip_dh"], "lip_dh", nonneg=True)
        sign = _int(out["sign"], "sign")
        if sign not in (1, -1):
            raise ConfigError(f"sign must be 1 or -1 (got {sign})")
        out["sign"] = sign
    elif family == "twolayer":
        out["m"] = _int(out["m"], "m (width)", minimum=1)
        act = out["activation"]
        if not isinstance(act, str):
            raise ConfigError(f"activation must be a string (got {act!r})")
        if act.lower() == "relu":
            raise ConfigError(
                "activation 'relu' is not allowed: its derivative is not Lipschitz, so Lip(Dh) is "
                f"infinite and the theory says nothing; use one of {', '.join(SMOOTH_ACTIVATIONS)}"
            )
        if act.lower() not in SMOOTH_ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(SMOOTH_ACTIVATIONS)} (got {act!r})")
        out["activation"] = act.lower()
        out["seed"] = _int(out["seed"], "seed", minimum=0)
        out["centered"] = _bool(out["centered"], "centered")
    else:
        out["p"] = _int(out["p"], "p (parameters)", minimum=1)
        out["n"] = _int(out["n"], "n (outputs)", minimum=1)
        out["seed"] = _int(out["seed"], "seed", minimum=0)
        if family == "quadratic":
            out["lip_dh"] = _num(out["lip_dh"], "lip_dh", nonneg=True)
    return out


# --------------------------------------------------------------------------- data


@dataclass
class DataSpec:
    """The training set of the two-layer family.

    ``source`` is ``"sphere"`` (synthetic, ``datasets.sphere(n, d, target, seed)``),
    ``"file"`` (``datasets.load(path)``) or ``"inline"`` (X and y given as lists,
    e.g. recovered from a stored run's parameters).
    """

    source: str = "sphere"
    n: int = 64
    d: int = 8
    target: str = "sin"
    seed: int = 0
    path: str | None = None
    X: list | None = None
    y: list | None = None

    KEYS = ("source", "n", "d", "target", "seed", "path", "X", "y")

    @classmethod
    def from_dict(cls, table: Mapping[str, Any] | None) -> "DataSpec":
        table = dict(table or {})
        _check_keys(table, cls.KEYS, "[data]")
        source = str(table.get("source", "file" if "path" in table else "sphere")).lower()
        if source not in ("sphere", "file", "inline"):
            raise ConfigError(f"data source must be 'sphere', 'file' or 'inline' (got {source!r})")
        spec = cls(source=source)
        if source == "sphere":
            spec.n = _int(table.get("n", DATA_DEFAULTS["n"]), "data n (points)", minimum=1)
            spec.d = _int(table.get("d", DATA_DEFAULTS["d"]), "data d (dimension)", minimum=1)
            spec.target = str(table.get("target", DATA_DEFAULTS["target"]))
            spec.seed = _int(table.get("seed", DATA_DEFAULTS["seed"]), "data seed", minimum=0)
        elif source == "file":
            path = table.get("path")
            if not path:
                raise ConfigError("data source 'file' needs a path")
            spec.path = str(path)
        else:
            if table.get("X") is None or table.get("y") is None:
                raise ConfigError("data source 'inline' needs X and y")
            spec.X = table["X"]
            spec.y = table["y"]
        return spec

    def to_dict(self) -> dict[str, Any]:
        if self.source == "sphere":
            return {"source": "sphere", "n": self.n, "d": self.d, "target": self.target, "seed": self.seed}
        if self.source == "file":
            return {"source": "file", "path": self.path}
        return {"source": "inline", "X": self.X, "y": self.y}

    def load(self):
        """Return ``(X, y)`` as numpy arrays."""
        import numpy as np

        if self.source == "inline":
            return np.asarray(self.X, dtype=float), np.asarray(self.y, dtype=float)
        from . import datasets

        if self.source == "file":
            path = Path(self.path).expanduser()
            if not path.exists():
                raise ConfigError(f"data file not found: {path}")
            X, y = datasets.load(str(path))
        else:
            X, y = datasets.sphere(self.n, self.d, target=self.target, seed=self.seed)
        return np.asarray(X, dtype=float), np.asarray(y, dtype=float)


# --------------------------------------------------------------------------- integrator


@dataclass
class IntegratorSpec:
    """How the flows are integrated and sampled."""

    times: int | list[float] = 64
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    method: str = "dop853"
    max_steps: int = 1_000_000
    metrics: tuple[str, ...] | None = None  # None = all

    KEYS = ("times", "rtol", "atol", "method", "max_steps", "metrics")

    @classmethod
    def from_dict(cls, table: Mapping[str, Any] | None) -> "IntegratorSpec":
        table = dict(table or {})
        _check_keys(table, cls.KEYS, "[integrator]")
        spec = cls()
        times = table.get("times", INTEGRATOR_DEFAULTS["times"])
        if isinstance(times, (list, tuple)):
            if not times:
                raise ConfigError("times must not be empty")
            vals = [_num(t, "times", positive=True) for t in times]
            if any(b <= a for a, b in zip(vals, vals[1:])):
                raise ConfigError("times must be strictly increasing")
            spec.times = vals
        else:
            spec.times = _int(times, "times (number of sample times)", minimum=1)
        spec.rtol = _num(table.get("rtol", INTEGRATOR_DEFAULTS["rtol"]), "rtol", positive=True)
        spec.atol = _num(table.get("atol", INTEGRATOR_DEFAULTS["atol"]), "atol", positive=True)
        spec.method = str(table.get("method", INTEGRATOR_DEFAULTS["method"])).lower()
        spec.max_steps = _int(table.get("max_steps", INTEGRATOR_DEFAULTS["max_steps"]), "max_steps", minimum=1)
        metrics = table.get("metrics", None)
        if metrics is None or metrics == "all":
            spec.metrics = None
        else:
            if isinstance(metrics, str):
                metrics = [m.strip() for m in metrics.split(",") if m.strip()]
            if not isinstance(metrics, (list, tuple)) or not all(isinstance(m, str) for m in metrics):
                raise ConfigError(f"metrics must be 'all' or a list of metric names (got {metrics!r})")
            spec.metrics = tuple(metrics)
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {
            "times": list(self.times) if isinstance(self.times, (list, tuple)) else self.times,
            "rtol": self.rtol,
            "atol": self.atol,
            "method": self.method,
            "max_steps": self.max_steps,
            "metrics": "all" if self.metrics is None else list(self.metrics),
        }

    def times_for(self, T: float):
        """The sample times for horizon ``T`` (``None`` lets the engine use default_times(T))."""
        import numpy as np

        if isinstance(self.times, (list, tuple)):
            return np.asarray(self.times, dtype=float)
        if self.times == 64:
            return None
        from . import default_times  # type: ignore[attr-defined]

        try:
            return np.asarray(default_times(T, self.times), dtype=float)
        except TypeError:
            # default_times(T) only: reproduce its documented grid (log-spaced in [1e-5 T, T]).
            return np.logspace(math.log10(1e-5 * T), math.log10(T), self.times) if self.times > 1 else np.asarray([T])

    def kwargs(self, T: float) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "times": self.times_for(T),
            "rtol": self.rtol,
            "atol": self.atol,
            "method": self.method,
            "max_steps": self.max_steps,
        }
        if self.metrics is not None:
            kw["metrics"] = list(self.metrics)
        return kw


# --------------------------------------------------------------------------- models


def model_from_params(family: str, params: Mapping[str, Any]):
    """Construct an engine model from a family name and its ``params`` dict
    (as found in ``run.params`` / ``model.params``)."""
    import numpy as np

    import ntk_tui as nt

    family = _family(family)
    kw = dict(params)
    for key in ("X", "y", "w0"):
        if key in kw and kw[key] is not None:
            kw[key] = np.asarray(kw[key], dtype=float)
    cls = {"converse": nt.Converse, "twolayer": nt.TwoLayer, "quadratic": nt.Quadratic, "linear": nt.Linear}[family]
    return cls(**kw)


def make_model(family: str, model: Mapping[str, Any], data: "DataSpec | None" = None, T: float | None = None,
               _data_cache: dict | None = None):
    """Build an engine model from validated config tables."""
    family = _family(family)
    params = _validate_model(family, model)
    if family == "converse":
        if params["T"] is None:
            if T is None:
                raise ConfigError("the converse model needs its horizon T")
            params["T"] = T
        return model_from_params(family, params)
    if family == "twolayer":
        data = data or DataSpec()
        key = json.dumps(data.to_dict(), sort_keys=True, default=str)
        if _data_cache is not None and key in _data_cache:
            X, y = _data_cache[key]
        else:
            X, y = data.load()
            if _data_cache is not None:
                _data_cache[key] = (X, y)
        return model_from_params(family, dict(X=X, y=y, **params))
    return model_from_params(family, params)


# --------------------------------------------------------------------------- run config


@dataclass
class RunConfig:
    """Everything needed to reproduce one run."""

    family: str
    alpha: float
    T: float
    model: dict[str, Any] = field(default_factory=dict)
    data: DataSpec | None = None
    integrator: IntegratorSpec = field(default_factory=IntegratorSpec)
    name: str | None = None

    RUN_KEYS = ("name", "family", "alpha", "T")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "RunConfig":
        self.family = _family(self.family)
        self.alpha = _num(self.alpha, "alpha", positive=True)
        self.T = _num(self.T, "T", positive=True)
        self.model = _validate_model(self.family, self.model)
        if self.family == "twolayer":
            if self.data is None:
                self.data = DataSpec()
            elif isinstance(self.data, Mapping):
                self.data = DataSpec.from_dict(self.data)
        elif self.data is not None:
            raise ConfigError(f"[data] only applies to the twolayer family (not {self.family!r})")
        if isinstance(self.integrator, Mapping):
            self.integrator = IntegratorSpec.from_dict(self.integrator)
        if isinstance(self.integrator.times, list) and self.integrator.times[-1] > self.T * (1 + 1e-12):
            raise ConfigError(f"times must not exceed T={self.T:g} (last is {self.integrator.times[-1]:g})")
        return self

    # --- conversions
    def to_dict(self) -> dict[str, Any]:
        """Nested plain-data form (the layout of the TOML file)."""
        run = {"family": self.family, "alpha": self.alpha, "T": self.T}
        if self.name:
            run["name"] = self.name
        d: dict[str, Any] = {"kind": "run", "run": run, "model": {k: v for k, v in self.model.items() if v is not None}}
        if self.data is not None:
            d["data"] = self.data.to_dict()
        d["integrator"] = self.integrator.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        d = dict(d)
        d.pop("kind", None)
        d.pop("build", None)
        _check_keys(d, ("run", "model", "data", "integrator"), "a run config (top-level tables)")
        run = dict(d.get("run") or {})
        _check_keys(run, cls.RUN_KEYS, "[run]")
        for req in ("family", "alpha", "T"):
            if req not in run:
                raise ConfigError(f"[run] needs {req}")
        return cls(
            family=run["family"],
            alpha=run["alpha"],
            T=run["T"],
            model=dict(d.get("model") or {}),
            data=DataSpec.from_dict(d["data"]) if d.get("data") is not None else None,
            integrator=IntegratorSpec.from_dict(d.get("integrator")),
            name=run.get("name"),
        )

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict(), header="ntk-tui run configuration")

    @classmethod
    def from_run(cls, run: Any, name: str | None = None) -> "RunConfig":
        """Derive the configuration that re-creates ``run`` exactly from its own
        record: model parameters (``run.params``), alpha, T, its sample times,
        tolerances, method and metrics."""
        import numpy as np

        family = run.family
        params = dict(getattr(run, "params", {}) or {})
        data = None
        model: dict[str, Any] = {}
        for k, v in params.items():
            if family == "twolayer" and k in ("X", "y"):
                continue
            if k == "w0" and v is None:
                continue
            if k not in FAMILY_PARAMS.get(family, {}):
                continue  # e.g. w0 overrides cannot be described by a config
            model[k] = v.tolist() if isinstance(v, np.ndarray) else v
        if family == "twolayer":
            if "X" not in params or "y" not in params:
                raise ConfigError(
                    "a two-layer run does not carry its data set, so its configuration cannot be derived "
                    "from the run alone; pass the RunConfig it was made with (config=...)")
            data = DataSpec(source="inline", X=np.asarray(params["X"]).tolist(), y=np.asarray(params["y"]).tolist())
        stats = dict(getattr(run, "stats", {}) or {})
        metrics = getattr(run, "metrics", None)
        integ = IntegratorSpec(
            times=[float(t) for t in np.asarray(run.times, dtype=float)],
            rtol=float(stats.get("rtol", INTEGRATOR_DEFAULTS["rtol"])),
            atol=float(stats.get("atol", INTEGRATOR_DEFAULTS["atol"])),
            method=str(stats.get("method", INTEGRATOR_DEFAULTS["method"])),
            max_steps=int(stats.get("max_steps", INTEGRATOR_DEFAULTS["max_steps"])),
            metrics=_metrics_tuple(metrics),
        )
        return cls(family=family, alpha=float(run.alpha), T=float(run.T), model=model, data=data,
                   integrator=integ, name=name)

    # --- execution
    def build_model(self, _data_cache: dict | None = None):
        return make_model(self.family, self.model, self.data, self.T, _data_cache=_data_cache)

    def simulation_kwargs(self) -> dict[str, Any]:
        return self.integrator.kwargs(self.T)

    def simulate(self):
        import ntk_tui as nt

        return nt.simulate(self.build_model(), self.alpha, self.T, **self.simulation_kwargs())

    def simulation(self):
        import ntk_tui as nt

        return nt.Simulation(self.build_model(), self.alpha, self.T, **self.simulation_kwargs())


def _metrics_tuple(metrics: Any) -> tuple[str, ...] | None:
    if metrics is None:
        return None
    metrics = tuple(str(m) for m in metrics)
    try:
        import ntk_tui as nt

        all_metrics = tuple(getattr(nt, "METRICS", ()))
    except Exception:  # pragma: no cover
        all_metrics = ()
    if all_metrics and set(all_metrics) <= set(metrics):
        return None
    return metrics


# --------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class SweepTask:
    """One run of a sweep."""

    index: int
    T: float
    alpha: float
    seed: int | None = None
    m: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _float_list(value: Any, name: str, *, positive: bool = True) -> list[float]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        value = [value]
    if not value:
        raise ConfigError(f"{name} must not be empty")
    return [_num(v, name, positive=positive) for v in value]


def _int_list(value: Any, name: str, minimum: int = 0) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        value = [value]
    if not value:
        raise ConfigError(f"{name} must not be empty")
    return [_int(v, name, minimum=minimum) for v in value]


@dataclass
class SweepSpec:
    """A grid of runs: every T x seed x (alpha or width).

    With ``widths`` the two-layer network is trained in the NTK parametrization:
    ``alpha = sqrt(m)`` for each width m (THEORY.md, end of section 3), and the
    batch is run ``paired`` (model i with alpha i).
    """

    family: str
    alphas: list[float] | None = None
    widths: list[int] | None = None
    seeds: list[int] | None = None
    Ts: list[float] = field(default_factory=lambda: [10.0])
    model: dict[str, Any] = field(default_factory=dict)
    data: DataSpec | None = None
    integrator: IntegratorSpec = field(default_factory=IntegratorSpec)
    name: str | None = None
    threads: int | None = None
    chunk_size: int | None = None
    T_scale: float | None = None

    SWEEP_KEYS = ("name", "family", "alpha", "width", "seeds", "T", "T_scale")
    EXEC_KEYS = ("threads", "chunk_size", "scheduler")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "SweepSpec":
        self.family = _family(self.family)
        if self.alphas is not None and len(self.alphas) == 0:
            self.alphas = None
        if self.widths is not None and len(self.widths) == 0:
            self.widths = None
        if self.alphas is not None and self.widths is not None:
            raise ConfigError("give either alpha values or widths (NTK parametrization: alpha = sqrt(m)), not both")
        if self.alphas is None and self.widths is None:
            raise ConfigError("a sweep needs alpha values or widths")
        if self.alphas is not None:
            self.alphas = _float_list(self.alphas, "alpha")
        if self.widths is not None:
            if self.family != "twolayer":
                raise ConfigError("width sweeps (NTK parametrization) only apply to the twolayer family")
            self.widths = _int_list(self.widths, "width m", minimum=1)
            if "m" in self.model:
                raise ConfigError("give the width either as the swept widths or as model m, not both")
        if self.T_scale is not None:
            # the edge of the lazy regime: T = C alpha for every run (THEORY.md section 5)
            self.T_scale = _num(self.T_scale, "T_scale (C in T = C alpha)", positive=True)
            self.Ts = []
        else:
            self.Ts = _float_list(self.Ts, "T")
        if self.seeds is not None:
            self.seeds = _int_list(self.seeds, "seeds", minimum=0)
        if self.family == "converse":
            if self.seeds is not None and len(self.seeds) > 1:
                raise ConfigError("the converse model is deterministic: seeds do not apply to it")
            self.seeds = None
            if "T" in self.model and self.model["T"] is not None and (len(self.Ts) > 1 or self.T_scale is not None):
                raise ConfigError("for a sweep over T leave the converse model's own T unset")
        elif self.seeds is None:
            self.seeds = [int(self.model.get("seed", FAMILY_PARAMS[self.family]["seed"]))]
        if self.seeds is not None and "seed" in self.model and self.model["seed"] not in self.seeds:
            raise ConfigError("give the seed either as the swept seeds or as model seed, not both")
        model = dict(self.model)
        model.pop("seed", None)
        if self.widths is not None:
            model.pop("m", None)
        self.model = {k: v for k, v in _validate_model(self.family, model).items() if k in model}
        if self.family == "twolayer":
            if self.data is None:
                self.data = DataSpec()
            elif isinstance(self.data, Mapping):
                self.data = DataSpec.from_dict(self.data)
        elif self.data is not None:
            raise ConfigError(f"[data] only applies to the twolayer family (not {self.family!r})")
        if isinstance(self.integrator, Mapping):
            self.integrator = IntegratorSpec.from_dict(self.integrator)
        if isinstance(self.integrator.times, list):
            smallest = min(t.T for t in self.tasks()) if len(self) else math.inf
            if self.integrator.times[-1] > smallest * (1 + 1e-12):
                raise ConfigError("explicit times must not exceed the smallest T of the sweep")
        if self.threads is not None:
            self.threads = _int(self.threads, "threads", minimum=1)
        if self.chunk_size is not None:
            self.chunk_size = _int(self.chunk_size, "chunk_size", minimum=1)
        return self

    # --- grid
    @property
    def variable(self) -> str:
        """``"alpha"`` or ``"m"`` (width sweep)."""
        return "m" if self.widths is not None else "alpha"

    @property
    def paired(self) -> bool:
        return True

    def tasks(self) -> list[SweepTask]:
        tasks: list[SweepTask] = []
        seeds = self.seeds if self.seeds is not None else [None]
        if self.T_scale is not None:
            for seed in seeds:
                if self.widths is not None:
                    for m in self.widths:
                        tasks.append(SweepTask(len(tasks), self.T_scale * math.sqrt(m), math.sqrt(m), seed, m))
                else:
                    for a in self.alphas or []:
                        tasks.append(SweepTask(len(tasks), self.T_scale * a, a, seed, None))
            return tasks
        for T in self.Ts:
            for seed in seeds:
                if self.widths is not None:
                    for m in self.widths:
                        tasks.append(SweepTask(len(tasks), T, math.sqrt(m), seed, m))
                else:
                    for a in self.alphas or []:
                        tasks.append(SweepTask(len(tasks), T, a, seed, None))
        return tasks

    def __len__(self) -> int:
        n = (1 if self.T_scale is not None else len(self.Ts)) * (len(self.seeds) if self.seeds is not None else 1)
        return n * len(self.widths if self.widths is not None else self.alphas or [])

    def model_params(self, task: SweepTask) -> dict[str, Any]:
        model = dict(self.model)
        if task.seed is not None:
            model["seed"] = task.seed
        if task.m is not None:
            model["m"] = task.m
        return model

    def run_config(self, task: SweepTask) -> RunConfig:
        """The configuration of one run of the sweep (stored with that run)."""
        return RunConfig(
            family=self.family,
            alpha=task.alpha,
            T=task.T,
            model=self.model_params(task),
            data=copy.deepcopy(self.data),
            integrator=copy.deepcopy(self.integrator),
            name=None,
        )

    # --- conversions
    def to_dict(self) -> dict[str, Any]:
        sweep: dict[str, Any] = {"family": self.family}
        if self.name:
            sweep["name"] = self.name
        if self.widths is not None:
            sweep["width"] = list(self.widths)
        else:
            sweep["alpha"] = list(self.alphas or [])
        if self.seeds is not None:
            sweep["seeds"] = list(self.seeds)
        if self.T_scale is not None:
            sweep["T_scale"] = self.T_scale
        else:
            sweep["T"] = list(self.Ts)
        d: dict[str, Any] = {"kind": "sweep", "sweep": sweep, "model": dict(self.model)}
        if self.data is not None:
            d["data"] = self.data.to_dict()
        d["integrator"] = self.integrator.to_dict()
        execution = {k: v for k, v in (("threads", self.threads), ("chunk_size", self.chunk_size)) if v is not None}
        if execution:
            d["execution"] = execution
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SweepSpec":
        d = dict(d)
        d.pop("kind", None)
        d.pop("build", None)
        _check_keys(d, ("sweep", "model", "data", "integrator", "execution"), "a sweep config (top-level tables)")
        sw = dict(d.get("sweep") or {})
        _check_keys(sw, cls.SWEEP_KEYS, "[sweep]")
        if "family" not in sw:
            raise ConfigError("[sweep] needs family")
        if "T" in sw and "T_scale" in sw:
            raise ConfigError("[sweep] gives both T and T_scale (T = T_scale * alpha); keep one")
        ex = dict(d.get("execution") or {})
        _check_keys(ex, cls.EXEC_KEYS, "[execution]")
        return cls(
            family=sw["family"],
            alphas=sw.get("alpha"),
            widths=sw.get("width"),
            seeds=sw.get("seeds"),
            Ts=sw.get("T", [10.0]),
            T_scale=sw.get("T_scale"),
            model=dict(d.get("model") or {}),
            data=DataSpec.from_dict(d["data"]) if d.get("data") is not None else None,
            integrator=IntegratorSpec.from_dict(d.get("integrator")),
            name=sw.get("name"),
            threads=ex.get("threads"),
            chunk_size=ex.get("chunk_size"),
        )

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict(), header="ntk-tui sweep configuration")


# --------------------------------------------------------------------------- files


def loads_config(text: str, source: str = "<string>") -> RunConfig | SweepSpec:
    """Parse a TOML configuration (a ``[run]`` or a ``[sweep]`` table)."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return config_from_dict(d, source)


def config_from_dict(d: Mapping[str, Any], source: str = "config") -> RunConfig | SweepSpec:
    d = dict(d)
    kind = d.get("kind")
    if kind is None:
        if "run" in d and "sweep" in d:
            raise ConfigError(f"{source}: has both [run] and [sweep]; a file describes one of them")
        kind = "sweep" if "sweep" in d else "run" if "run" in d else None
    if kind not in ("run", "sweep"):
        raise ConfigError(f"{source}: needs a [run] or a [sweep] table")
    try:
        return RunConfig.from_dict(d) if kind == "run" else SweepSpec.from_dict(d)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | os.PathLike) -> RunConfig | SweepSpec:
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    cfg = loads_config(text, str(path))
    if isinstance(cfg.data, DataSpec) and cfg.data.source == "file" and cfg.data.path:
        p = Path(cfg.data.path).expanduser()
        if not p.is_absolute():  # relative to the config file
            cfg.data.path = str((path.parent / p).resolve())
    return cfg


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if any(c in r for c in ".en") else r + ".0"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if hasattr(v, "tolist"):
        return _toml_value(v.tolist())
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def dumps_toml(d: Mapping[str, Any], header: str | None = None) -> str:
    """Write a nested dict of plain data as TOML (tables one level deep)."""
    lines: list[str] = []
    if header:
        lines += [f"# {line}" for line in header.splitlines()]
    scalars = {k: v for k, v in d.items() if not isinstance(v, Mapping) and v is not None}
    for k, v in scalars.items():
        lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in d.items():
        if isinstance(v, Mapping):
            if lines:
                lines.append("")
            lines.append(f"[{_toml_key(k)}]")
            for kk, vv in v.items():
                if vv is None:
                    continue
                lines.append(f"{_toml_key(kk)} = {_toml_value(vv)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- build info


def build_info() -> dict[str, Any]:
    """Versions of everything that determines a result (no git involved)."""
    import numpy as np

    version = "unknown"
    try:
        from importlib.metadata import PackageNotFoundError, version as _v

        try:
            version = _v("ntk-tui")
        except PackageNotFoundError:
            pass
    except Exception:  # pragma: no cover
        pass
    core_version = None
    try:
        import ntk_tui

        version = getattr(ntk_tui, "__version__", None) or version
        from ntk_tui import _core  # type: ignore[attr-defined]

        core_version = getattr(_core, "__version__", None)
    except Exception:
        core_version = None
    return {
        "package": "ntk-tui",
        "version": version,
        "core_version": core_version,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
