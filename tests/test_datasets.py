"""Tests of ntk_tui.datasets: synthetic sphere data and file loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ntk_tui.datasets as D


# --------------------------------------------------------------------------
# sphere
# --------------------------------------------------------------------------


@pytest.mark.parametrize("target", D.TARGETS)
def test_sphere_shapes_and_unit_norms(target: str) -> None:
    X, y = D.sphere(50, 7, target=target, seed=3)
    assert X.shape == (50, 7) and y.shape == (50,)
    assert X.dtype == np.float64 and y.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-14)  # round-off only
    assert np.all(np.isfinite(y))


def test_sphere_is_deterministic_by_seed() -> None:
    X1, y1 = D.sphere(20, 4, "teacher", seed=5)
    X2, y2 = D.sphere(20, 4, "teacher", seed=5)
    X3, y3 = D.sphere(20, 4, "teacher", seed=6)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.allclose(X1, X3) and not np.allclose(y1, y3)


def test_sphere_prefix_and_target_do_not_depend_on_n() -> None:
    X10, y10 = D.sphere(10, 3, "sin", seed=1)
    X30, y30 = D.sphere(30, 3, "sin", seed=1)
    assert np.array_equal(X10, X30[:10]) and np.array_equal(y10, y30[:10])


def test_sphere_targets_share_beta_and_match_their_formulas() -> None:
    X, lin = D.sphere(40, 5, "linear", seed=2)
    _, s = D.sphere(40, 5, "sin", seed=2)
    _, sg = D.sphere(40, 5, "sign", seed=2)
    beta, *_ = np.linalg.lstsq(X, lin, rcond=None)
    assert np.linalg.norm(beta) == pytest.approx(1.0, rel=1e-10)  # a unit vector (exact linear data)
    np.testing.assert_allclose(s, np.sin(3.0 * lin), rtol=1e-13, atol=1e-15)
    assert np.array_equal(sg, np.where(lin >= 0, 1.0, -1.0))


def test_sphere_is_uniform_and_teacher_has_unit_variance() -> None:
    n, d = 20000, 4
    X, y = D.sphere(n, d, "teacher", seed=0)
    # E[x] = 0 and E[x x^T] = I/d on the sphere; the Monte-Carlo standard error of each
    # entry is below 1/sqrt(n) = 0.007, so 0.03 is > 4 standard errors
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(X.T @ X / n, np.eye(d) / d, atol=0.03)
    # teacher scaled to unit variance on a separate 4096-point sample: the two estimates
    # differ by O(sqrt(2/4096) + sqrt(2/n)) ~ 0.03 (times the kurtosis factor); allow 0.1
    assert np.var(y) == pytest.approx(1.0, abs=0.1)


def test_sphere_d1_is_plus_minus_one() -> None:
    X, _ = D.sphere(30, 1, "linear", seed=0)
    assert set(np.unique(X).tolist()) <= {-1.0, 1.0}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(n=0, d=3), "n must be a positive integer"),
        (dict(n=-2, d=3), "n must be a positive integer"),
        (dict(n=2.5, d=3), "n must be a positive integer"),
        (dict(n=True, d=3), "n must be a positive integer"),
        (dict(n=5, d=0), "d must be a positive integer"),
        (dict(n=5, d=3, seed=-1), "seed must be a non-negative integer"),
        (dict(n=5, d=3, target="cos"), "unknown target 'cos'; accepted: sin, linear, teacher, sign"),
    ],
)
def test_sphere_bad_inputs(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        D.sphere(**kwargs)


# --------------------------------------------------------------------------
# load: round trips
# --------------------------------------------------------------------------


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.standard_normal((9, 3)) * 4.0
    y = rng.standard_normal(9)
    return X, y


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_load_npy_table(tmp_path: Path, data) -> None:
    X, y = data
    p = tmp_path / "d.npy"
    np.save(p, np.column_stack([X, y]))
    Xl, yl = D.load(p, normalize=False)
    assert np.array_equal(Xl, X) and np.array_equal(yl, y)
    Xn, yn = D.load(str(p))
    np.testing.assert_allclose(Xn, _unit(X), rtol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(Xn, axis=1), 1.0, rtol=1e-14)
    assert np.array_equal(yn, y)  # y is never rescaled


def test_load_npy_structured(tmp_path: Path, data) -> None:
    X, y = data
    arr = np.zeros(len(y), dtype=[("X", "f8", (3,)), ("y", "f8")])
    arr["X"], arr["y"] = X, y
    p = tmp_path / "s.npy"
    np.save(p, arr)
    Xl, yl = D.load(p, normalize=False)
    assert np.array_equal(Xl, X) and np.array_equal(yl, y)


def test_load_npz(tmp_path: Path, data) -> None:
    X, y = data
    p = tmp_path / "d.npz"
    np.savez(p, X=X, y=y[:, None])  # y as a column is accepted
    Xl, yl = D.load(p, normalize=False)
    assert np.array_equal(Xl, X) and np.array_equal(yl, y)
    np.savez(tmp_path / "one.npz", X=X[:, 0], y=y)  # 1-D X means d = 1
    X1, _ = D.load(tmp_path / "one.npz", normalize=False)
    assert X1.shape == (9, 1)


@pytest.mark.parametrize("header", [True, False])
def test_load_csv(tmp_path: Path, data, header: bool) -> None:
    X, y = data
    p = tmp_path / "d.csv"
    lines = ["x1,x2,x3,target"] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in np.column_stack([X, y])]
    p.write_text("\n".join(lines) + "\n\n")
    Xl, yl = D.load(p, normalize=False)
    assert np.array_equal(Xl, X) and np.array_equal(yl, y)  # repr() round-trips exactly


def test_load_whitespace_txt_with_comments(tmp_path: Path) -> None:
    p = tmp_path / "d.txt"
    p.write_text("# comment\n3 4 1.5\n  0 2 -1\n")
    X, y = D.load(p)
    np.testing.assert_allclose(X, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-15)
    np.testing.assert_allclose(y, [1.5, -1.0])


# --------------------------------------------------------------------------
# load: errors
# --------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, content) -> Path:
    p = tmp_path / name
    if isinstance(content, str):
        p.write_text(content)
    elif isinstance(content, dict):
        np.savez(p, **content)
    else:
        np.save(p, content)
    return p


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("a.npy", np.arange(5.0), "must be a 2-D table"),
        ("a.npy", np.ones((4, 1)), "at least 2 columns"),
        ("a.npy", np.ones((0, 3)), "no rows"),
        ("a.npy", np.array([[1.0, 2.0], [np.nan, 1.0]]), "X .* contains NaN"),
        ("a.npy", np.array([[1.0, 2.0], [3.0, np.inf]]), "y .* contains inf"),
        ("a.npy", np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 3.0]]), "row 0 of X .* all zeros"),
        ("a.npy", np.array([["a", "b"]]), "not numeric"),
        ("a.npz", {"X": np.ones((3, 2))}, "must contain arrays named 'X' and 'y'"),
        ("a.npz", {"X": np.ones((3, 2)), "y": np.ones(4)}, "different numbers of rows"),
        ("a.npz", {"X": np.ones((3, 2, 2)), "y": np.ones(3)}, "X .* must have shape"),
        ("a.npz", {"X": np.ones((3, 0)), "y": np.ones(3)}, "d = 0"),
        ("a.npz", {"X": np.ones((3, 2)), "y": np.ones((3, 2))}, "y .* must have shape"),
        ("a.csv", "", "no rows"),
        ("a.csv", "x,y\n", "no rows"),
        ("a.csv", "1,2\n3\n", "line 2 .* has 1 columns, expected 2"),
        ("a.csv", "1,2\nfoo,3\n", "non-numeric value on line 2"),
        ("a.csv", "1\n2\n", "at least 2 columns"),
        ("a.csv", "1,2\nnan,3\n", "X .* contains NaN"),
        ("a.json", "{}", "unsupported data file extension '.json'"),
    ],
)
def test_load_bad_inputs(tmp_path: Path, name: str, content, words: str) -> None:
    p = _write(tmp_path, name, content)
    with pytest.raises(ValueError, match=words):
        D.load(p)


def test_load_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data file not found"):
        D.load(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="not a file"):
        D.load(tmp_path)


def test_load_structured_without_fields(tmp_path: Path) -> None:
    arr = np.zeros(3, dtype=[("a", "f8"), ("y", "f8")])
    p = _write(tmp_path, "s.npy", arr)
    with pytest.raises(ValueError, match="fields 'X' and 'y'"):
        D.load(p)
