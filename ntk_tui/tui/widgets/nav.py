"""The top bar (title and screen switcher) and a one-line tab strip.

Both are clickable (``@click`` actions in the markup) and mirror keyboard
bindings, so the mouse and the keyboard do the same things.
"""

from __future__ import annotations

from typing import Sequence

from textual.content import Content
from textual.widgets import Static

__all__ = ["NavBar", "TabStrip"]

SCREENS: tuple[tuple[str, str], ...] = (("run", "Run"), ("sweep", "Sweep"), ("history", "History"), ("help", "Help"))


class NavBar(Static):
    """`` ntk-tui  lazy-training lab            Run │ Sweep │ History │ Help``"""

    DEFAULT_CSS = """
    NavBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.current = current

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width = max(20, self.size.width - 2)
        title = "ntk-tui  lazy-training lab" if width >= 60 else "ntk-tui"
        parts = []
        for key, label in SCREENS:
            action = "app.help" if key == "help" else f"app.goto('{key}')"
            if key == self.current:
                parts.append(f"[reverse b @click={action}] {label} [/]")
            else:
                parts.append(f"[@click={action}] {label} [/]")
        tabs = Content.from_markup("│".join(parts))
        head = Content.from_markup(f"[b]{title}[/b]")
        gap = max(1, width - len(head.plain) - len(tabs.plain))
        self.update(head + Content(" " * gap) + tabs)


class TabStrip(Static):
    """``[Setup] Gap  Weights  Kernel`` — the plot tabs of a narrow terminal."""

    DEFAULT_CSS = """
    TabStrip {
        height: 1;
        width: 1fr;
        padding: 0 1;
        color: $foreground 80%;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, tabs: Sequence[tuple[str, str]], active: str, *, action: str = "screen.show_tab",
                 hint: str = "[ ] switch", id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.tabs = list(tabs)
        self.active = active
        self.action = action
        self.hint = hint

    def on_mount(self) -> None:
        self._draw()

    def set_active(self, key: str) -> None:
        self.active = key
        self._draw()

    def _draw(self) -> None:
        parts = []
        for key, label in self.tabs:
            if key == self.active:
                parts.append(f"[reverse b @click={self.action}('{key}')] {label} [/]")
            else:
                parts.append(f"[@click={self.action}('{key}')] {label} [/]")
        text = Content.from_markup(" ".join(parts))
        if self.hint:
            text = text + Content.from_markup(f"   [dim]{self.hint}[/dim]")
        self.update(text)

    def next_key(self, step: int) -> str:
        keys = [k for k, _ in self.tabs]
        i = keys.index(self.active) if self.active in keys else 0
        return keys[(i + step) % len(keys)]
