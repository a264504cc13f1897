"""The terminal app of ntk-tui (Textual).

``run_app`` starts it; :data:`PRESETS` names the presets (for ``--help`` and
``--preset``). Importing this package does not import Textual: the command
line can list presets cheaply.
"""

from __future__ import annotations

from typing import Any

from .presets import PRESETS

__all__ = ["PRESETS", "run_app", "NtkApp"]


def run_app(preset: str | None = None, family: str | None = None, alpha: float | None = None,
            T: float | None = None, **params: Any) -> None:
    """Start the terminal app (see :func:`ntk_tui.tui.app.run_app`)."""
    from .app import run_app as _run_app

    return _run_app(preset=preset, family=family, alpha=alpha, T=T, **params)


def __getattr__(name: str) -> Any:
    if name == "NtkApp":
        from .app import NtkApp

        return NtkApp
    raise AttributeError(name)
