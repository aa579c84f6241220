"""Gradient-flow analysis and the dynamics of trained networks: step Jacobians, their products and spectra,
Lyapunov exponents (and their monitor during training), gradient flossing, fixed points, dynamical isometry, the
participation ratio and the Kaplan-Yorke dimension.

Every function that runs a model takes ``(cell, params, xs, carry=None, lengths=None, *, layer=None,
direction=0)``: a Cell, or an :class:`~rnnjax.RNN` (one layer and direction of it, or its whole stack; see
:mod:`rnnjax.analysis.systems`), and right-padded ``lengths``. Padded steps are NaN in every per-step
result; the reductions of Jacobians take the same ``lengths`` and use only the valid steps.
"""

from rnnjax.analysis.dimension import kaplan_yorke_dimension, participation_ratio
from rnnjax.analysis.fixed_points import FixedPoints, default_tol, find_fixed_points, sample_states
from rnnjax.analysis.flossing import Flossed, floss, flossing_loss, lyapunov_exponents
from rnnjax.analysis.gates import gate_traces
from rnnjax.analysis.gradients import gradient_reach, state_gradients
from rnnjax.analysis.isometry import (
    MeanField,
    critical_point,
    end_to_end_singular_values,
    fixed_point,
    gaussian_expectation,
    mean_field,
    mean_field_init,
    predicted_moments,
    squared_moments,
    variance_map,
)
from rnnjax.analysis.jacobians import (
    blocks,
    direct_products,
    state_from_vector,
    state_vector,
    step_jacobians,
    trajectory,
    trajectory_products,
)
from rnnjax.analysis.lyapunov import lyapunov_from_jacobians, lyapunov_spectrum
from rnnjax.analysis.monitor import lyapunov_monitor
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
    "FixedPoints",
    "Flossed",
    "LagNorms",
    "MeanField",
    "NormRangeWarning",
    "blocks",
    "critical_point",
    "default_tol",
    "direct_products",
    "eigenvalues",
    "end_to_end_singular_values",
    "find_fixed_points",
    "fit_rate",
    "fixed_point",
    "floss",
    "flossing_loss",
    "gate_traces",
    "gaussian_expectation",
    "gradient_reach",
    "jacobian_products",
    "kaplan_yorke_dimension",
    "lyapunov_exponents",
    "lyapunov_from_jacobians",
    "lyapunov_monitor",
    "lyapunov_spectrum",
    "matrix_norm",
    "mean_field",
    "mean_field_init",
    "norm_matrix",
    "norms_by_lag",
    "participation_ratio",
    "pascanu_bound",
    "predicted_moments",
    "sample_states",
    "singular_values",
    "squared_moments",
    "state_from_vector",
    "state_gradients",
    "state_vector",
    "step_jacobians",
    "trajectory",
    "trajectory_products",
    "variance_map",
]
