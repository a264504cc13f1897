"""Every bad input gets a ValueError naming the parameter and what is accepted."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ntk_tui as nt

X, Y = nt.datasets.sphere(6, 3, seed=0)
NET = nt.TwoLayer(X, Y, m=8)
NAN = float("nan")
INF = float("inf")
# finite initial weights whose kernel K0 overflows
HUGE = nt.TwoLayer(X, Y, m=8, w0=np.r_[np.full(8, 1e160), np.full(24, 0.01)])


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: nt.simulate(NET, 0.0, 1.0), ["alpha", "positive"]),
        (lambda: nt.simulate(NET, -3.0, 1.0), ["alpha", "-3"]),
        (lambda: nt.simulate(NET, NAN, 1.0), ["alpha"]),
        (lambda: nt.simulate(NET, INF, 1.0), ["alpha"]),
        (lambda: nt.simulate(NET, 1.0, 0.0), ["T", "positive"]),
        (lambda: nt.simulate(NET, 1.0, -1.0), ["T"]),
        (lambda: nt.simulate(NET, 1.0, INF), ["T"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, [0.5, 0.2]), ["times", "sorted"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, [0.5, 2.0]), ["times", "[0, T]"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, [-0.1, 0.5]), ["times", "[0, T]"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, [NAN]), ["times", "finite"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, []), ["times"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, [[0.5]]), ["times", "1-D"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, rtol=-1e-8), ["rtol"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, atol=-1.0), ["atol"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, method="euler"), ["method", "dop853", "dopri5", "rodas4"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, max_steps=0), ["max_steps"]),
        (lambda: nt.simulate(nt.Quadratic(300, 3), 1.0, 1.0, method="rodas4"), ["method", "rodas4", "200", "300"]),
        (lambda: nt.Simulation(nt.Quadratic(300, 3), 1.0, 1.0, method="rodas4"), ["method", "rodas4", "200"]),
        (lambda: nt.simulate_batch([NET, nt.Quadratic(300, 3)], [1.0], 1.0, method="rodas4"), ["method", "300"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, metrics=["gapp"]), ["metrics", "accepted"]),
        (lambda: nt.simulate("not a model", 1.0, 1.0), ["model"]),
        (lambda: nt.TwoLayer(X, Y, m=0), ["m", "at least 1"]),
        (lambda: nt.TwoLayer(X, Y, m=8, activation="gelu"), ["activation", "tanh, sigmoid, erf, softplus"]),
        (lambda: nt.TwoLayer(X, Y, m=8, activation="relu"), ["activation", "relu", "Lip(Dh)", "softplus"]),
        (lambda: nt.TwoLayer(X, Y[:-1], m=8), ["y", "n"]),
        (lambda: nt.TwoLayer(np.where(X > 0.5, NAN, X), Y, m=8), ["X", "finite"]),
        (lambda: nt.TwoLayer(X, np.full_like(Y, INF), m=8), ["y", "finite"]),
        (lambda: nt.TwoLayer(X, Y, m=8, w0=np.zeros(5)), ["w0", "m*(d+1)"]),
        (lambda: nt.TwoLayer(X, Y, m=10**12), ["m"]),
        (lambda: nt.TwoLayer(np.zeros((0, 3)), np.zeros(0), m=4), ["n", "at least 1"]),
        (lambda: nt.Converse(T=-1.0, R0=1.0, lip_dh=1.0), ["T"]),
        (lambda: nt.Converse(T=1.0, R0=0.0, lip_dh=1.0), ["R0"]),
        (lambda: nt.Converse(T=1.0, R0=1.0, lip_dh=NAN), ["lip_dh"]),
        (lambda: nt.Converse(T=1.0, R0=1.0, lip_dh=1.0, sign=0), ["sign", "1 or -1"]),
        (lambda: nt.Quadratic(0, 3), ["p"]),
        (lambda: nt.Quadratic(10**6, 3), ["p", "at most"]),
        (lambda: nt.Quadratic(4, 3, lip_dh=-1.0), ["lip_dh"]),
        (lambda: nt.Linear(3, 0), ["n"]),
        (lambda: NET.h(np.zeros(3)), ["w", "p ="]),
        (lambda: NET.r0(-1.0), ["alpha"]),
        (lambda: nt.simulate_batch([NET], [1.0, -2.0], 1.0), ["alpha"]),
        (lambda: nt.simulate_batch([], [1.0], 1.0), ["models"]),
        (lambda: nt.simulate_batch([NET], [1.0], 1.0, threads=0), ["threads"]),
        (lambda: nt.simulate_batch([NET, NET], [1.0], 1.0, paired=True), ["alphas", "paired"]),
        (lambda: nt.lemma_3_3(np.eye(2), np.eye(3), 1.0), ["B", "shape"]),
        (lambda: nt.lemma_3_3(np.eye(2), np.eye(2), -1.0), ["t"]),
        (lambda: nt.Simulation(NET, 1.0, 1.0).advance(max_seconds=-1.0), ["max_seconds"]),
        (lambda: nt.Simulation(NET, 1.0, 1.0).advance(max_points=1.5), ["max_points"]),
        (lambda: nt.TwoLayer(X, Y[:, None], m=8), ["y", "1-D", "(6, 1)"]),
        (lambda: nt.TwoLayer(X[0], Y, m=8), ["X", "2-D"]),
        (lambda: nt.TwoLayer(X, Y, m=-3), ["m", "whole number", "-3"]),
        (lambda: nt.TwoLayer(X, Y, m=2**64), ["m", "whole number"]),
        (lambda: nt.TwoLayer(X, Y, m=2.5), ["m", "2.5"]),
        (lambda: nt.TwoLayer(X, Y, m=8, seed=-1), ["seed"]),
        (lambda: nt.Quadratic(-1, 3), ["p", "whole number"]),
        (lambda: nt.Linear(3, -2), ["n", "whole number"]),
        (lambda: nt.Converse(1.0, 1.0, 1.0, sign=2**40), ["sign", "1 or -1"]),
        (lambda: nt.simulate(NET, "abc", 1.0), ["alpha", "'abc'"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, atol=0.0), ["atol", "positive"]),
        (lambda: nt.simulate(NET, 1.0, 1.0, max_steps=2**70), ["max_steps"]),
        (lambda: nt.simulate(HUGE, 1.0, 1.0), ["model", "K0", "not finite"]),
        (lambda: nt.Simulation(HUGE, 1.0, 1.0), ["model", "K0", "not finite"]),
        (lambda: nt.simulate_batch([NET], [1.0], 1.0, threads=10**4), ["threads", "1024"]),
        (lambda: nt.simulate_batch([NET], [1.0], 1.0, threads="2"), ["threads"]),
        (lambda: nt.start_batch([NET], [1.0], 1.0).wait(NAN), ["timeout"]),
        (lambda: nt.start_batch([NET], [1.0], 1.0).wait(-1.0), ["timeout"]),
        (lambda: nt.lemma_3_3(np.eye(3) * 1e200, np.eye(3), 1.0), ["A^T A", "not finite"]),
        (lambda: nt.simulate_batch([NET], [1.0], 1.0).scalar("family"), ["name", "kappa"]),
    ],
)
def test_bad_input_names_parameter(call, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        call()
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def test_flags_are_not_coerced() -> None:
    with pytest.raises(TypeError, match="centered: must be True or False"):
        nt.TwoLayer(X, Y, m=8, centered=0)
    with pytest.raises(TypeError, match="m: must be an integer"):
        nt.TwoLayer(X, Y, m=True)


def test_array_likes_are_converted() -> None:
    """Lists, other dtypes and layouts give the model that float64 C arrays give."""
    for Xa, Ya in [(X.tolist(), Y.tolist()), (np.asfortranarray(X), Y[::-1][::-1]), (X.astype(np.longdouble), Y)]:
        net = nt.TwoLayer(Xa, Ya, m=8)
        np.testing.assert_array_equal(net.kernel0(), NET.kernel0())
        np.testing.assert_array_equal(net.h(NET.w0.tolist()), NET.h(NET.w0))


def test_nothing_crashes_the_interpreter() -> None:
    """A battery of hostile inputs in a child process: it must end normally."""
    code = textwrap.dedent(
        """
        import numpy as np, ntk_tui as nt
        X, y = nt.datasets.sphere(4, 2)
        bad = [
            lambda: nt.TwoLayer(X.T, y, m=3),
            lambda: nt.TwoLayer(X.astype(np.float32), y, m=3),
            lambda: nt.TwoLayer(np.asfortranarray(X), y, m=3, w0=np.full(9, 1e300)),
            lambda: nt.simulate(nt.TwoLayer(X, y * 1e300, m=3), 1e-300, 1e300),
            lambda: nt.simulate(nt.Converse(1e-300, 1e300, 1e300), 1e300, 1e-300, [0.0]),
            lambda: nt.simulate(nt.Quadratic(3, 2, lip_dh=1e200), 1e-5, 1e5, max_steps=50),
            lambda: nt.Simulation(nt.Linear(2, 2), 1.0, 1.0).advance(max_points=0),
            lambda: nt.lemma_3_3(np.zeros((0, 0)), np.zeros((0, 0)), 1.0),
        ]
        for f in bad:
            try:
                f()
            except (ValueError, nt.IntegrationError, TypeError, OverflowError):
                pass
        print("survived")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "survived" in out.stdout
