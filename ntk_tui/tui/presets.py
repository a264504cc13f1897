"""Presets: one keystroke reproduces a statement of the paper.

This module is imported by the command line (``ntk-tui --help`` lists
:data:`PRESETS`), so it must not import Textual or the engine.

Each preset fills the run form (model and integrator) and, for the sweep
presets, the sweep form; then it starts the run or the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PRESETS", "Preset", "PRESET_SPECS", "preset_names", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """A named configuration of the lab.

    ``screen``: ``"run"`` or ``"sweep"`` (where it opens and what it starts);
    ``form``: values of the model/integrator form (keys of
    :mod:`ntk_tui.tui.config`); ``sweep``: values of the sweep form.
    """

    name: str
    key: str
    title: str
    description: str
    screen: str
    form: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] = field(default_factory=dict)


PRESET_SPECS: tuple[Preset, ...] = (
    Preset(
        name="converse",
        key="1",
        title="Theorem 1.3 converse",
        description=(
            "The converse model h(w) = a w + (b/2) w^2 at kappa = 1: the measured gap at T "
            "sits between Theorem 1.3's lower bound and Theorem 1.2's upper bound."
        ),
        screen="run",
        form=dict(family="converse", alpha=100.0, T=100.0, R0=1.0, lip_dh=1.0, sign=1),
    ),
    Preset(
        name="cor22",
        key="2",
        title="Corollary 2.2 mean-field, T/alpha law",
        description=(
            "Two-layer tanh network (m 256, n 32, d 4, centred) at T = 10, alpha swept from "
            "10 to 1000: gap(T) falls like T/alpha, slope -1 on log-log axes."
        ),
        screen="sweep",
        form=dict(
            family="twolayer", alpha=100.0, T=10.0, m=256, n=32, d=4, activation="tanh",
            data="sin", seed=0, centered=True,
        ),
        sweep=dict(variable="alpha", start=10.0, stop=1000.0, count=7, seeds=2, t_mode="fixed"),
    ),
    Preset(
        name="ntk-width",
        key="3",
        title="NTK parametrization width sweep",
        description=(
            "Training sqrt(m) f_w is lazy training with alpha = sqrt(m): width m swept from "
            "16 to 1024 at T = 10; Theorem 1.2 bounds gap(T) by O(T/sqrt m), slope -1/2 against m "
            "(the measured slope shows how tight that is)."
        ),
        screen="sweep",
        form=dict(
            family="twolayer", alpha=16.0, T=10.0, m=256, n=32, d=4, activation="tanh",
            data="sin", seed=0, centered=True,
        ),
        sweep=dict(variable="width", start=16.0, stop=1024.0, count=7, seeds=2, t_mode="fixed"),
    ),
    Preset(
        name="lazy-edge",
        key="4",
        title="edge of the lazy regime (T = C alpha)",
        description=(
            "Two-layer network trained for T = C alpha (C = 5), alpha from 10 to 1000: kappa "
            "stays fixed, so Theorem 1.2's bound no longer falls with alpha (slope 0) while "
            "Chizat's T^2/alpha bound grows; compare with the measured slope."
        ),
        screen="sweep",
        form=dict(
            family="twolayer", alpha=100.0, T=500.0, m=128, n=32, d=4, activation="tanh",
            data="sin", seed=0, centered=True,
        ),
        sweep=dict(variable="alpha", start=10.0, stop=1000.0, count=5, seeds=1, t_mode="scaled", C=5.0),
    ),
)

#: Preset name -> one-line description (used by ``ntk-tui --help`` and ``--preset``).
PRESETS: dict[str, str] = {p.name: f"{p.title}: {p.description}" for p in PRESET_SPECS}


def preset_names() -> list[str]:
    """Names accepted by ``--preset``."""
    return [p.name for p in PRESET_SPECS]


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (also accepts its key ``1``-``4`` or its title)."""
    for p in PRESET_SPECS:
        if name in (p.name, p.key) or name.lower() == p.title.lower():
            return p
    raise ValueError(f"unknown preset {name!r}; accepted: {', '.join(preset_names())}")
