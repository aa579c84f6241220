"""Gradient-flow analysis: step Jacobians, their products and spectra, Lyapunov exponents."""

from rnnjax.analysis.gates import gate_traces
from rnnjax.analysis.gradients import gradient_reach, state_gradients
from rnnjax.analysis.jacobians import (
    blocks,
    direct_products,
    jacobian_products,
    matrix_norm,
    norm_matrix,
    state_from_vector,
    state_vector,
    step_jacobians,
    trajectory,
)
from rnnjax.analysis.lyapunov import lyapunov_from_jacobians, lyapunov_spectrum
from rnnjax.analysis.spectra import LagNorms, eigenvalues, fit_rate, norms_by_lag, pascanu_bound, singular_values

__all__ = [
    "LagNorms",
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
