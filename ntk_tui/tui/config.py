"""The parameters the user types: field specs, parsing with readable errors, and
turning a validated form into engine calls.

Nothing here computes science: models are built by the engine's constructors
(``ntk_tui.Converse`` ...) from the values typed, and data sets come from
:mod:`ntk_tui.datasets`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = [
    "FAMILIES",
    "FAMILY_LABELS",
    "ACTIVATIONS",
    "METHODS",
    "FIELDS",
    "SWEEP_FIELDS",
    "FieldSpec",
    "FormError",
    "RunConfig",
    "SweepConfig",
    "field_error",
    "format_value",
    "parse_field",
    "fields_for",
    "validate_form",
    "validate_sweep",
    "defaults",
    "sweep_defaults",
    "data_targets",
]

FAMILIES: tuple[str, ...] = ("converse", "twolayer", "quadratic", "linear")
FAMILY_LABELS: dict[str, str] = {
    "converse": "Converse",
    "twolayer": "TwoLayer",
    "quadratic": "Quadratic",
    "linear": "Linear",
}
#: Smooth activations accepted by the two-layer family (ReLU is offered only
#: to explain why it is refused: Lip(Dh) is infinite for it).
ACTIVATIONS: tuple[str, ...] = ("tanh", "sigmoid", "erf", "softplus", "relu")
METHODS: tuple[str, ...] = ("dop853", "dopri5", "rodas4")


def _integrator_defaults() -> dict[str, Any]:
    """The engine's defaults, shared with the command line (``ntk_tui.config``)."""
    out = {"rtol": 1e-7, "atol": 1e-12, "method": "dop853", "times": 64}
    try:
        from ntk_tui.config import INTEGRATOR_DEFAULTS

        out.update({k: v for k, v in INTEGRATOR_DEFAULTS.items() if k in out and v is not None})
    except Exception:  # pragma: no cover - the package config is part of the package
        pass
    return out


_INTEG = _integrator_defaults()


def data_targets() -> tuple[str, ...]:
    """Built-in targets of :func:`ntk_tui.datasets.sphere` (plus ``file``)."""
    try:
        from ntk_tui.datasets import TARGETS
    except Exception:  # pragma: no cover - datasets is part of the package
        TARGETS = ("sin", "linear", "teacher", "sign")
    return tuple(TARGETS) + ("file",)


class FormError(ValueError):
    """A form that cannot be run; ``errors`` maps field key -> message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(self.errors.values()))


# --------------------------------------------------------------------------
# field specs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    kind: str  # "float" | "int" | "choice" | "bool" | "path"
    default: Any
    families: tuple[str, ...] | None = None  # None: every family
    lo: float | None = None
    lo_open: bool = False  # lo excluded
    hi: float | None = None
    hi_open: bool = False
    choices: Callable[[], Sequence[Any]] | None = None
    help: str = ""
    group: str = "model"  # "model" | "integrator"

    def applies_to(self, family: str) -> bool:
        return self.families is None or family in self.families


def _choices(values: Sequence[Any]) -> Callable[[], Sequence[Any]]:
    return lambda: tuple(values)


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("family", "family", "choice", "converse", choices=_choices(FAMILIES),
              help="model family: Converse (Theorem 1.3), TwoLayer (mean-field net), Quadratic, Linear"),
    FieldSpec("alpha", "alpha", "float", 100.0, lo=0.0, lo_open=True,
              help="lazy-training scale: the model is alpha h(w)"),
    FieldSpec("T", "T", "float", 100.0, lo=0.0, lo_open=True, help="training horizon (gradient-flow time)"),
    # Converse (Theorem 1.3's model)
    FieldSpec("R0", "R0", "float", 1.0, families=("converse",), lo=0.0, lo_open=True,
              help="initial loss R(alpha h(w0))"),
    FieldSpec("lip_dh", "Lip(Dh)", "float", 1.0, families=("converse", "quadratic"), lo=0.0,
              help="Lipschitz constant of the Jacobian w -> Dh(w)"),
    FieldSpec("sign", "sign", "choice", 1, families=("converse",), choices=_choices((1, -1)),
              help="sign of the curvature b = sign Lip(Dh)"),
    # TwoLayer
    # upper bounds: the engine's own limits on one run (products such as m (d + 1) are checked at Run)
    FieldSpec("m", "m", "int", 256, families=("twolayer",), lo=1, hi=50_000_000, help="width (hidden units)"),
    FieldSpec("n", "n", "int", 64, families=("twolayer", "quadratic", "linear"), lo=1, hi=20_000,
              help="number of outputs (data points)"),
    FieldSpec("d", "d", "int", 8, families=("twolayer",), lo=1, hi=100_000, help="input dimension"),
    FieldSpec("p", "p", "int", 32, families=("quadratic", "linear"), lo=1, hi=50_000_000, help="number of parameters"),
    FieldSpec("activation", "sigma", "choice", "tanh", families=("twolayer",), choices=_choices(ACTIVATIONS),
              help="activation (smooth ones only: Lemma 2.1 needs bounded sigma', sigma'', sigma''')"),
    FieldSpec("data", "data", "choice", "sin", families=("twolayer",), choices=data_targets,
              help="built-in data on the unit sphere (target function) or a .npy/.csv file"),
    FieldSpec("path", "file", "path", "", families=("twolayer",),
              help=".npy/.npz/.csv file, last column = y (used when data = file)"),
    FieldSpec("seed", "seed", "int", 0, families=("twolayer", "quadratic", "linear"), lo=0, hi=2**53,
              help="random seed (data and initialisation)"),
    FieldSpec("centered", "centred", "bool", True, families=("twolayer",),
              help="use h(w) - h(w0), so R0 does not grow with alpha"),
    # integrator
    FieldSpec("method", "method", "choice", _INTEG["method"], choices=lambda: METHODS, group="integrator",
              help="ODE integrator: dop853 (Dormand-Prince 8(5,3)), dopri5 (5(4)) or rodas4 (stiff, p <= 200)"),
    FieldSpec("rtol", "rtol", "float", _INTEG["rtol"], lo=0.0, lo_open=True, hi=1.0, hi_open=True, group="integrator",
              help="relative tolerance"),
    FieldSpec("atol", "atol", "float", _INTEG["atol"], lo=0.0, lo_open=True, group="integrator",
              help="absolute tolerance, relative to 2 R0"),
    FieldSpec("points", "points", "int", int(_INTEG["times"]) if isinstance(_INTEG["times"], int) else 64, lo=2, hi=4096, group="integrator",
              help="number of log-spaced sample times in [1e-5 T, T]"),
)
FIELD_BY_KEY: dict[str, FieldSpec] = {f.key: f for f in FIELDS}

SWEEP_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("variable", "sweep", "choice", "alpha", choices=_choices(("alpha", "width")),
              help="sweep alpha, or the width m with alpha = sqrt(m) (NTK parametrization)"),
    FieldSpec("start", "from", "float", 10.0, lo=0.0, lo_open=True, help="first value (alpha or m)"),
    FieldSpec("stop", "to", "float", 1000.0, lo=0.0, lo_open=True, help="last value (alpha or m)"),
    FieldSpec("count", "values", "int", 7, lo=1, hi=200, help="number of log-spaced values"),
    FieldSpec("seeds", "seeds", "int", 1, lo=1, hi=100, help="number of seeds per value (seed, seed+1, ...)"),
    FieldSpec("t_mode", "T is", "choice", "fixed", choices=_choices(("fixed", "scaled")),
              help="fixed: the form's T; scaled: T = C alpha (the edge of the lazy regime)"),
    FieldSpec("C", "C", "float", 5.0, lo=0.0, lo_open=True, help="T = C alpha when T is scaled"),
)
SWEEP_FIELD_BY_KEY: dict[str, FieldSpec] = {f.key: f for f in SWEEP_FIELDS}


def fields_for(family: str) -> list[FieldSpec]:
    return [f for f in FIELDS if f.applies_to(family)]


def defaults() -> dict[str, Any]:
    return {f.key: f.default for f in FIELDS}


def sweep_defaults() -> dict[str, Any]:
    return {f.key: f.default for f in SWEEP_FIELDS}


# --------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------


def _range_text(spec: FieldSpec, integer: bool) -> str:
    noun = "a whole number" if integer else "a number"
    lo, hi = spec.lo, spec.hi
    if lo is not None and hi is None:
        if lo == 0 and spec.lo_open:
            return f"a positive {'whole ' if integer else ''}number"
        if lo == 0:
            return f"a non-negative {'whole ' if integer else ''}number"
        return f"{noun} {'>' if spec.lo_open else '>='} {_num(lo)}"
    if lo is not None and hi is not None:
        left = "(" if spec.lo_open else "["
        right = ")" if spec.hi_open else "]"
        num = (lambda v: str(int(v))) if integer else _num  # whole-number limits in full
        return f"{noun} in {left}{num(lo)}, {num(hi)}{right}"
    return noun


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e6 else f"{x:g}"


def format_value(value: Any) -> str:
    """How a value is shown in an input box."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e7:
            return str(int(value))
        text = f"{value:g}"
        if "e" in text:  # 1e-08 -> 1e-8
            mant, exp = text.split("e")
            text = f"{mant}e{int(exp)}"
        return text
    return str(value)


def parse_field(spec: FieldSpec, raw: Any) -> Any:
    """Parse ``raw`` (text typed, or a Python value) for ``spec``.

    Raises ``ValueError`` with a message in the user's words, e.g.
    ``"alpha must be a positive number (got -3)"``.
    """
    name = spec.label
    text = raw.strip() if isinstance(raw, str) else raw
    if spec.kind in ("float", "int"):
        integer = spec.kind == "int"
        want = _range_text(spec, integer)
        if isinstance(text, str):
            if text == "":
                raise ValueError(f"{name} is required ({want})")
            try:
                value = float(text.replace("_", ""))
            except ValueError:
                raise ValueError(f"{name} must be {want} (got {text!r})") from None
        elif isinstance(text, bool) or not isinstance(text, (int, float)):
            raise ValueError(f"{name} must be {want} (got {text!r})")
        else:
            value = float(text)
        shown = text if isinstance(text, str) else format_value(text)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be {want} (got {shown})")
        if integer:
            if not value.is_integer():
                raise ValueError(f"{name} must be {want} (got {shown})")
        lo, hi = spec.lo, spec.hi
        if lo is not None and (value < lo or (spec.lo_open and value == lo)):
            raise ValueError(f"{name} must be {want} (got {shown})")
        if hi is not None and (value > hi or (spec.hi_open and value == hi)):
            raise ValueError(f"{name} must be {want} (got {shown})")
        return int(value) if integer else value
    if spec.kind == "bool":
        if isinstance(text, bool):
            return text
        if isinstance(text, str) and text.lower() in ("1", "yes", "true", "on", "y"):
            return True
        if isinstance(text, str) and text.lower() in ("0", "no", "false", "off", "n"):
            return False
        raise ValueError(f"{name} must be yes or no (got {text!r})")
    if spec.kind == "choice":
        choices = tuple(spec.choices()) if spec.choices else ()
        for c in choices:
            if text == c or str(text).lower() == str(c).lower():
                return c
        if spec.key == "family":
            for k, v in FAMILY_LABELS.items():
                if str(text).lower() == v.lower():
                    return k
        if spec.key == "sign" and str(text) in ("+1", "+"):
            return 1
        if spec.key == "sign" and str(text) == "-":
            return -1
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))} (got {text!r})")
    if spec.kind == "path":
        return "" if text is None else str(text)
    raise AssertionError(spec.kind)  # pragma: no cover


def check_activation(value: str) -> None:
    if value == "relu":
        raise ValueError(
            "sigma = relu is not allowed: ReLU is not smooth, so Lip(Dh) is infinite and "
            "Theorem 1.2 says nothing; choose tanh, sigmoid, erf or softplus"
        )


def check_path(path: str) -> None:
    if not path:
        raise ValueError("file is required when data = file (a .npy, .npz or .csv path)")
    p = Path(path).expanduser()
    if p.suffix.lower() not in (".npy", ".npz", ".csv", ".txt", ".tsv"):
        raise ValueError(f"file must be a .npy, .npz or .csv file (got {path!r})")
    if not p.is_file():
        raise ValueError(f"file not found: {path!r}")


# --------------------------------------------------------------------------
# validated configurations
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    """A validated run: the model family and its parameters, alpha, T, integrator."""

    family: str
    alpha: float
    T: float
    params: dict[str, Any]
    method: str = _INTEG["method"]
    rtol: float = _INTEG["rtol"]
    atol: float = _INTEG["atol"]
    points: int = 64

    def describe(self) -> str:
        p = self.params
        fam = FAMILY_LABELS[self.family]
        if self.family == "converse":
            extra = f"R0 {p['R0']:g}  Lip(Dh) {p['lip_dh']:g}  sign {p['sign']:+d}"
        elif self.family == "twolayer":
            data = p["path"] if p["data"] == "file" else f"sphere/{p['data']}"
            extra = (f"m {p['m']}  n {p['n']}  d {p['d']}  {p['activation']}  {data}  seed {p['seed']}"
                     f"{'  centred' if p['centered'] else ''}")
        elif self.family == "quadratic":
            extra = f"p {p['p']}  n {p['n']}  Lip(Dh) {p['lip_dh']:g}  seed {p['seed']}"
        else:
            extra = f"p {p['p']}  n {p['n']}  seed {p['seed']}"
        return f"{fam}  alpha {self.alpha:g}  T {self.T:g}  {extra}"

    def with_(self, **changes: Any) -> "RunConfig":
        """A copy with top-level fields or model params replaced."""
        top = {k: v for k, v in changes.items() if k in ("alpha", "T", "method", "rtol", "atol", "points")}
        params = dict(self.params)
        params.update({k: v for k, v in changes.items() if k not in top})
        return RunConfig(
            family=self.family,
            alpha=top.get("alpha", self.alpha),
            T=top.get("T", self.T),
            params=params,
            method=top.get("method", self.method),
            rtol=top.get("rtol", self.rtol),
            atol=top.get("atol", self.atol),
            points=top.get("points", self.points),
        )

    def to_form(self) -> dict[str, Any]:
        d = dict(self.params)
        d.update(family=self.family, alpha=self.alpha, T=self.T, method=self.method,
                 rtol=self.rtol, atol=self.atol, points=self.points)
        return d

    # ---- the package's own configuration (what the CLI and the store use) --

    def to_core(self) -> Any:
        """The equivalent :class:`ntk_tui.config.RunConfig` (raises ``ValueError``)."""
        import ntk_tui.config as core

        return core.RunConfig(
            family=self.family,
            alpha=self.alpha,
            T=self.T,
            model=self.core_model(),
            data=self.core_data(),
            integrator=core.IntegratorSpec(times=self.points, rtol=self.rtol, atol=self.atol, method=self.method),
        )

    def core_model(self, *, sweep: bool = False) -> dict[str, Any]:
        p = self.params
        if self.family == "converse":
            return {"R0": p["R0"], "lip_dh": p["lip_dh"], "sign": p["sign"]}
        if self.family == "twolayer":
            d = {"m": p["m"], "activation": p["activation"], "seed": p["seed"], "centered": p["centered"]}
        elif self.family == "quadratic":
            d = {"p": p["p"], "n": p["n"], "lip_dh": p["lip_dh"], "seed": p["seed"]}
        else:
            d = {"p": p["p"], "n": p["n"], "seed": p["seed"]}
        if sweep:
            d.pop("seed", None)
        return d

    def core_data(self) -> Any:
        if self.family != "twolayer":
            return None
        import ntk_tui.config as core

        p = self.params
        if p["data"] == "file":
            return core.DataSpec(source="file", path=str(Path(p["path"]).expanduser()))
        return core.DataSpec(source="sphere", n=p["n"], d=p["d"], target=p["data"], seed=p["seed"])


def validate_form(values: dict[str, Any]) -> RunConfig:
    """Parse every field that applies to the chosen family; raise :class:`FormError`."""
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    try:
        family = parse_field(FIELD_BY_KEY["family"], values.get("family", "converse"))
    except ValueError as exc:
        raise FormError({"family": str(exc)}) from None
    for spec in fields_for(family):
        if spec.key == "path" and parsed.get("data") != "file":
            parsed["path"] = str(values.get("path", "") or "")
            continue
        try:
            parsed[spec.key] = parse_field(spec, values.get(spec.key, spec.default))
            if spec.key == "activation":
                check_activation(parsed[spec.key])
            if spec.key == "path":
                check_path(parsed[spec.key])
        except ValueError as exc:
            errors[spec.key] = str(exc)
    if errors:
        raise FormError(errors)
    top = ("family", "alpha", "T", "method", "rtol", "atol", "points")
    return RunConfig(
        family=family,
        alpha=parsed["alpha"],
        T=parsed["T"],
        params={k: v for k, v in parsed.items() if k not in top},
        method=parsed["method"],
        rtol=parsed["rtol"],
        atol=parsed["atol"],
        points=parsed["points"],
    )


def field_error(key: str, raw: Any, values: dict[str, Any] | None = None) -> str | None:
    """The message for one field as typed (``None`` if fine): live validation."""
    spec = FIELD_BY_KEY.get(key) or SWEEP_FIELD_BY_KEY.get(key)
    if spec is None:
        return None
    try:
        value = parse_field(spec, raw)
        if key == "activation":
            check_activation(value)
        if key == "path" and values is not None and str(values.get("data")) == "file":
            check_path(value)
    except ValueError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------
# sweeps
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: the base run (form) and the swept values."""

    base: RunConfig
    variable: str  # "alpha" | "width"
    start: float
    stop: float
    count: int
    seeds: int
    t_mode: str = "fixed"  # "fixed" | "scaled"
    C: float = 5.0
    values: tuple[float, ...] = field(default=())

    @property
    def x_label(self) -> str:
        return "m" if self.variable == "width" else "alpha"

    def seed_list(self) -> list[int]:
        s0 = int(self.base.params.get("seed", 0))
        return [s0 + i for i in range(self.seeds)]

    def describe(self) -> str:
        what = "width m (alpha = sqrt m)" if self.variable == "width" else "alpha"
        T = f"T = {self.C:g} alpha" if self.t_mode == "scaled" else f"T {self.base.T:g}"
        return f"{what} {_num(self.start)}..{_num(self.stop)} x{len(self.values)}  seeds {self.seeds}  {T}"

    def to_core(self) -> Any:
        """The equivalent :class:`ntk_tui.config.SweepSpec` (raises ``ValueError``)."""
        import ntk_tui.config as core

        b = self.base
        kw: dict[str, Any] = {}
        if self.variable == "width":
            kw["widths"] = [int(v) for v in self.values]
        else:
            kw["alphas"] = list(self.values)
        if self.t_mode == "scaled":
            kw["T_scale"] = self.C
        else:
            kw["Ts"] = [b.T]
        model = b.core_model(sweep=True)
        if self.variable == "width":
            model.pop("m", None)
        return core.SweepSpec(
            family=b.family,
            seeds=self.seed_list() if b.family != "converse" else None,
            model=model,
            data=b.core_data(),
            integrator=core.IntegratorSpec(times=b.points, rtol=b.rtol, atol=b.atol, method=b.method),
            **kw,
        )


def _log_values(start: float, stop: float, count: int, integer: bool) -> tuple[float, ...]:
    import numpy as np

    if count == 1:
        vals = [start]
    else:
        vals = list(np.geomspace(start, stop, count))
    if integer:
        out: list[float] = []
        for v in vals:
            iv = float(max(1, round(v)))
            if iv not in out:
                out.append(iv)
        return tuple(out)
    return tuple(float(v) for v in vals)


def validate_sweep(base: RunConfig, values: dict[str, Any]) -> SweepConfig:
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for spec in SWEEP_FIELDS:
        try:
            parsed[spec.key] = parse_field(spec, values.get(spec.key, spec.default))
        except ValueError as exc:
            errors[spec.key] = str(exc)
    if not errors:
        if parsed["variable"] == "width" and base.family != "twolayer":
            errors["variable"] = "a width sweep needs the TwoLayer family (m is its width)"
        if parsed["stop"] < parsed["start"]:
            errors["stop"] = f"to must be >= from (got {_num(parsed['stop'])} < {_num(parsed['start'])})"
        if parsed["variable"] == "width" and parsed["start"] < 1:
            errors["start"] = f"from must be a width >= 1 (got {_num(parsed['start'])})"
        if parsed["seeds"] > 1 and base.family == "converse":
            errors["seeds"] = "the Converse model has no randomness: use seeds 1"
    if errors:
        raise FormError(errors)
    vals = _log_values(parsed["start"], parsed["stop"], parsed["count"], parsed["variable"] == "width")
    return SweepConfig(base=base, values=vals, **parsed)
