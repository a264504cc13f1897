"""Type stubs of the Rust extension ``ntk_tui._core`` (checked by mypy's stubtest).

Use the wrappers in :mod:`ntk_tui` (``simulate``, ``Simulation``,
``simulate_batch``...) rather than the raw functions below, which return dicts.
"""

from typing import Any, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__all__ = [
    "ACTIVATIONS",
    "BatchJob",
    "Converse",
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "Linear",
    "MAX_THREADS",
    "METRICS",
    "Model",
    "Quadratic",
    "Simulation",
    "TwoLayer",
    "__version__",
    "lemma_3_3",
    "simulate",
    "start_batch",
]

__version__: str
METRICS: list[str]
ACTIVATIONS: list[str]
DEFAULT_RTOL: float
DEFAULT_ATOL: float
MAX_THREADS: int

_F64 = npt.NDArray[np.float64]

@disjoint_base
class Model:
    """Common base of the model families."""

    @property
    def family(self) -> str: ...
    @property
    def n(self) -> int: ...
    @property
    def p(self) -> int: ...
    @property
    def w0(self) -> _F64: ...
    @property
    def y_star(self) -> _F64: ...
    @property
    def lip_dh_kind(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    def lip_dh_bound(self, rho: float) -> float: ...
    def lip_h_bound(self, rho: float) -> float: ...
    def r0(self, alpha: float) -> float: ...
    def h(self, w: npt.ArrayLike) -> _F64: ...
    def jacobian(self, w: npt.ArrayLike) -> _F64: ...
    def kernel0(self) -> _F64: ...

@final
class Converse(Model):
    """Theorem 1.3's model h(w) = w/sqrt(T) + (sign lip_dh / 2) w², w0 = 0, y* = sqrt(2 R0)."""

    def __new__(cls, T: float, R0: float, lip_dh: float, sign: int = 1) -> Converse: ...

@final
class TwoLayer(Model):
    """The mean-field two-layer network of seed eq. (8)-(10) on data (X, y)."""

    def __new__(
        cls,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        m: int,
        activation: str = "tanh",
        seed: int = 0,
        w0: npt.ArrayLike | None = None,
        centered: bool = True,
    ) -> TwoLayer: ...

@final
class Quadratic(Model):
    """h(w) = J w + Q[w, w]/2 with ||Q|| = lip_dh exactly."""

    def __new__(cls, p: int, n: int, lip_dh: float = 1.0, seed: int = 0) -> Quadratic: ...

@final
class Linear(Model):
    """h(w) = J w (gap exactly 0)."""

    def __new__(cls, p: int, n: int, seed: int = 0) -> Linear: ...

def simulate(
    model: Model,
    alpha: float,
    T: float,
    times: _F64,
    rtol: float,
    atol: float,
    method: str,
    max_steps: int,
    metrics: list[str] | None = None,
) -> dict[str, Any]: ...
@final
class Simulation:
    def __new__(
        cls,
        model: Model,
        alpha: float,
        T: float,
        times: _F64,
        rtol: float,
        atol: float,
        method: str,
        max_steps: int,
        metrics: list[str] | None = None,
    ) -> Simulation: ...
    def advance(self, max_points: int | None = None, max_seconds: float | None = None) -> tuple[int, int]: ...
    @property
    def done(self) -> bool: ...
    @property
    def n_done(self) -> int: ...
    @property
    def n_total(self) -> int: ...
    @property
    def t(self) -> float: ...
    @property
    def status(self) -> str: ...
    def result(self) -> dict[str, Any]: ...

@final
class BatchJob:
    @property
    def progress(self) -> tuple[int, int]: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    @property
    def done(self) -> bool: ...
    def results(self) -> list[dict[str, Any]]: ...
    def series(self, name: str) -> _F64: ...
    def statuses(self) -> list[str]: ...

def start_batch(
    models: list[Model],
    jobs: list[tuple[int, float]],
    T: float,
    times: _F64,
    rtol: float,
    atol: float,
    method: str,
    max_steps: int,
    metrics: list[str] | None = None,
    threads: int | None = None,
) -> BatchJob: ...
def lemma_3_3(A: _F64, B: _F64, t: float) -> tuple[float, float]: ...
