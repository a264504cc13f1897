"""Typed access to the app from the screens."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from ..app import NtkApp

__all__ = ["LabScreen"]


class LabScreen(Screen):
    """A screen of :class:`~ntk_tui.tui.app.NtkApp`."""

    @property
    def lab(self) -> "NtkApp":
        """The app, typed (its session, history store, settings)."""
        return cast("NtkApp", self.app)
