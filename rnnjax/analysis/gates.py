"""Gate activations along a sequence: what the textbook's gates do on a real input.

For the LSTM: the forget gate ``f_t`` (near 1 where memory persists), the input gate ``i_t`` (the editor
that admits the candidate), the candidate ``C~_t``, the output gate ``o_t`` and the cell state ``C_t``;
for the GRU: the reset ``r_t``, the update ``z_t`` and the candidate ``n_t``. Each is
``(batch, time, hidden)``, computed by the same ``cell.gates`` that the step itself uses, from the
states along the trajectory.
"""

from __future__ import annotations

from rnnjax.analysis.jacobians import padded_as_nan
from rnnjax.analysis.systems import drive, state_from_vector
from rnnjax.cells import Cell
from rnnjax.cells.base import readout
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params

__all__ = ["gate_traces"]


def gate_traces(
    cell: Cell | RNN, params: Params, xs: Array, carry: Carry | None = None, lengths: Array | None = None, *,
    layer: int | None = None, direction: int = 0,
) -> dict[str, Array]:  # fmt: skip
    """Every gate of every step, plus the states (``h``, and ``c`` for the LSTM), batch-major.

    Args:
        cell, params, carry, layer, direction: as in :func:`~rnnjax.analysis.trajectory`: a gated Cell, or
            one layer and direction of an RNN of them.
        xs: ``(batch, time, features)``.
        lengths: ``(batch,)`` valid steps; every trace is NaN at padded steps.

    Returns:
        ``{name: (batch, time, hidden)}``: the gates, ``h`` and the carry's other fields (the LSTM's ``c``), in the
        order the steps run (reversed within each length for
        ``direction=1``).
    """
    system = drive(cell, params, xs, carry, lengths, layer, direction)
    if system.cell is None:
        raise ValueError(f"layer: expected one layer for gate_traces of a {len(system.layers)}-layer RNN, got None")
    cell = system.cell
    spec = cell.spec
    if spec.gates is None:
        raise ValueError(f"cell: expected a gated cell (one whose spec declares gates), got {cell.name!r}")
    loop = spec.prepare(system.params)
    like = cell.initial_carry(system.params, system.inputs.shape[:2])
    previous = state_from_vector(system.states[:, :-1], like)
    new = state_from_vector(system.states[:, 1:], like)
    xp = spec.project(loop, system.inputs)
    traces = dict(spec.gates(loop, previous, xp))
    traces["h"] = readout(cell, loop, new, xp)
    for field in getattr(new, "_fields", ()):  # the rest of a NamedTuple carry by name (the LSTM's c)
        traces.setdefault(field, getattr(new, field))
    return {name: padded_as_nan(v, system.lengths) for name, v in traces.items()}
