"""Data sets for the two-layer network family: synthetic sphere data and file loading.

The theory's bounds for the mean-field network (THEORY.md 4.2, Lemma 2.1 of
the seed) assume bounded inputs ``||x|| <= K``; both :func:`sphere` and
:func:`load` (with ``normalize=True``) return inputs on the unit sphere, so
``K = 1``.

Every bad input raises ``ValueError`` with a message that names what is wrong.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from pathlib import Path
from typing import Callable, Union

import numpy as np
from numpy.typing import NDArray

__all__ = ["TARGETS", "TEACHER_WIDTH", "sphere", "load"]

FloatArray = NDArray[np.float64]
PathLike = Union[str, Path]

#: Accepted ``target`` names of :func:`sphere`.
TARGETS: tuple[str, ...] = ("sin", "linear", "teacher", "sign")

#: Hidden width of the random ``"teacher"`` network.
TEACHER_WIDTH = 8

# Points used to estimate the teacher's output scale (a fixed sample drawn
# from the target stream, so the scale does not depend on n).
_TEACHER_SCALE_SAMPLES = 4096


# --------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer (got {value!r})")
    if int(value) < 1:
        raise ValueError(f"{name} must be a positive integer (got {value!r})")
    return int(value)


def _unit_rows(a: FloatArray) -> FloatArray:
    """Normalise each row of a (Gaussian) array; rows are never exactly 0 in practice."""
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / norms


def _make_target(target: str, d: int, rng: np.random.Generator) -> Callable[[FloatArray], FloatArray]:
    """Build the target function ``x -> y`` for ``target`` from ``rng``."""
    beta = _unit_rows(rng.standard_normal(d))
    if target == "sin":
        return lambda X: np.sin(3.0 * (X @ beta))
    if target == "linear":
        return lambda X: X @ beta
    if target == "sign":
        return lambda X: np.where(X @ beta >= 0.0, 1.0, -1.0)
    # "teacher": random width-8 tanh network, unit variance on the sphere.
    W = rng.standard_normal((TEACHER_WIDTH, d))  # <w_k, x> ~ N(0, 1) on the sphere
    v = rng.standard_normal(TEACHER_WIDTH) / math.sqrt(TEACHER_WIDTH)

    def raw(X: FloatArray) -> FloatArray:
        return np.tanh(X @ W.T) @ v

    ref = _unit_rows(rng.standard_normal((_TEACHER_SCALE_SAMPLES, d)))
    scale = float(np.sqrt(np.mean(raw(ref) ** 2)))
    if scale == 0.0:  # pragma: no cover - probability zero
        scale = 1.0
    return lambda X: raw(X) / scale


def sphere(n: int, d: int, target: str = "sin", seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """``n`` points uniform on the unit sphere ``S^{d-1}`` of ``R^d`` with a target.

    ``X`` rows are normalised standard Gaussians (numpy ``Generator(PCG64)``).
    The target function is drawn from its own child stream of
    ``SeedSequence(seed)``, so for a fixed ``seed`` and ``d`` it does not
    depend on ``n``, and the first rows of ``X`` are the same for every ``n``.

    Targets (``beta`` is a random unit vector of ``R^d``):

    * ``"sin"``: ``y = sin(3 <x, beta>)`` (smooth, non-linear).
    * ``"linear"``: ``y = <x, beta>`` (variance ``1/d``: the easy case for the NTK).
    * ``"teacher"``: ``y = v . tanh(W x)``, a random width-8 tanh network
      (``W``, ``v`` Gaussian), rescaled to unit variance on the sphere (the scale
      is estimated once on a fixed sample of 4096 points from the same seed).
    * ``"sign"``: ``y = sign(<x, beta>)`` (``+1`` on the boundary), ``+-1`` labels,
      discontinuous: a hard target for lazy training.

    Returns ``(X, y)`` with ``X`` of shape ``(n, d)`` and ``y`` of shape ``(n,)``.
    """
    n = _check_count("n", n)
    d = _check_count("d", d)
    if not isinstance(target, str) or target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; accepted: {', '.join(TARGETS)}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
    target_seq, data_seq = np.random.SeedSequence(int(seed)).spawn(2)
    f = _make_target(target, d, np.random.Generator(np.random.PCG64(target_seq)))
    X = _unit_rows(np.random.Generator(np.random.PCG64(data_seq)).standard_normal((n, d)))
    return np.ascontiguousarray(X), np.ascontiguousarray(f(X), dtype=np.float64)


# --------------------------------------------------------------------------
# loading files
# --------------------------------------------------------------------------


def load(path: PathLike, normalize: bool = True) -> tuple[FloatArray, FloatArray]:
    """Load a regression data set ``(X, y)`` from a file.

    Accepted formats (chosen by the extension):

    * ``.npy``: a 2-D numeric array whose last column is ``y`` and whose other
      columns are ``X``; or a structured array with fields ``X`` and ``y``.
    * ``.npz``: arrays named ``X`` and ``y`` (``X`` of shape ``(n, d)`` or
      ``(n,)`` for ``d = 1``; ``y`` of shape ``(n,)`` or ``(n, 1)``).
    * ``.csv`` (also ``.txt``/``.tsv``): numeric table, optional one-line
      header, delimiter ``,`` ``;`` tab or whitespace; last column is ``y``.
      Blank lines and lines starting with ``#`` are skipped.

    ``normalize=True`` (default) scales every row of ``X`` to unit Euclidean
    norm: the theory's constants (Lemma 2.1 of the seed, THEORY.md 4.2) assume
    ``||x|| <= K`` and the Lipschitz upper bounds the engine reports use
    ``K = max ||x||``; unit rows make ``K = 1`` and keep the pre-activations
    ``sqrt(m) <x, u_i>`` of order one. A row of zeros cannot be normalised and
    is an error. ``y`` is never rescaled.

    Returns float64 arrays ``X`` (n, d) and ``y`` (n,), with ``n, d >= 1``.
    Raises ``ValueError`` for a missing file, an unknown extension, a wrong
    shape, fewer than 2 columns, no rows, or NaN/inf in the data.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"data file not found: {str(p)!r}")
    if not p.is_file():
        raise ValueError(f"data path is not a file: {str(p)!r}")
    ext = p.suffix.lower()
    if ext == ".npy":
        X, y = _load_npy(p)
    elif ext == ".npz":
        X, y = _load_npz(p)
    elif ext in (".csv", ".txt", ".tsv"):
        X, y = _split_table(_read_csv(p), str(p))
    else:
        raise ValueError(
            f"unsupported data file extension {ext or '(none)'!r} for {str(p)!r}; "
            "accepted: .npy, .npz, .csv (.txt, .tsv)"
        )
    return _finish(X, y, str(p), normalize)


def _load_npy(p: Path) -> tuple[FloatArray, FloatArray]:
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as exc:  # corrupt file, pickled objects, ...
        raise ValueError(f"cannot read {str(p)!r} as a .npy array: {exc}") from None
    if arr.dtype.names is not None:
        names = set(arr.dtype.names)
        if not {"X", "y"} <= names:
            raise ValueError(
                f"structured array in {str(p)!r} must have fields 'X' and 'y' "
                f"(has {', '.join(sorted(names))})"
            )
        if arr.ndim != 1:
            raise ValueError(f"structured array in {str(p)!r} must be 1-D (got shape {arr.shape})")
        return _as_float(arr["X"], "X", str(p)), _as_float(arr["y"], "y", str(p))
    return _split_table(_as_float(arr, "array", str(p)), str(p))


def _load_npz(p: Path) -> tuple[FloatArray, FloatArray]:
    try:
        with np.load(p, allow_pickle=False) as z:
            files = list(z.files)
            if "X" not in files or "y" not in files:
                raise ValueError(
                    f"{str(p)!r} must contain arrays named 'X' and 'y' "
                    f"(has {', '.join(files) or 'nothing'})"
                )
            X, y = z["X"], z["y"]
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"cannot read {str(p)!r} as a .npz archive: {exc}") from None
    return _as_float(X, "X", str(p)), _as_float(y, "y", str(p))


def _as_float(a: np.ndarray, what: str, src: str) -> FloatArray:
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} in {src!r} is not numeric (dtype {a.dtype})") from None


def _split_table(table: FloatArray, src: str) -> tuple[FloatArray, FloatArray]:
    """Split a 2-D table into ``X`` (all but last column) and ``y`` (last column)."""
    if table.ndim != 2:
        raise ValueError(
            f"data in {src!r} must be a 2-D table (rows = samples, last column = y); "
            f"got shape {table.shape}"
        )
    if table.shape[0] == 0:
        raise ValueError(f"data in {src!r} has no rows (n = 0)")
    if table.shape[1] < 2:
        raise ValueError(
            f"data in {src!r} needs at least 2 columns (features and the target y); "
            f"got {table.shape[1]}"
        )
    return table[:, :-1], table[:, -1]


def _read_csv(p: Path) -> FloatArray:
    """Parse a numeric text table with an optional header line."""
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {str(p)!r} as text: {exc}") from None
    lines = [
        (i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise ValueError(f"data in {str(p)!r} has no rows (n = 0)")
    delim = _delimiter(lines[0][1])
    rows: list[list[float]] = []
    for k, (lineno, line) in enumerate(lines):
        fields = _fields(line, delim)
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            if k == 0:  # header
                continue
            raise ValueError(f"non-numeric value on line {lineno} of {str(p)!r}: {line.strip()!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise ValueError(
                f"line {lineno} of {str(p)!r} has {len(rows[-1])} columns, expected {len(rows[0])}"
            )
    if not rows:
        raise ValueError(f"data in {str(p)!r} has no rows (n = 0)")
    return np.asarray(rows, dtype=np.float64)


def _delimiter(line: str) -> str | None:
    for d in (",", ";", "\t"):
        if d in line:
            return d
    return None  # whitespace


def _fields(line: str, delim: str | None) -> list[str]:
    if delim is None:
        return line.split()
    row = next(csv.reader(io.StringIO(line), delimiter=delim))
    return [f.strip() for f in row]


def _finish(X: FloatArray, y: FloatArray, src: str, normalize: bool) -> tuple[FloatArray, FloatArray]:
    """Check shapes and values, optionally normalise rows of X."""
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X in {src!r} must have shape (n, d); got {X.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y in {src!r} must have shape (n,); got {y.shape}")
    n, d = X.shape
    if n == 0:
        raise ValueError(f"data in {src!r} has no rows (n = 0)")
    if d == 0:
        raise ValueError(f"X in {src!r} has no feature columns (d = 0)")
    if y.shape[0] != n:
        raise ValueError(f"X and y in {src!r} have different numbers of rows ({n} and {y.shape[0]})")
    for name, a in (("X", X), ("y", y)):
        bad = ~np.isfinite(a)
        if bad.any():
            idx = np.argwhere(bad)[0]
            kind = "NaN" if np.isnan(a[tuple(idx)]) else "inf"
            raise ValueError(f"{name} in {src!r} contains {kind} (first at index {tuple(int(i) for i in idx)})")
    if normalize:
        norms = np.linalg.norm(X, axis=1)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValueError(
                f"row {int(zero[0])} of X in {src!r} is all zeros and cannot be normalised "
                "(pass normalize=False to keep raw inputs)"
            )
        X = X / norms[:, None]
    return np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64)
