"""The parameter form: one compact row per field, validated as the user types.

A :class:`ParameterForm` is built from :class:`~ntk_tui.tui.config.FieldSpec`
rows. Fields that do not apply to the chosen model family are hidden; an
invalid value is marked (``-invalid``) and the reason is listed under the
form in the user's words ("alpha must be a positive number (got -3)").
Pressing Enter in a field posts :class:`ParameterForm.Submitted`.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from ..config import FAMILY_LABELS, FieldSpec, field_error, format_value

__all__ = ["ParameterForm", "FieldRow"]


def _select_options(spec: FieldSpec) -> list[tuple[str, Any]]:
    values = list(spec.choices()) if spec.choices else []
    out = []
    for v in values:
        if spec.key == "family":
            label = FAMILY_LABELS.get(v, str(v))
        elif spec.key == "sign":
            label = f"{int(v):+d}"
        elif spec.key == "data":
            label = "file…" if v == "file" else f"sphere/{v}"
        elif spec.key == "variable":
            label = {"alpha": "alpha", "width": "width m"}.get(v, str(v))
        elif spec.key == "t_mode":
            label = {"fixed": "fixed T", "scaled": "C alpha"}.get(v, str(v))
        else:
            label = str(v)
        out.append((label, v))
    return out


class FieldRow(Horizontal):
    """``label  [input]`` for one field."""

    DEFAULT_CSS = """
    FieldRow {
        height: 1;
        width: 1fr;
        & > Label { width: 8; height: 1; color: $foreground 70%; }
        & > Input, & > Select, & > Checkbox { width: 1fr; }
    }
    """

    def __init__(self, spec: FieldSpec, value: Any, *, form_id: str) -> None:
        super().__init__(id=f"{form_id}-row-{spec.key}", classes="field-row")
        self.spec = spec
        self._value = value
        self._form_id = form_id

    def compose(self) -> ComposeResult:
        spec = self.spec
        yield Label(spec.label)
        wid = f"{self._form_id}-{spec.key}"
        if spec.kind == "choice":
            opts = _select_options(spec)
            value = self._value if any(v == self._value for _, v in opts) else opts[0][1]
            yield Select(opts, value=value, allow_blank=False, compact=True, id=wid, tooltip=spec.help)
        elif spec.kind == "bool":
            yield Checkbox("", value=bool(self._value), compact=True, id=wid, tooltip=spec.help)
        else:
            placeholder = ".npy/.csv path" if spec.kind == "path" else ""
            yield Input(format_value(self._value), compact=True, id=wid, tooltip=spec.help,
                        placeholder=placeholder, select_on_focus=True)

    @property
    def control(self) -> Widget:
        return self.query_one(f"#{self._form_id}-{self.spec.key}")


class ParameterForm(Container):
    """A grid of :class:`FieldRow` plus a list of validation errors."""

    DEFAULT_CSS = """
    ParameterForm {
        height: auto;
        & > #fields { layout: grid; grid-size: 1; grid-gutter: 0 2; height: auto; }
        & > .errors { color: $error; height: auto; padding: 0 0; display: none; }
        & > .hint { color: $foreground 60%; height: auto; margin-top: 1; display: none; }
        & > .errors.-shown, & > .hint.-shown { display: block; }
        & FieldRow.-locked > Input, & FieldRow.-locked > Select, & FieldRow.-locked > Checkbox {
            color: $foreground 40%;
            text-style: strike;
        }
        & FieldRow.-locked > Label { color: $foreground 40%; text-style: italic; }
        & Input.-invalid, & Select.-invalid { background: $error 25%; }
        & Checkbox.-textual-compact:focus { border: none !important; }
    }
    """

    class Changed(Message):
        """A field changed (after validation). ``key`` is the field's key."""

        def __init__(self, form: "ParameterForm", key: str) -> None:
            super().__init__()
            self.form = form
            self.key = key

        @property
        def control(self) -> "ParameterForm":
            return self.form

    class Submitted(Message):
        """Enter was pressed in a field."""

        def __init__(self, form: "ParameterForm") -> None:
            super().__init__()
            self.form = form

        @property
        def control(self) -> "ParameterForm":
            return self.form

    def __init__(self, specs: Sequence[FieldSpec], values: dict[str, Any] | None = None, *,
                 id: str, classes: str | None = None, family_aware: bool = True) -> None:
        super().__init__(id=id, classes=classes)
        self.specs = list(specs)
        self._initial = {s.key: s.default for s in self.specs}
        self._initial.update(values or {})
        self._errors: dict[str, str] = {}
        self._locked_fields: dict[str, str] = {}
        self._extra_errors: dict[str, str] = {}
        self.family_aware = family_aware and any(s.key == "family" for s in self.specs)
        self._suspend = 0

    # ---- composition -------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Container(id="fields"):
            for spec in self.specs:
                yield FieldRow(spec, self._initial.get(spec.key, spec.default), form_id=self.id or "form")
        yield Static("", classes="errors", markup=False)
        yield Static("", classes="hint", markup=False)

    def on_descendant_focus(self, event: Any) -> None:
        key = self._key_of(event.widget) if event.widget is not None else None
        spec = next((s for s in self.specs if s.key == key), None)
        hint = self.query_one(".hint", Static)
        if spec is None:
            hint.update("")
            hint.remove_class("-shown")
            return
        text = Text(f"{spec.label}: ", style="bold")
        text.append(self._locked_fields.get(spec.key, spec.help))
        hint.update(text)
        hint.add_class("-shown")

    def on_descendant_blur(self, event: Any) -> None:
        hint = self.query_one(".hint", Static)
        hint.update("")
        hint.remove_class("-shown")

    def on_mount(self) -> None:
        self._update_visibility()
        self.validate_all()

    # ---- values ------------------------------------------------------------

    def _control(self, key: str) -> Widget:
        return self.query_one(f"#{self.id}-{key}")

    def _value_of(self, key: str) -> Any:
        try:
            w = self._control(key)
        except Exception:
            return None
        return getattr(w, "value", None)

    def raw_values(self) -> dict[str, Any]:
        """Every field as typed (strings for text inputs)."""
        out: dict[str, Any] = {}
        for spec in self.specs:
            w = self._control(spec.key)
            if isinstance(w, Input):
                out[spec.key] = w.value
            elif isinstance(w, Select):
                out[spec.key] = w.value
            elif isinstance(w, Checkbox):
                out[spec.key] = w.value
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        """Fill fields (unknown keys are ignored); validates afterwards."""
        self._suspend += 1
        try:
            for key, value in values.items():
                try:
                    w = self._control(key)
                except Exception:
                    continue
                if isinstance(w, Input):
                    w.value = format_value(value)
                elif isinstance(w, Select):
                    opts = [v for _, v in _select_options(next(s for s in self.specs if s.key == key))]
                    match = next((o for o in opts if o == value or str(o).lower() == str(value).lower()), None)
                    if match is not None:
                        w.value = match
                elif isinstance(w, Checkbox):
                    w.value = bool(value)
        finally:
            self._suspend -= 1
        self._update_visibility()
        self.validate_all()

    @property
    def family(self) -> str | None:
        if not self.family_aware:
            return None
        return str(self.raw_values().get("family"))

    # ---- visibility, locking ---------------------------------------------

    def _applies(self, spec: FieldSpec) -> bool:
        fam = self.family
        if fam is not None and not spec.applies_to(fam):
            return False
        if spec.key == "path":
            return str(self._value_of("data")) == "file"
        if spec.key in ("n", "d") and fam == "twolayer":
            return str(self._value_of("data")) != "file"  # the file decides them
        if spec.key == "C":
            value = self._value_of("t_mode")
            return value is None or str(value) == "scaled"
        return True

    def _update_visibility(self) -> None:
        for spec in self.specs:
            row = self.query_one(f"#{self.id}-row-{spec.key}")
            row.display = self._applies(spec)

    def lock_fields(self, locked: dict[str, str]) -> None:
        """Disable fields overridden elsewhere (key -> reason shown as tooltip)."""
        self._locked_fields = dict(locked)
        for spec in self.specs:
            w = self._control(spec.key)
            w.disabled = spec.key in self._locked_fields
            self.query_one(f"#{self.id}-row-{spec.key}").set_class(spec.key in self._locked_fields, "-locked")
            if spec.key in self._locked_fields:
                w.tooltip = self._locked_fields[spec.key]
            else:
                w.tooltip = spec.help

    # ---- validation --------------------------------------------------------

    def visible_keys(self) -> list[str]:
        return [s.key for s in self.specs if self._applies(s)]

    def validate_all(self) -> dict[str, str]:
        raw = self.raw_values()
        errors: dict[str, str] = {}
        for spec in self.specs:
            if not self._applies(spec) or spec.key in self._locked_fields:
                continue
            msg = field_error(spec.key, raw[spec.key], raw)
            if msg:
                errors[spec.key] = msg
        self._errors = errors
        self._render_errors()
        return errors

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show errors found elsewhere (e.g. cross-field checks, the engine)."""
        self._extra_errors = dict(errors)
        self._render_errors()

    def _render_errors(self) -> None:
        all_errors = dict(self._errors)
        for k, v in self._extra_errors.items():
            all_errors.setdefault(k, v)
        for spec in self.specs:
            w = self._control(spec.key)
            w.set_class(spec.key in all_errors, "-invalid")
        text = Text()
        for i, msg in enumerate(all_errors.values()):
            if i:
                text.append("\n")
            text.append("✗ " + msg)
        box = self.query_one(".errors", Static)
        box.update(text)
        box.set_class(bool(all_errors), "-shown")

    @property
    def errors(self) -> dict[str, str]:
        out = dict(self._errors)
        for k, v in self._extra_errors.items():
            out.setdefault(k, v)
        return out

    # ---- events --------------------------------------------------------------

    def _changed(self, key: str) -> None:
        if self._suspend:
            return
        self._extra_errors.pop(key, None)
        if key in ("family", "data", "t_mode"):
            self._update_visibility()
        self.validate_all()
        self.post_message(self.Changed(self, key))

    def _key_of(self, widget: Widget) -> str | None:
        wid = widget.id or ""
        prefix = f"{self.id}-"
        return wid[len(prefix):] if wid.startswith(prefix) else None

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        key = self._key_of(event.input)
        if key:
            self._changed(key)

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        key = self._key_of(event.select)
        if key:
            self._changed(key)

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        key = self._key_of(event.checkbox)
        if key:
            self._changed(key)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(self))

    def control_of(self, key: str) -> Widget | None:
        """The control of field ``key`` when it is shown for the current family, else None."""
        for spec in self.specs:
            if spec.key == key and self._applies(spec) and spec.key not in self._locked_fields:
                return self._control(key)
        return None

    def first_control(self) -> Widget | None:
        for spec in self.specs:
            if self._applies(spec):
                return self._control(spec.key)
        return None


def keys(specs: Iterable[FieldSpec]) -> list[str]:
    return [s.key for s in specs]
