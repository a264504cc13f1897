"""Text made of entries that are packed into lines without ever being split.

Legends and summary lines are lists of short entries ("gap(T) 0.41",
"Thm 1.2 ≤ 2.8 (6.9x loose)"); on a narrow terminal whole entries move to the
next line. Packing is redone when the widget is resized.
"""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.widgets import Static

__all__ = ["PackedStatic", "pack_entries"]

SEP = "  "


def pack_entries(paragraphs: Sequence[Sequence[Text]], width: int) -> Text:
    """Lay out paragraphs (lists of entries) in ``width`` columns; a paragraph starts a new line."""
    out = Text(no_wrap=False, overflow="fold")
    started = False
    for entries in paragraphs:
        if not entries:
            continue
        if started:
            out.append("\n")
        line_len = 0
        for e in entries:
            n = e.cell_len
            if line_len > 0 and line_len + len(SEP) + n > width:
                out.append("\n")
                line_len = 0
            elif line_len > 0:
                out.append(SEP)
                line_len += len(SEP)
            out.append_text(e)
            line_len += n
        started = True
    return out


class PackedStatic(Static):
    """A Static showing paragraphs of entries, re-packed to its width."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self._paragraphs: list[list[Text]] = []
        self._plain: Text | None = None

    def set_paragraphs(self, paragraphs: Sequence[Sequence[Text]]) -> None:
        self._paragraphs = [list(p) for p in paragraphs]
        self._plain = None
        self._repack()

    def set_text(self, text: Text | str) -> None:
        self._paragraphs = []
        self._plain = text if isinstance(text, Text) else Text(text)
        self.update(self._plain)

    def _repack(self) -> None:
        if self._plain is not None:
            return
        width = self.content_size.width or self.size.width or 80
        self.update(pack_entries(self._paragraphs, max(10, width)))

    def on_resize(self) -> None:
        self._repack()
