"""Modal dialogs: preset picker, export, confirmation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from ..presets import PRESET_SPECS

__all__ = ["PresetScreen", "ExportScreen", "ConfirmScreen", "export_target"]


class PresetScreen(ModalScreen[str | None]):
    """Pick a preset (Enter), or press its number directly."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Close"),
        Binding("1", "pick('1')", show=False),
        Binding("2", "pick('2')", show=False),
        Binding("3", "pick('3')", show=False),
        Binding("4", "pick('4')", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Label("Presets — reproduce a statement of the paper", classes="dialog-title")
            options = []
            for p in PRESET_SPECS:
                grid = Table.grid(padding=(0, 1))
                grid.add_column(width=2)
                grid.add_column(ratio=1)
                grid.add_row(Text(p.key, style="bold"), Text(p.title, style="bold"))
                grid.add_row("", Text(p.description, style="dim"))
                options.append(Option(grid, id=p.name))
            yield OptionList(*options, id="preset-list")
            yield Static("Enter or 1-4 to start · Esc to close", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self, key: str) -> None:
        for p in PRESET_SPECS:
            if p.key == key:
                self.dismiss(p.name)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no question (y / n / Esc)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error", compact=True)
                yield Button("No (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no").focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(bool(yes))


FORMATS = (("csv", "CSV of the measurements"), ("json", "JSON (measurements, summary, config)"),
           ("svg", "SVG screenshot of the screen"))


def export_target(kind: str, obj: Any, path: str | Path) -> Path:
    """Write ``obj`` (a run, or a sweep result) to ``path`` (.csv or .json) via :mod:`ntk_tui.export`."""
    import ntk_tui.export as export

    if kind == "sweep":
        return export.export_sweep(obj, path)
    return export.export_run(obj, path)


class ExportScreen(ModalScreen[None]):
    """Export the current run or sweep (CSV / JSON) or an SVG screenshot."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, kind: str, obj: Any, *, name: str = "ntk-run", directory: str | Path | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.obj = obj
        self.base = name
        self.directory = Path(directory) if directory is not None else Path.cwd()
        self.format = "csv"

    def compose(self) -> ComposeResult:
        what = "sweep" if self.kind == "sweep" else "run"
        with Vertical(classes="dialog", id="export-dialog"):
            yield Label(f"Export the current {what}", classes="dialog-title")
            with RadioSet(id="export-format"):
                for i, (key, label) in enumerate(FORMATS):
                    yield RadioButton(f"{key.upper()}  {label}", value=i == 0, id=f"fmt-{key}")
            yield Label("file:")
            yield Input(self._default_path("csv"), id="export-path")
            yield Static("", id="export-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="export-ok", variant="primary", compact=True)
                yield Button("Cancel", id="export-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(RadioSet).focus()

    def _default_path(self, fmt: str) -> str:
        return str(self.directory / f"{self.base}.{fmt}")

    @on(RadioSet.Changed)
    def _format_changed(self, event: RadioSet.Changed) -> None:
        key = (event.pressed.id or "fmt-csv").removeprefix("fmt-")
        old = self.format
        self.format = key
        inp = self.query_one("#export-path", Input)
        if inp.value in ("", self._default_path(old)) or inp.value.endswith(f".{old}"):
            inp.value = str(Path(inp.value).with_suffix(f".{key}")) if inp.value else self._default_path(key)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._export()

    @on(Button.Pressed, "#export-ok")
    def _ok(self) -> None:
        self._export()

    @on(Button.Pressed, "#export-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)

    def _export(self) -> None:
        raw = self.query_one("#export-path", Input).value.strip()
        err = self.query_one("#export-error", Static)
        if not raw:
            err.update("give a file name")
            return
        path = Path(raw).expanduser()
        fmt = self.format
        if path.suffix.lower() != f".{fmt}":
            path = path.with_name(path.name + f".{fmt}") if path.suffix == "" else path.with_suffix(f".{fmt}")
        if not path.parent.exists():
            err.update(f"folder does not exist: {path.parent}")
            return
        app = self.app
        if fmt == "svg":
            self.dismiss(None)

            def shoot() -> None:
                try:
                    out = app.save_screenshot(filename=path.name, path=str(path.parent))
                    app.notify(f"screenshot saved to {out}", title="Export")
                except Exception as exc:
                    app.notify(f"cannot save the screenshot: {exc}", title="Export", severity="error")

            app.call_after_refresh(shoot)
            return
        try:
            out = export_target(self.kind, self.obj, path)
        except Exception as exc:
            err.update(f"cannot export: {exc}")
            return
        self.dismiss(None)
        app.notify(f"{fmt.upper()} written to {out}", title="Export")
