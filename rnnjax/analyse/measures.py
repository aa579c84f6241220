"""The measurements of one layer and direction of a trained network, on the inputs it sees.

For the state ``a_t`` of the layer (the carry's leaves as one vector, ``[h, C]`` for the LSTM;
:mod:`rnnjax.analysis.systems`) along each probe sequence, counting back from the sequence's own end
``t = L`` (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013, "On the difficulty of training
recurrent neural networks"):

- ``||da_L/da_(L-lag)||`` (the largest singular value of the product of step Jacobians
  ``J_L ... J_(L-lag+1)``) against the lag, up to ``max_lag``, and its fitted exponential rate per step;
- the singular values of the same products at a few lags;
- the Lyapunov spectrum along the probe (QR method; Benettin et al. 1980, as used for RNNs by Engelken,
  Wolf & Abbott 2020), after a warmup that the shortest sequence leaves room for;
- how far back the gradient reaches: ``||dL/da_(L-lag)||`` for ``L = u . y_L``, a fixed random unit
  direction ``u`` of the network's output after reading the whole sequence (each direction's last step, what
  a many-to-one head with ``pool="last"`` reads);
- for gated cells, the gates' statistics (:func:`rnnjax.analysis.gate_traces`);
- for states of at most ``max_fixed_point_state`` entries, the fixed points of the autonomous layer (zero
  input; Sussillo & Barak 2013) with :mod:`rnnjax.analysis.fixed_points`, when that module is installed.
"""

from __future__ import annotations

import functools
import importlib
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from threadpoolctl import threadpool_limits

from rnnjax import analysis
from rnnjax.analyse.networks import Network
from rnnjax.analysis.spectra import out_of_range
from rnnjax.analysis.systems import check_net_params, state_vector
from rnnjax.models.layers import last_outputs
from rnnjax.network import RNN

__all__ = ["GateStats", "Measures", "Settings", "fixed_points_module", "measure", "spectrum_lags"]

DIRECTIONS = ("forward", "backward")


class Settings(NamedTuple):
    """What :func:`measure` computes and how much (the fields of :class:`rnnjax.analyse.Config` it reads)."""

    max_lag: int = 100
    lag_points: int = 51
    exponents: int = 32
    warmup: int = 50
    fixed_points: bool = True
    max_fixed_point_state: int = 64
    fixed_point_starts: int = 64
    fixed_point_steps: int = 5000


class GateStats(NamedTuple):
    """One gate's values over the probe's valid steps and units.

    ``bounds`` is what the values' range says the gate is: ``"[0, 1]"`` (a sigmoid gate: ``low`` is the
    share below 0.05, closed, ``high`` above 0.95, open), ``"[-1, 1]"`` (a tanh candidate: below -0.95 and
    above 0.95) or ``"unbounded"`` (no saturation: ``low`` and ``high`` are NaN)."""

    mean: float
    std: float
    bounds: str
    low: float
    high: float
    values: np.ndarray


class Measures(NamedTuple):
    """What :func:`measure` found for one layer and direction; NaN marks what does not exist."""

    label: str
    cell: str
    state_size: int
    sequences: int
    steps: int
    lags: np.ndarray
    """``(L,)`` the lags measured, 0..``max_lag``."""
    norms: np.ndarray
    """``(batch, L)``: ``||da_end/da_(end - lag)||``; NaN beyond a sequence's length."""
    rate: np.ndarray
    """``(batch,)``: the slope of ``log norm`` against the lag (per step)."""
    out_of_range: int
    """Lags whose product left the dtype's range (left out of the rates)."""
    spectra: dict[int, np.ndarray]
    """``{lag: (batch, n)}`` singular values of ``da_end/da_(end - lag)``, largest first."""
    lyapunov: np.ndarray
    """``(batch, k)``, largest first."""
    warmup: int
    reach: np.ndarray
    """``(max_lag + 1,)``: mean over sequences of ``||dL/da_(end - lag)||``."""
    gates: dict[str, GateStats] | None
    """None for a cell without gates."""
    fixed: Any
    """A :class:`rnnjax.analysis.fixed_points.FixedPoints`, or a string that says why there are none."""
    states: np.ndarray
    """``(batch, time + 1, n)``: the states along the probe, in the order the steps run (NaN after each end)."""
    seconds: float


def fixed_points_module() -> Any:
    """:mod:`rnnjax.analysis.fixed_points` when it is installed, else None (fixed points are then skipped)."""
    try:
        return importlib.import_module("rnnjax.analysis.fixed_points")
    except ImportError:
        return None


def label_of(network: Network, layer: int, direction: int) -> str:
    """``"rnn"``, or ``"encoder, layer 1, backward"`` where the net has more than one layer or direction."""
    parts = [network.name]
    if network.net.num_layers > 1:
        parts.append(f"layer {layer}")
    if network.net.bidirectional:
        parts.append(DIRECTIONS[direction])
    return ", ".join(parts)


def spectrum_lags(max_lag: int) -> list[int]:
    """The lags whose singular values are shown: 1, a quarter, half and all of ``max_lag`` (distinct)."""
    return sorted({lag for lag in (1, max_lag // 4, max_lag // 2, max_lag) if lag >= 1})


def _lags(m: int, points: int) -> np.ndarray:
    chosen = np.unique(np.round(np.linspace(0, m, max(2, min(points, m + 1)))).astype(int))
    return np.union1d(chosen, spectrum_lags(m)).astype(int) if m >= 1 else chosen


def _window(jac: jax.Array, ends: jax.Array, m: int) -> jax.Array:
    """``(batch, m, n, n)``: each sequence's last ``m`` step Jacobians ``J_(end-m+1) .. J_end`` (identity before
    its first step), so that the products of :func:`rnnjax.analysis.jacobian_products` count back from its end."""
    index = ends[:, None] - m + jnp.arange(m)[None, :]  # entry i of jac is J_(i+1)
    picked = jnp.take_along_axis(jac, jnp.maximum(index, 0)[..., None, None], axis=1)
    eye = jnp.eye(jac.shape[-1], dtype=jac.dtype)
    return jnp.where((index >= 0)[..., None, None], picked, eye)


@functools.partial(jax.jit, static_argnames=("net", "layer", "direction", "m", "lags", "k", "warmup", "gated"))
def _compute(
    net: RNN, params: Any, xs: jax.Array, carry: Any, lengths: jax.Array | None, *, layer: int, direction: int,
    m: int, lags: tuple[int, ...], k: int, warmup: int, gated: bool,
) -> dict[str, Any]:  # fmt: skip
    """Everything of :func:`measure` that runs on the device, in one compiled program (op by op, the many small
    programs took most of the time to compile)."""
    where = dict(layer=layer, direction=direction)
    jac = analysis.step_jacobians(net, params, xs, carry, lengths, **where)
    ends = jnp.full(xs.shape[0], xs.shape[1]) if lengths is None else lengths
    products = analysis.jacobian_products(_window(jac, ends, m))  # entry m - lag: da_end/da_(end - lag)
    out = {"products": products[:, m - jnp.asarray(lags)]}
    out["lyapunov"] = analysis.lyapunov_from_jacobians(jac, k, warmup, lengths)

    u = jax.random.normal(jax.random.key(0), (net.output_size,), xs.dtype)
    u = u / jnp.linalg.norm(u)

    def loss(ys: jax.Array, finals: Any) -> jax.Array:
        del finals
        return jnp.sum(last_outputs(ys, lengths, net.num_directions) @ u)

    grads = analysis.state_gradients(net, params, xs, loss, carry, lengths, **where)
    back = ends[:, None] - 1 - jnp.arange(m + 1)[None, :]  # in the order the steps run: the last is end - 1
    picked = jnp.take_along_axis(grads, jnp.maximum(back, 0)[..., None], axis=1)
    out["reach"] = analysis.gradient_reach(jnp.where((back >= 0)[..., None], picked, jnp.nan))
    out["states"] = analysis.trajectory(net, params, xs, carry, lengths, **where)
    if gated:
        out["gates"] = analysis.gate_traces(net, params, xs, carry, lengths, **where)
    return out


@jax.jit
def _fit(lags: jax.Array, norms: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The fitted rates (:func:`rnnjax.analysis.fit_rate`, lags >= 1) and the lags out of the dtype's range."""
    rate, _ = analysis.fit_rate(lags, norms, valid=valid, warn=False)
    return (rate, *out_of_range(norms, valid))


def _singular_values(matrices: np.ndarray) -> np.ndarray:
    """Singular values of ``(..., n, n)``, NaN for a matrix with Inf or NaN. On the host, one BLAS thread: the
    CPU's multithreaded SVD ran ~25 times slower on this 2-core machine under load, its threads fighting."""
    matrices = np.asarray(matrices)
    out = np.full(matrices.shape[:-1], np.nan, matrices.dtype)
    finite = np.isfinite(matrices).all(axis=(-2, -1))
    with threadpool_limits(1):
        out[finite] = np.linalg.svd(matrices[finite], compute_uv=False)
    return out


def _gate_stats(traces: dict[str, jax.Array], states: set[str]) -> dict[str, GateStats]:
    stats = {}
    for name, trace in traces.items():
        if name in states:
            continue
        v = np.asarray(trace, np.float64)
        v = v[np.isfinite(v)]
        lo, hi = (float(v.min()), float(v.max())) if v.size else (np.nan, np.nan)
        if 0.0 <= lo and hi <= 1.0:
            bounds, low, high = "[0, 1]", float(np.mean(v < 0.05)), float(np.mean(v > 0.95))
        elif -1.0 <= lo and hi <= 1.0:
            bounds, low, high = "[-1, 1]", float(np.mean(v < -0.95)), float(np.mean(v > 0.95))
        else:
            bounds, low, high = "unbounded", np.nan, np.nan
        stats[name] = GateStats(float(v.mean()), float(v.std()), bounds, low, high, v)
    return stats


def _fixed_points(network: Network, layer: int, direction: int, states: jax.Array, settings: Settings) -> Any:
    n = states.shape[-1]
    if not settings.fixed_points:
        return "not asked for (--no-fixed-points)"
    if n > settings.max_fixed_point_state:
        return f"skipped: a state of {n} entries (above --max-fixed-point-state {settings.max_fixed_point_state})"
    module = fixed_points_module()
    if module is None:
        return "skipped: rnnjax.analysis.fixed_points is not installed"
    starts = module.sample_states(states, settings.fixed_point_starts, key=jax.random.key(0))
    return module.find_fixed_points(network.net, network.params, None, initial_states=starts, layer=layer,
                                    direction=direction, steps=settings.fixed_point_steps)  # fmt: skip


def measure(network: Network, layer: int, direction: int, settings: Settings) -> Measures:
    """Every measurement of the module docstring for one layer and direction of ``network``.

    Args:
        network: the network and its inputs (:func:`rnnjax.analyse.networks.limit` bounds them first).
        layer, direction: which state (as in :mod:`rnnjax.analysis.systems`).
        settings: lags, exponents, warmup and the fixed-point search.

    Raises:
        ValueError: the analysis refuses the network (zoneout: its step is not its cell's), with its reason.
    """
    start = time.perf_counter()
    net, xs, lengths = network.net, network.xs, network.lengths
    batch, steps = xs.shape[:2]
    ends = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    m = min(settings.max_lag, steps)
    lags = _lags(m, settings.lag_points)
    cell = net.step_cell
    like = jax.eval_shape(lambda: cell.initial_carry(cell.init(jax.random.key(0), 1)))
    n = int(jax.eval_shape(state_vector, like).shape[-1])
    k = min(settings.exponents, n)
    warmup = int(min(settings.warmup, ends.min() // 2))
    if net.zoneout_rates:  # what the analysis refuses, before compiling anything
        check_net_params(net, network.params, xs.shape[-1])
    out = _compute(
        net,
        network.params,
        xs,
        network.carry,
        lengths,
        layer=layer,
        direction=direction,
        m=m,
        lags=tuple(int(lag) for lag in lags),
        k=k,
        warmup=warmup,
        gated=cell.spec.gates is not None,
    )

    values = _singular_values(np.asarray(out["products"]))
    valid = lags[None, :] <= np.minimum(ends, m)[:, None]
    norms = np.where(valid, values[..., 0], np.nan)
    rate, under, over = _fit(jnp.asarray(lags), jnp.asarray(norms), jnp.asarray(valid))
    spectra = {int(lag): np.where(valid[:, [i]], values[:, i], np.nan) for i, lag in enumerate(lags)
               if lag in spectrum_lags(m)}  # fmt: skip
    gates = None if "gates" not in out else _gate_stats(out["gates"], {"h", *getattr(like, "_fields", ())})
    fixed = _fixed_points(network, layer, direction, out["states"], settings)
    return Measures(
        label=label_of(network, layer, direction), cell=cell.name, state_size=n, sequences=batch, steps=steps,
        lags=lags, norms=norms, rate=np.asarray(rate), out_of_range=int(np.sum(under) + np.sum(over)),
        spectra=spectra, lyapunov=np.asarray(out["lyapunov"]), warmup=warmup, reach=np.asarray(out["reach"]),
        gates=gates, fixed=fixed, states=np.asarray(out["states"]), seconds=time.perf_counter() - start,
    )  # fmt: skip
