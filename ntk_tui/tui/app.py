"""``ntk-tui``: a Textual laboratory for the NTK approximation.

Screens (modes): Run (default), Sweep, History; Help is pushed on top. The
simulation runs in worker threads (the Rust engine releases the GIL), so the
interface never freezes and Cancel is honoured within a fraction of a second.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from .config import FIELDS
from .presets import PRESET_SPECS, PRESETS, get_preset
from .session import SessionItem
from .screens.dialogs import PresetScreen
from .screens.help import HelpScreen
from .screens.history import HistoryScreen
from .screens.run import RunScreen
from .screens.sweep import SweepScreen
from .widgets.plots import BLOCK_MODE, BRAILLE_MODE

__all__ = ["NtkApp", "run_app", "SessionItem", "PRESETS"]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class NtkApp(App[None]):
    """The ntk-tui application.

    Args:
        preset: name of a preset to load and start (see :data:`PRESETS`).
        prefill: initial values of the run form (keys of ``config.FIELDS``).
        braille: draw plots with braille dots (default: on unless
            ``NTK_TUI_NO_BRAILLE=1``); ``False`` uses block characters.
        freeze_clock: show no elapsed times (deterministic screenshots/tests).
        store_path: history database (default: the store's own default);
        save_history: save finished runs and sweeps in the history database.
        autorun: start the preset's run/sweep (default True when a preset is given).
    """

    TITLE = "ntk-tui"
    SUB_TITLE = "lazy-training lab"
    CSS_PATH = ["app.tcss", "run.tcss", "sweep.tcss", "history.tcss", "help.tcss"]
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("p", "presets", "Presets"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("1", "preset('1')", "Preset 1", show=False),
        Binding("2", "preset('2')", "Preset 2", show=False),
        Binding("3", "preset('3')", "Preset 3", show=False),
        Binding("4", "preset('4')", "Preset 4", show=False),
        Binding("f1", "help", "Help", show=False),
    ]

    def __init__(
        self,
        preset: str | None = None,
        prefill: dict[str, Any] | None = None,
        *,
        braille: bool | None = None,
        freeze_clock: bool = False,
        store_path: str | os.PathLike | None = None,
        save_history: bool = True,
        autorun: bool | None = None,
    ) -> None:
        super().__init__()
        if preset is not None:
            get_preset(preset)  # raises ValueError for an unknown name
        self.start_preset = preset
        self.prefill = dict(prefill or {})
        if braille is None:
            braille = not _env_flag("NTK_TUI_NO_BRAILLE")
        self.hires = BRAILLE_MODE if braille else BLOCK_MODE
        self.frozen_clock = freeze_clock or _env_flag("NTK_TUI_FREEZE_CLOCK")
        self.store_path = store_path
        self.save_history = save_history
        self.autorun = autorun if autorun is not None else preset is not None
        self.session: list[SessionItem] = []
        self._store: Any = None
        self._store_error: str | None = None
        self._store_lock = threading.Lock()

    # ---- modes / screens ----------------------------------------------------

    MODES = {"run": RunScreen, "sweep": SweepScreen, "history": HistoryScreen}
    DEFAULT_MODE = "run"

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.prefill:
            self.call_after_refresh(self._apply_prefill)
        if self.start_preset:
            self.call_after_refresh(self.action_preset, self.start_preset, self.autorun)

    def _apply_prefill(self) -> None:
        screen = self.screen
        if isinstance(screen, RunScreen):
            screen.prefill(self.prefill)

    def _theme_changed(self, _theme: Any) -> None:
        for screen in self._all_screens():
            refresh = getattr(screen, "refresh_colours", None)
            if refresh is not None:
                refresh()

    def _all_screens(self) -> Iterable[Screen]:
        seen = set()
        for stack in self._screen_stacks.values():
            for s in stack:
                if id(s) not in seen:
                    seen.add(id(s))
                    yield s

    async def action_goto(self, mode: str) -> None:
        """Switch to the Run, Sweep or History screen."""
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        if self.current_mode != mode:
            await self.switch_mode(mode)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_presets(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.run_worker(self.action_preset(name), exclusive=False)

        self.push_screen(PresetScreen(), chosen)

    async def action_preset(self, name: str, run: bool = True) -> None:
        """Load a preset (its name or key 1-4) and start it."""
        try:
            preset = get_preset(name)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        if self.current_mode != preset.screen:
            await self.switch_mode(preset.screen)
        screen = self.screen
        offer = getattr(screen, "offer_preset", None)
        if offer is not None:
            offer(preset, run=run)

    def action_toggle_braille(self) -> None:
        self.hires = BLOCK_MODE if self.hires == BRAILLE_MODE else BRAILLE_MODE
        for screen in self._all_screens():
            fn = getattr(screen, "set_hires", None)
            if fn is not None:
                fn(self.hires)
        self.notify("plots: " + ("braille dots" if self.hires == BRAILLE_MODE else "block characters"))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Run screen", "Configure and run one simulation", lambda: self.run_action("goto('run')"))
        yield SystemCommand("Sweep screen", "Sweep alpha or the width, fit the slope", lambda: self.run_action("goto('sweep')"))
        yield SystemCommand("History screen", "Browse, reopen, compare and delete saved runs",
                            lambda: self.run_action("goto('history')"))
        yield SystemCommand("Help", "Every quantity and bound, with formulas", self.action_help)
        for p in PRESET_SPECS:
            yield SystemCommand(f"Preset {p.key}: {p.title}", p.description,
                                lambda name=p.name: self.run_action(f"preset('{name}')"))
        yield SystemCommand("Toggle braille / block plots", "Block characters for terminals without braille fonts",
                            self.action_toggle_braille)
        for action, title, help_ in (
            ("run", "Run", "Start the run (or the sweep) with the current parameters"),
            ("cancel", "Cancel", "Stop the run or sweep in progress (what is done is kept)"),
            ("export", "Export", "Save the measurements as CSV/JSON or the screen as SVG"),
        ):
            if hasattr(screen, f"action_{action}"):
                yield SystemCommand(title, help_, lambda a=action, s=screen: s.run_action(a))

    # ---- history store --------------------------------------------------------

    def get_store(self) -> Any:
        """The history :class:`~ntk_tui.store.Store` (raises with a readable message)."""
        if not self.save_history:
            raise RuntimeError("history saving is off")
        with self._store_lock:
            if self._store is not None:
                return self._store
            if self._store_error is not None:
                raise RuntimeError(self._store_error)
            try:
                from ntk_tui.store import Store

                self._store = Store(self.store_path)
            except Exception as exc:
                self._store_error = f"history database unavailable: {exc}"
                raise RuntimeError(self._store_error) from None
            return self._store

    def add_session(self, item: SessionItem) -> None:
        self.session.append(item)
        for screen in self._all_screens():
            fn = getattr(screen, "session_changed", None)
            if fn is not None:
                fn()

    # ---- helpers ----------------------------------------------------------------

    def elapsed_text(self, seconds: float | None) -> str | None:
        """``"0.41 s"`` (or None when the clock is frozen for deterministic screens)."""
        if self.frozen_clock or seconds is None:
            return None
        seconds = float(seconds)
        if seconds < 1.0:
            return f"{seconds * 1000:.3g} ms"
        return f"{seconds:.2f} s"

    def stop_workers(self) -> None:
        """Cancel every run and sweep in progress (their threads end within a fraction of a second)."""
        for screen in self._all_screens():
            stop = getattr(screen, "stop_all", None)
            if stop is not None:
                stop()

    async def action_quit(self) -> None:
        self.stop_workers()
        await super().action_quit()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        self.stop_workers()
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self.stop_workers()
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                pass


_PREFILL_ALIASES = {"lip": "lip_dh", "Lip(Dh)": "lip_dh", "lipdh": "lip_dh", "r0": "R0", "t": "T",
                    "width": "m", "sigma": "activation", "dataset": "data", "centred": "centered",
                    "times": "points", "n_times": "points", "target": "data"}


def run_app(
    preset: str | None = None,
    family: str | None = None,
    alpha: float | None = None,
    T: float | None = None,
    **params: Any,
) -> None:
    """Start the terminal app (the ``ntk-tui`` command with no subcommand).

    ``preset``: a name from :data:`PRESETS` (loaded and started). ``family``,
    ``alpha``, ``T`` and ``params`` (any run-form field: ``R0``, ``lip_dh``,
    ``sign``, ``m``, ``n``, ``d``, ``p``, ``activation``, ``data``, ``path``,
    ``seed``, ``centered``, ``method``, ``rtol``, ``atol``, ``points``) prefill
    the run form; ``None`` values are ignored. Options of the app itself:
    ``no_braille`` / ``braille``, ``freeze_clock``, ``store_path`` (or ``db``),
    ``save_history``, ``autorun``. Unknown names raise ``ValueError``.
    """
    app_opts: dict[str, Any] = {}
    for key in ("braille", "freeze_clock", "store_path", "save_history", "autorun"):
        if key in params:
            value = params.pop(key)
            if value is not None:
                app_opts[key] = value
    if "no_braille" in params:
        nb = params.pop("no_braille")
        if nb:
            app_opts["braille"] = False
    if "db" in params:
        db = params.pop("db")
        if db is not None:
            app_opts["store_path"] = db
    prefill: dict[str, Any] = {}
    if family is not None:
        prefill["family"] = family
    if alpha is not None:
        prefill["alpha"] = alpha
    if T is not None:
        prefill["T"] = T
    known = {f.key for f in FIELDS}
    unknown = []
    for key, value in params.items():
        k = _PREFILL_ALIASES.get(key, key)
        if k not in known:
            unknown.append(key)
            continue
        if value is not None:
            prefill[k] = value
    if unknown:
        raise ValueError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(known))}"
        )
    NtkApp(preset=preset, prefill=prefill, **app_opts).run()

