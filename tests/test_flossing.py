"""Gradient flossing: the differentiable exponents against the analysis' QR method, the loss's gradient against
finite differences, flossing a chaotic and an ordered tanh RNN to 0; the monitor, the task and the figures."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import rnnjax as rj
from rnnjax.analysis.flossing import floss, flossing_loss, lyapunov_exponents
from rnnjax.analysis.monitor import lyapunov_monitor
from rnnjax.data.delayed_xor import CHANCE_BCE, delayed_xor
from rnnjax.plots.training import exponents_in, flossing_curves, lyapunov_and_loss

H = 16
CELL = rj.cells.rnn(H, recurrent_init="gaussian")  # W ~ N(0, 1/h), scaled by the gain below
TX = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
XS = 0.5 * jax.random.normal(jax.random.key(2), (4, 60, 1))  # the flossing trajectories' inputs
CARRY = jax.random.normal(jax.random.key(3), (4, H))  # and their initial states
FRESH = 0.5 * jax.random.normal(jax.random.key(5), (8, 600, 1))  # input streams the flossing never saw


@jax.jit
def fresh_exponents(params):
    """The 3 largest exponents of CELL on FRESH, the mean over the 8 streams (compiled once for every test)."""
    return lyapunov_exponents(CELL, params, FRESH, k=3, warmup=100).mean(0)


def tanh_rnn(gain: float, seed: int = 1):
    params = CELL.init(jax.random.key(seed), 1)
    return params._replace(W=gain * params.W)


@pytest.mark.parametrize(
    "model, lengths",
    [(rj.cells.lstm(3), np.array([12, 7, 9])), (rj.RNN(cell="gru", hidden_size=3, num_layers=2), None)],
    ids=["lstm-cell-lengths", "gru-net-stacked"],
)
def test_exponents_and_the_spectrum_equal_the_qr_method_on_full_jacobians(model, lengths, getkey):
    params = model.init(getkey(), 2)
    xs = jax.random.normal(getkey(), (3, 12, 2))
    k = 3

    @jax.jit
    def both(params):
        ours = lyapunov_exponents(model, params, xs, lengths=lengths, k=k, warmup=4)
        loss = flossing_loss(model, params, xs, lengths=lengths, k=k, warmup=4)
        spectrum = rj.analysis.lyapunov_spectrum(model, params, xs, k=k, warmup=4, lengths=lengths)
        jacobians = rj.analysis.step_jacobians(model, params, xs, lengths=lengths)
        return ours, loss, spectrum, rj.analysis.lyapunov_from_jacobians(jacobians, k, 4, lengths)

    ours, loss, spectrum, reference = both(params)

    np.testing.assert_allclose(ours, reference, atol=2e-5)
    np.testing.assert_allclose(spectrum, reference, atol=2e-5)
    assert np.all(np.diff(np.asarray(ours), axis=-1) <= 0)  # largest first
    np.testing.assert_allclose(loss, np.mean(np.sum(np.asarray(reference) ** 2, -1)), rtol=1e-4)


def test_the_flossing_gradient_matches_finite_differences(x64, getkey):
    cell = rj.cells.rnn(4, recurrent_init="gaussian", gain=1.5, dtype=jnp.float64)
    params = cell.init(getkey(), 1)
    xs = 0.5 * jax.random.normal(getkey(), (2, 15, 1), jnp.float64)

    loss = jax.jit(lambda p: flossing_loss(cell, p, xs, k=2, warmup=3))
    check_grads(loss, (params,), order=1, modes=("rev",), eps=1e-6)


@pytest.mark.parametrize(
    "gain, k, chaotic", [(2.0, 1, True), (0.5, 3, False)], ids=["g=2 (chaotic), k=1", "g=0.5 (ordered), k=3"]
)
def test_flossing_drives_the_targeted_exponents_to_zero(gain, k, chaotic):
    """Tolerance: |lambda_i| <= 0.02 on the flossing trajectories and <= 0.05 on 8 fresh input streams of 600
    steps, from lambda_1 > 0 (g = 2) or all three below -0.7 (g = 0.5), after 200 steps of Adam."""
    params = tanh_rnn(gain)

    flossed = floss(CELL, params, XS, k=k, steps=200, tx=TX, warmup=10, carry=CARRY)

    before, after = fresh_exponents(params)[:k], fresh_exponents(flossed.params)[:k]
    if chaotic:
        assert flossed.exponents[0, 0] > 0.05 and before[0] > 0.02
    else:
        assert np.all(flossed.exponents[0] < -0.7) and np.all(before < -0.7)
    assert np.abs(flossed.exponents[-1]).max() <= 0.02
    assert np.abs(after).max() <= 0.05
    assert flossed.losses.shape == (200,) and flossed.exponents.shape == (201, k)
    assert flossed.losses[-1] < 0.01 * flossed.losses[0]


def test_floss_refuses_bad_arguments_and_reports_a_diverged_run():
    params = tanh_rnn(1.0)
    with pytest.raises(ValueError, match="tx: expected an optax.GradientTransformation"):
        floss(CELL, params, XS, k=1, steps=2, tx="adam")
    with pytest.raises(ValueError, match="steps: expected a positive int"):
        floss(CELL, params, XS, k=1, steps=0, tx=TX)
    with pytest.raises(ValueError, match=r"k: expected an int in \[1, 16\]"):
        floss(CELL, params, XS, k=17, steps=1, tx=TX)
    with pytest.raises(ValueError, match=r"warmup: expected an int in \[0, 59\]"):
        lyapunov_exponents(CELL, params, XS, k=1, warmup=60)
    # Saturated units (tanh' = 0 in float32) have no growth rate: log 0, an infinite loss.
    with pytest.raises(FloatingPointError, match=r"floss: the loss of step 0 \(inf\) is not finite"):
        floss(CELL, params._replace(b=params.b + 1e4), XS, k=1, steps=2, tx=TX, warmup=10, carry=CARRY)


def test_the_monitor_measures_the_exponents_of_the_params_it_is_given(getkey):
    model = rj.models.ManyToOne(rj.RNN(cell="lstm", hidden_size=3), output_size=1)
    params = model.init(getkey(), 2)
    xs = jax.random.normal(getkey(), (2, 16, 2))

    of_model = lyapunov_monitor(lambda p: (model.rnn, p.rnn), xs, k=2, warmup=4)(params)
    of_net = lyapunov_monitor(model.rnn, xs, k=2)(params.rnn)  # warmup: a quarter of the steps, 4

    reference = rj.analysis.lyapunov_spectrum(model.rnn, params.rnn, xs, k=2, warmup=4).mean(0)
    assert list(of_model) == ["lyapunov/1", "lyapunov/2"]
    np.testing.assert_allclose([of_model["lyapunov/1"], of_model["lyapunov/2"]], reference, atol=2e-5)
    np.testing.assert_allclose([of_net["lyapunov/1"], of_net["lyapunov/2"]], reference, atol=2e-5)
    with pytest.raises(ValueError, match="net_of: expected a Cell, an rj.RNN or a function"):
        lyapunov_monitor("lstm", xs)
    with pytest.raises(ValueError, match=r"xs: expected an array \(batch, time, features\)"):
        lyapunov_monitor(model.rnn, xs[0])
    with pytest.raises(ValueError, match=r"k: expected an int in \[1, 6\]"):
        lyapunov_monitor(model.rnn, xs, k=7)(params.rnn)


def test_delayed_xor_targets_are_the_xor_of_the_bits_d_and_2d_steps_back():
    d, T = 3, 40
    xs, ys, mask = delayed_xor(np.random.default_rng(0), 64, T, d, amplitude=2.0)

    bits = (xs[..., 0] / 2.0).astype(int)
    assert set(np.unique(xs)) == {0.0, 2.0} and xs.shape == ys.shape == (64, T, 1) and mask.shape == (64, T)
    for t in range(T):
        expected = bits[:, t - d] ^ bits[:, t - 2 * d] if t >= 2 * d else np.zeros(64, int)
        np.testing.assert_array_equal(ys[:, t, 0], expected)
        assert np.all(mask[:, t] == (t >= 2 * d))
    assert abs(ys[:, 2 * d :].mean() - 0.5) < 0.05 and CHANCE_BCE == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="length: expected more than 2 \\* delay = 6"):
        delayed_xor(np.random.default_rng(0), 1, 6, 3)
    with pytest.raises(ValueError, match="rng: expected a numpy Generator"):
        delayed_xor(0, 1, 10, 3)


def test_the_figures_draw_logged_exponents_against_the_loss(tmp_path):
    history = [{"step": 0, "lyapunov/1": -0.3, "lyapunov/2": -0.5}]
    history += [{"step": s, "loss": 1.0 / s, **({"lyapunov/1": -0.1, "lyapunov/2": -0.2} if s % 5 == 0 else {})}
                for s in range(1, 21)]  # fmt: skip
    assert exponents_in(history) == 2 and exponents_in(history[1:5]) == 0

    path = lyapunov_and_loss({"a": history, "b": history}, tmp_path / "f.png", baseline=("chance", 0.69), window=3,
                             groups={"a": "arm", "b": "arm"})  # fmt: skip
    floss_path = flossing_curves({"a": np.zeros((4, 2))}, tmp_path / "g.png", losses={"a": np.ones(3)})

    assert path.stat().st_size > 1000 and floss_path.stat().st_size > 1000
    with pytest.raises(ValueError, match="no record holds lyapunov/1"):
        lyapunov_and_loss({"a": history[1:5]}, tmp_path / "h.png")
    with pytest.raises(ValueError, match="metric: no record"):
        lyapunov_and_loss({"a": history}, tmp_path / "h.png", metric="eval/accuracy")
    with pytest.raises(ValueError, match=r"expected shape \(steps \+ 1, k\)"):
        flossing_curves({"a": np.zeros(3)}, tmp_path / "h.png")
