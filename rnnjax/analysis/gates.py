"""Gate activations along a sequence: what the textbook's gates do on a real input.

For the LSTM: the forget gate ``f_t`` (near 1 where memory persists), the input gate ``i_t`` (the editor
that admits the candidate), the candidate ``C~_t``, the output gate ``o_t`` and the cell state ``C_t``;
for the GRU: the reset ``r_t``, the update ``z_t`` and the candidate ``n_t``. Each is
``(batch, time, hidden)``, computed by the same ``cell.gates`` that the step itself uses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnjax.cells import Cell, LSTMState
from rnnjax.scan import check_xs
from rnnjax.types import Array, Carry, Params


def gate_traces(cell: Cell, params: Params, xs: Array, carry: Carry | None = None) -> dict[str, Array]:
    """Every gate of every step, plus the states (``h``, and ``C`` for the LSTM), batch-major.

    Args:
        xs: ``(batch, time, features)``.

    Returns:
        ``{name: (batch, time, hidden)}``.
    """
    if cell.gates is None:
        raise ValueError(f"cell: expected a gated cell (lstm or gru), got {cell.name!r}")
    xs = check_xs(xs)
    loop = cell.prepare(params)
    carry = cell.initial_carry(params, (xs.shape[0],)) if carry is None else carry

    def body(c: Carry, x: Array):
        xp = cell.project(loop, x)
        gates = cell.gates(loop, c, xp)
        c, y = cell.recur(loop, c, xp)
        gates["h"] = y
        if isinstance(c, LSTMState):
            gates["C"] = c.c
        return c, gates

    _, traces = jax.lax.scan(body, carry, jnp.swapaxes(xs, 0, 1))
    return {k: jnp.swapaxes(v, 0, 1) for k, v in traces.items()}
