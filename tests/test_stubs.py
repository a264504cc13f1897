"""Typing: the hand-written ``_core.pyi`` matches the extension (stubtest) and the package type-checks."""

import subprocess
import sys


def test_stub_matches_extension() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ntk_tui._core"], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_package_type_checks() -> None:
    """The public Python API is typed: mypy finds no error in the package."""
    out = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
