"""The Lyapunov exponents of a network while it trains: a monitor for ``fit(..., monitor=, monitor_every=)``.

Vogt, Puelma Touzel, Shlizerman & Lajoie 2022, "On Lyapunov Exponents for RNNs: Understanding Information
Propagation Using Dynamical Systems Tools" (Frontiers in Applied Mathematics and Statistics): the spectrum of
the forward dynamics, measured along the way, tells how far back the gradient can reach (an exponent near 0)
and when training turns the network chaotic (above 0) or strongly contracting (well below). ::

    monitor = rj.analysis.lyapunov_monitor(lambda p: (model.rnn, p.rnn), xs[:8], k=3, warmup=20)
    state, history = rj.train.fit(state, train_step, data, 3000, key=key, monitor=monitor, monitor_every=100)
    rj.train.history_array(history, "lyapunov/1")       # (steps, values): the largest exponent over training

The exponents are those of :func:`rnnjax.analysis.lyapunov_spectrum` (the QR method along fixed inputs ``xs``),
computed as k Jacobian-vector products a step (:func:`rnnjax.analysis.flossing.lyapunov_exponents`, tested
equal) instead of the full ``n x n`` step Jacobians. Cost, measured by ``benchmarks/fit_overhead.py`` on the
2-core CPU (the adding problem's LSTM, 64 units, so n = 128; batch 50, T = 100): one measurement of k = 3
exponents on 8 sequences of T = 100 takes 1.6 ms against 7.4 ms for a train step (the fastest of 50 calls each),
so measuring every 100 steps leaves ``fit`` at 0.998 of its speed (every 10 steps: ~0.98); timed whole, 5 rounds
of 1,000 steps with and without it ran at the same median speed (ratio 1.000, load average 4.5). The same
exponents from full Jacobians (``jax.jacrev`` of every step, then QR) take ~350 ms, 200 times as long.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rnnjax.analysis.flossing import lyapunov_exponents
from rnnjax.cells import Cell
from rnnjax.checks import check_positive_int, describe
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params

__all__ = ["lyapunov_monitor"]

NetOf = Callable[[Params], tuple[Cell | RNN, Params]]


def lyapunov_monitor(
    net_of: Cell | RNN | NetOf, xs: Array, *, k: int = 3, warmup: int | None = None, carry: Carry | None = None,
    lengths: Array | None = None, layer: int | None = None, direction: int = 0, prefix: str = "lyapunov/",
) -> Callable[[Params], dict[str, Array]]:  # fmt: skip
    """A jitted ``monitor(params) -> {"lyapunov/1": lambda_1, ..., "lyapunov/k": lambda_k}``: the ``k`` largest
    Lyapunov exponents per step (largest first), each the mean over the sequences of ``xs``.

    ``lambda_i = mean_b 1 / (T - warmup) sum_{t > warmup} log |R_t[i, i]|`` with ``Q_t R_t = J_t Q_{t-1}``
    (Benettin et al. 1980; for RNNs Engelken, Wolf & Abbott 2020 and Vogt et al. 2022), ``J_t`` the step Jacobian
    of the network driven by ``xs``.

    Args:
        net_of: which recurrence the trained params hold: a Cell or an ``rj.RNN`` when ``params`` are its own,
            or ``params -> (cell_or_net, its params)`` for a model, e.g. ``lambda p: (model.rnn, p.rnn)``.
        xs: ``(batch, time, features)``: fixed inputs that drive the network at every measurement (a few
            sequences of the task, such as fit's ``probe``); the same sequences every time, so the curve over
            training shows the network change, not the inputs.
        k: exponents, 1..n (n: the state size).
        warmup: steps carried but not averaged (None: a quarter of ``time``); ``0 <= warmup < time``.
        carry, lengths, layer, direction: as in :func:`rnnjax.analysis.lyapunov_spectrum`.
        prefix: the metrics' names are ``f"{prefix}{i}"``, i = 1..k.

    Returns:
        the monitor, jitted once (compiled at its first call); its arguments are checked then (a ValueError
        naming the argument), which ``fit`` makes happen before the first step.
    """
    if not (isinstance(net_of, Cell | RNN) or callable(net_of)):
        raise ValueError(
            f"net_of: expected a Cell, an rj.RNN or a function params -> (cell_or_net, params), got {describe(net_of)}"
        )
    if not hasattr(xs, "shape") or len(xs.shape) != 3:
        raise ValueError(f"xs: expected an array (batch, time, features), got {describe(xs)}")
    check_positive_int(k, "k")
    if not isinstance(prefix, str):
        raise ValueError(f"prefix: expected a str, got {describe(prefix)}")
    warmup = xs.shape[1] // 4 if warmup is None else warmup
    xs = jnp.asarray(xs)
    resolve: NetOf = (lambda p: (net_of, p)) if isinstance(net_of, Cell | RNN) else net_of

    @jax.jit
    def monitor(params: Params) -> dict[str, Array]:
        model, p = resolve(params)
        exponents = lyapunov_exponents(model, p, xs, carry, lengths, k=k, warmup=warmup, layer=layer,
                                       direction=direction).mean(0)  # fmt: skip
        return {f"{prefix}{i + 1}": exponents[i] for i in range(k)}

    return monitor
