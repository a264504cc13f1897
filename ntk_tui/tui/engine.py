"""Access to the compiled engine and the history store, with readable failures.

The TUI never computes science: runs go through ``ntk_tui.Simulation`` (or
``ntk_tui.sweep.run_sweep`` for sweeps), summaries through
``ntk_tui.analysis.summarize``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EngineUnavailable", "engine", "summarize", "integration_error_parts"]


class EngineUnavailable(RuntimeError):
    """The compiled engine (``ntk_tui._core``) cannot be imported."""


def engine() -> Any:
    """The ``ntk_tui`` package with its engine, or :class:`EngineUnavailable`."""
    try:
        import ntk_tui as nt
    except Exception as exc:  # pragma: no cover - the package itself is broken
        raise EngineUnavailable(f"cannot import ntk_tui: {exc}") from None
    if not hasattr(nt, "Simulation"):
        try:
            from ntk_tui import _core  # noqa: F401
        except Exception as exc:
            raise EngineUnavailable(
                f"the simulation engine is not available ({type(exc).__name__}: {exc}); "
                "build it with `maturin develop --release`"
            ) from None
        raise EngineUnavailable("the simulation engine is not available (ntk_tui.Simulation missing)")
    return nt


def summarize(run: Any) -> Any:
    """:func:`ntk_tui.analysis.summarize`, or ``None`` if it fails."""
    try:
        from ntk_tui.analysis import summarize as _summarize

        return _summarize(run)
    except Exception:
        return None


def integration_error_parts(exc: BaseException) -> tuple[Any, str] | None:
    """``(partial_run, reason)`` of an ``IntegrationError`` (duck-typed), else None."""
    run = getattr(exc, "run", None)
    if run is None:
        return None
    reason = getattr(exc, "reason", None) or str(exc)
    return run, str(reason)
