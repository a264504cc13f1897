"""The hand-written ``_core.pyi`` matches the compiled extension (mypy's stubtest)."""

import subprocess
import sys


def test_stub_matches_extension() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ntk_tui._core"], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr
