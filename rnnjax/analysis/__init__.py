"""Gradient-flow analysis: step Jacobians, their products and spectra, Lyapunov exponents.

Every function that runs a model takes ``(cell, params, xs, carry=None, lengths=None, *, layer=None,
direction=0)``: a Cell, or an :class:`~rnnjax.RNN` (one layer and direction of it, or its whole stack; see
:mod:`rnnjax.analysis.systems`), and right-padded ``lengths``. Padded steps are NaN in every per-step
result; the reductions of Jacobians take the same ``lengths`` and use only the valid steps.
"""

from rnnjax.analysis.gates import gate_traces
from rnnjax.analysis.gradients import gradient_reach, state_gradients
from rnnjax.analysis.jacobians import (
    blocks,
    direct_products,
    state_from_vector,
    state_vector,
    step_jacobians,
    trajectory,
)
from rnnjax.analysis.lyapunov import lyapunov_from_jacobians, lyapunov_spectrum
from rnnjax.analysis.products import jacobian_products, matrix_norm, norm_matrix
from rnnjax.analysis.spectra import (
    LagNorms,
    NormRangeWarning,
    eigenvalues,
    fit_rate,
    norms_by_lag,
    pascanu_bound,
    singular_values,
)

__all__ = [
    "LagNorms",
    "NormRangeWarning",
    "blocks",
    "direct_products",
    "eigenvalues",
    "fit_rate",
    "gate_traces",
    "gradient_reach",
    "jacobian_products",
    "lyapunov_from_jacobians",
    "lyapunov_spectrum",
    "matrix_norm",
    "norm_matrix",
    "norms_by_lag",
    "pascanu_bound",
    "singular_values",
    "state_from_vector",
    "state_gradients",
    "state_vector",
    "step_jacobians",
    "trajectory",
]
