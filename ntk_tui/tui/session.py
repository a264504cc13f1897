"""The runs and sweeps of this session (kept even when they cannot be saved)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SessionItem"]


@dataclass
class SessionItem:
    """A run or sweep of this session (kept even if it could not be saved)."""

    kind: str  # "run" | "sweep"
    obj: Any
    label: str
    status: str
    store_id: int | None = None
    config: Any = None
    summary: Any = None
    created: float = field(default_factory=time.time)
