"""Typed access to the app from the screens, and the narrow-terminal tab layout."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar, Sequence, cast

from textual import on
from textual.binding import Binding
from textual.screen import Screen

from ..widgets.form import ParameterForm

if TYPE_CHECKING:
    from textual.widget import Widget

    from ..app import NtkApp

__all__ = ["LabScreen", "TabbedScreen", "WorkerScreen", "NARROW_WIDTH", "NARROW_HEIGHT"]

#: Below this size the form and the plots become tabs of one area.
NARROW_WIDTH = 100
NARROW_HEIGHT = 30


class LabScreen(Screen):
    """A screen of :class:`~ntk_tui.tui.app.NtkApp`."""

    @property
    def lab(self) -> "NtkApp":
        """The app, typed (its session, history store, settings)."""
        return cast("NtkApp", self.app)


class TabbedScreen(LabScreen):
    """A screen whose areas become tabs in a narrow terminal.

    Subclasses set ``TABS`` ((key, title) pairs), ``TAB_STRIP`` (the id of their
    :class:`TabStrip`) and, when one tab (the setup form) is a tab only in a
    narrow terminal, ``NARROW_ONLY_TAB`` and ``WIDE_TAB`` (shown instead when the
    terminal grows wide). The CSS classes ``-narrow``/``-wide`` and ``-tab-KEY``
    drive the layout.
    """

    BINDINGS = [
        Binding("left_square_bracket", "tab(-1)", "Prev tab", show=False),
        Binding("right_square_bracket", "tab(1)", "Next tab", show=False),
    ]

    TABS: ClassVar[tuple[tuple[str, str], ...]] = ()
    TAB_STRIP: ClassVar[str] = ""
    NARROW_ONLY_TAB: ClassVar[str | None] = None
    WIDE_TAB: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tab = self.TABS[0][0]
        self._narrow: bool | None = None

    def on_resize(self, event: Any) -> None:
        self._layout(event.size.width, event.size.height)

    def _layout(self, width: int, height: int) -> None:
        narrow = width < NARROW_WIDTH or height < NARROW_HEIGHT
        if narrow != self._narrow:
            self._narrow = narrow
            self.set_class(narrow, "-narrow")
            self.set_class(not narrow, "-wide")
            if not narrow and self._tab == self.NARROW_ONLY_TAB:
                self._tab = self.WIDE_TAB
            self._apply_tab()

    def _apply_tab(self) -> None:
        from ..widgets.nav import TabStrip

        for key, _ in self.TABS:
            self.set_class(key == self._tab, f"-tab-{key}")
        self.query_one(f"#{self.TAB_STRIP}", TabStrip).set_active(self._tab)

    def action_show_tab(self, key: str) -> None:
        self._tab = key
        self._apply_tab()

    def action_tab(self, step: int) -> None:
        """Next/previous tab (the narrow-only tab is skipped in a wide terminal)."""
        keys = [k for k, _ in self.TABS if self._narrow or k != self.NARROW_ONLY_TAB]
        i = keys.index(self._tab) if self._tab in keys else 0
        self.action_show_tab(keys[(i + int(step)) % len(keys)])


class WorkerScreen(TabbedScreen):
    """A tabbed screen that runs the engine in a thread worker.

    Subclasses set ``RUN_BUTTON`` and ``CANCEL_BUTTON`` (widget ids); the
    worker checks ``_cancel`` and posts results back with ``_post``.
    """

    # shown in the footer while a text field has the focus (the other keys then type)
    BINDINGS = [Binding("escape", "leave_field", "Leave field")]

    RUN_BUTTON: ClassVar[str] = ""
    CANCEL_BUTTON: ClassVar[str] = ""
    #: The status line while a cancel takes effect.
    CANCELLING: ClassVar[str] = "cancelling…"
    #: The notice when Run or a preset is asked for during a run.
    BUSY: ClassVar[str] = "a run is in progress: press c to cancel it"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.running = False
        self._token = 0
        self._cancel: threading.Event | None = None
        self._focus_before_run: Widget | None = None
        self._preset: Any = None
        self._clean: list[dict[str, Any]] | None = None

    def _set_running(self, running: bool) -> None:
        from textual.widgets import Button

        self.running = running
        if running:
            self.mark_clean()  # what is run is kept in the history
        self.query_one(f"#{self.RUN_BUTTON}", Button).disabled = running
        self.query_one(f"#{self.CANCEL_BUTTON}", Button).disabled = not running
        self.refresh_bindings()

    #: id of the box whose border subtitle names the preset loaded last
    PRESET_BOX: ClassVar[str] = ""

    def _forms(self) -> list[ParameterForm]:
        return []

    def mark_clean(self) -> None:
        """The forms as they are now hold nothing to lose (defaults, a preset, a started run)."""
        self._clean = [f.raw_values() for f in self._forms()]

    def _edited(self) -> bool:
        return self._clean is not None and [f.raw_values() for f in self._forms()] != self._clean

    def load_preset(self, preset: Any, *, run: bool = True) -> None:
        raise NotImplementedError

    def offer_preset(self, preset: Any, *, run: bool = True) -> None:
        """Load a preset, asking first when it would overwrite edits not yet run."""
        if self.refuse_if_running():
            return
        if not self._edited():
            self.load_preset(preset, run=run)
            return
        from .dialogs import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self.load_preset(preset, run=run)

        self.app.push_screen(ConfirmScreen(f"Replace your edits with preset {preset.key}, {preset.title}?"), answer)

    def _show_preset(self, preset: Any) -> None:
        """Label the forms, just filled from ``preset``, with it; they are clean now."""
        self._preset = preset
        self.query_one(f"#{self.PRESET_BOX}").border_subtitle = f"preset {preset.key}: {preset.title}"
        self.mark_clean()

    @on(ParameterForm.Changed)
    def _forget_edited_preset(self) -> None:
        """Once the form differs from the preset (the clean state it left), the box
        no longer claims to show it."""
        if self._preset is not None and self._edited():
            self._preset = None
            self.query_one(f"#{self.PRESET_BOX}").border_subtitle = ""

    def can_export(self) -> bool:
        """True when there is something to export (a finished run or sweep)."""
        return False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        from textual.widgets import Input

        if action == "cancel":
            return True if self.running else None
        if action == "run":
            return None if self.running else True
        if action == "export":
            return True if self.can_export() else None
        if action == "leave_field":
            return isinstance(self.focused, Input)
        return True

    def _remember_focus(self) -> None:
        """Called when Run is pressed: where the cursor goes back to if the run is refused."""
        self._focus_before_run = self.focused

    def _on_fields(self, errors: dict[str, str]) -> dict[str, str]:
        """The engine's errors start with the parameter's name ("method: rodas4 takes at
        most..."): such an error is shown on that field when the form has it."""
        out: dict[str, str] = {}
        for key, msg in errors.items():
            name = msg.split(":", 1)[0].strip()
            if key.startswith("_") and ":" in msg and any(f.control_of(name) is not None for f in self._forms()):
                key = name
            out[key] = msg
        return out

    def _focus_after_refusal(self, errors: dict[str, str], forms: Sequence[ParameterForm]) -> None:
        """The cursor goes to the first faulty field, or back where it was (starting a run
        switches away from the setup tab in a narrow terminal, which takes the focus), so
        that typing goes on editing the form instead of reaching the screen's key bindings."""
        target = next((c for key in errors for form in forms if (c := form.control_of(key)) is not None), None)
        target = target or self._focus_before_run
        if target is not None and target.is_attached:
            target.focus()

    def refuse_if_running(self) -> bool:
        """True (with a notice) when a run is in progress, so the form must not change."""
        if self.running:
            self.notify(self.BUSY, severity="warning")
        return self.running

    def action_cancel(self) -> None:
        if self.running and self._cancel is not None:
            self._cancel.set()
            from ..widgets.summary import RunStatus

            self.query_one(RunStatus).message(self.CANCELLING)

    def action_leave_field(self) -> None:
        """Escape from a text field moves the focus to the run button."""
        from textual.widgets import Input

        if isinstance(self.focused, Input):
            self.query_one(f"#{self.RUN_BUTTON}").focus()

    def stop_all(self) -> None:
        """Ask the worker to stop (quitting must not wait for a long run to finish)."""
        if self._cancel is not None:
            self._cancel.set()

    def on_unmount(self) -> None:
        self.stop_all()

    def _post(self, fn: Any, *args: Any) -> None:
        """Calls ``fn`` on the UI thread from the worker (ignored while the app closes)."""
        try:
            self.app.call_from_thread(fn, *args)
        except Exception:
            pass
