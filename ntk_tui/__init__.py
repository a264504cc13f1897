"""ntk-tui: a terminal laboratory for the neural tangent kernel approximation.

Gradient-flow training of a model under scale alpha against its linearization
(the NTK approximation), with the theory's bounds. The engine is the Rust
extension ``ntk_tui._core``; this package re-exports its public API::

    import ntk_tui as nt
    X, y = nt.datasets.sphere(n=64, d=8)
    run = nt.simulate(nt.TwoLayer(X, y, m=256), alpha=100.0, T=1000.0)
    run.gap[-1], run.bounds()["theorem_1_2"].value[-1]
"""

from . import bounds, datasets
from ._core import ACTIVATIONS as _ACTIVATIONS
from ._core import Converse, Linear, Model, Quadratic, TwoLayer, __version__
from .run import (
    DEFAULT_ATOL,
    DEFAULT_METHOD,
    DEFAULT_RTOL,
    MAX_THREADS,
    METRICS,
    SERIES,
    Batch,
    BatchJob,
    IntegrationError,
    Run,
    Simulation,
    default_times,
    lemma_3_3,
    simulate,
    simulate_batch,
    start_batch,
)

#: Activations accepted by ``TwoLayer``.
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATIONS)

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_ATOL",
    "DEFAULT_METHOD",
    "DEFAULT_RTOL",
    "MAX_THREADS",
    "METRICS",
    "SERIES",
    "Batch",
    "BatchJob",
    "Converse",
    "IntegrationError",
    "Linear",
    "Model",
    "Quadratic",
    "Run",
    "Simulation",
    "TwoLayer",
    "__version__",
    "bounds",
    "datasets",
    "default_times",
    "lemma_3_3",
    "simulate",
    "simulate_batch",
    "start_batch",
]
