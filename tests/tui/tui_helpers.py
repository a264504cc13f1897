"""Helpers of the terminal-app tests (imported by the test modules)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Coroutine


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 30.0, step: float = 0.05) -> float:
    """Pause the pilot until ``condition()`` holds; returns the seconds waited (fails on timeout)."""
    t0 = time.perf_counter()
    while not condition():
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(step)
    return time.perf_counter() - t0


async def set_input(pilot: Any, selector: str, value: str) -> None:
    """Focus an input, replace its text by typing ``value`` like a user."""
    from textual.widgets import Input

    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    await pilot.pause()
    widget.action_select_all()
    await pilot.press("backspace")
    if value:
        await pilot.press(*list(value))
    await pilot.pause()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run an async test scenario (no pytest-asyncio needed)."""
    return asyncio.run(coro)
