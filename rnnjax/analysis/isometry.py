"""Dynamical isometry at initialisation: the singular values of ``da_T/da_0`` beside mean-field theory.

A vanilla RNN ``a_t = phi(h_t)``, ``h_t = W a_{t-1} + U x_t + b``, is drawn as in the mean-field papers
(:func:`mean_field_init`): ``W_ij ~ N(0, sigma_w^2 / n)`` (``"gaussian"``) or ``sigma_w`` times a Haar-orthogonal
matrix (``"orthogonal"``), ``U_ij ~ N(0, sigma_u^2 / d)``, ``b_i ~ N(0, sigma_b^2)``, inputs of mean square
``q_x = E[x_j^2]``. As ``n -> inf`` the pre-activations ``h_{t,i}`` are Gaussian with variance ``q_t``::

    q_t = sigma_w^2 E_z[phi(sqrt(q_{t-1}) z)^2] + sigma_u^2 q_x + sigma_b^2         z ~ N(0, 1)
    chi = sigma_w^2 E_z[phi'(sqrt(q*) z)^2]                                        at the fixed point q*

(expectations by :func:`gaussian_expectation`). This is the map of Chen, Pennington & Schoenholz 2018,
"Dynamical Isometry and a Mean Field Theory of RNNs: Gating Enables Signal Propagation in Recurrent Neural
Networks", for the vanilla RNN, its inputs' term written here ``sigma_u^2 q_x``; the feed-forward map of Poole
et al. 2016 and Schoenholz et al. 2017 has no input term. The step Jacobian is ``J_t = diag(phi'(h_t)) W``;
the end-to-end Jacobian ``P_T = da_T/da_0 = J_T ... J_1`` has mean squared singular value ``(1/n) tr(P_T
P_T^T) -> chi^T``: it vanishes (chi < 1) or explodes (chi > 1) exponentially in T, except on the critical line
``chi = 1`` (:func:`critical_point`).

The mean is not the spread. Free probability (Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid
in deep learning through dynamical isometry: theory and practice", Sec. 2.3-2.5) multiplies S-transforms,
``S_{PP^T} = S_{WW^T}^T S_{D^2}^T``; the first two moments of the squared singular values ``lambda = sigma^2``
then give their normalised variance::

    Var(lambda) / E[lambda]^2 = T (mu_2 / mu_1^2 - 1 - s_1),     mu_k = E_z[phi'(sqrt(q*) z)^(2k)]

with ``s_1 = -1`` for Gaussian W (the Marchenko-Pastur law of ``WW^T`` has normalised variance 1) and ``s_1 =
0`` for orthogonal W (the paper's ``sigma_{JJ^T}^2 = L(mu_2/mu_1^2 - 1 - s_1)`` at chi = 1; the ratio holds at
any chi). A Gaussian W broadens the spectrum linearly in T whatever the initialisation; an orthogonal one
only through the spread of ``phi'``, which vanishes as ``q* -> 0`` on the critical line (``sigma_w -> 1``):
only orthogonal weights at criticality keep the singular values near 1 as T grows (dynamical isometry).

The free-probability step treats the W of each step as free of the others (as in a feed-forward net); the RNN
uses the same W at every step, and its state is the network's own dynamics: how far the theory holds for the
RNN at a finite n is what ``experiments/isometry.py`` measures. Numerics: a product of T Jacobians spreads its
singular values over many decades; an SVD resolves those above about ``eps * sigma_max`` of its dtype
(1e-7 in float32, 1e-16 in float64), the moments above are carried by the large ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import cells
from rnnjax import init as inits
from rnnjax.analysis.jacobians import system_jacobians
from rnnjax.analysis.products import jacobian_products
from rnnjax.analysis.spectra import singular_values
from rnnjax.analysis.systems import drive
from rnnjax.analysis.validate import check_choice, check_time
from rnnjax.checks import check_float, check_key, check_positive_int, describe
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params, PRNGKey

__all__ = [
    "ACTIVATIONS",
    "ENSEMBLES",
    "MeanField",
    "critical_point",
    "end_to_end_singular_values",
    "fixed_point",
    "gaussian_expectation",
    "mean_field",
    "mean_field_init",
    "predicted_moments",
    "squared_moments",
    "variance_map",
]

ACTIVATIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "tanh": (np.tanh, lambda h: 1.0 / np.cosh(h) ** 2),
    "linear": (lambda h: h, np.ones_like),
}
"""``phi`` and ``phi'`` by name (numpy), as the RNN cell's ``activation`` names them."""

ENSEMBLES: dict[str, float] = {"gaussian": -1.0, "orthogonal": 0.0}
"""``s_1``, the first coefficient of ``sigma_w^2 S_{WW^T}(z) = 1 + s_1 z + ...``, by the ensemble of W (its
``recurrent_init``): minus the normalised variance of the squared singular values of W."""

STEP = 0.005
"""Grid step in z of :func:`gaussian_expectation`'s trapezoid rule, on ``[-12, 12]``."""


def _activation(name: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    return ACTIVATIONS[check_choice(name, tuple(ACTIVATIONS), "activation")]


def _nonnegative(value: Any, name: str) -> float:
    return check_float(value, name, low=0.0)


@functools.cache
def _grid(step: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes on ``[-12, 12]`` and trapezoid weights times the standard normal density."""
    z = np.linspace(-12.0, 12.0, int(round(24.0 / step)) + 1)
    w = np.exp(-(z**2) / 2)
    w[[0, -1]] /= 2
    return z, w / w.sum()  # the sum is sqrt(2 pi) / step up to ~1e-32: E[1] = 1 to the last bit


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], q: Any, step: float = STEP) -> np.ndarray:
    """``E_z[f(sqrt(q) z)]``, ``z ~ N(0, 1)``, by the trapezoid rule on a uniform grid of ``z`` in ``[-12, 12]``.

    For an integrand analytic in a strip ``|Im z| < a`` the rule's error falls like ``exp(-2 pi a / step)``
    (Trefethen & Weideman 2014, "The exponentially convergent trapezoidal rule"); ``tanh(sqrt(q) z)`` has
    ``a = pi / (2 sqrt(q))``, so the default step leaves ``exp(-pi^2 / (sqrt(q) step))``: below double precision
    up to q ~ 1e3, ~1e-9 at q = 1e4 (the tail beyond 12 weighs ~1e-32). Gauss-Hermite quadrature, the usual
    choice, is not used: its nodes lie too far apart for the narrow ``tanh'(sqrt(q) z)^(2k)`` once q is large
    (101 nodes, measured: ``E[tanh'^2]`` 4.5% off and ``E[tanh'^4]`` 25% off at q = 12.5, the q* of sigma_w = 4).

    Args:
        f: a numpy function applied elementwise.
        q: variances ``>= 0``, a number or an array.
        step: the grid step in z.

    Returns:
        float64, of the shape of ``q``.
    """
    step = check_float(step, "step", low=0.0, low_open=True, high=0.1)
    q = np.asarray(q, np.float64)
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        raise ValueError(f"q: expected finite variances >= 0, got {q if q.size < 8 else describe(q)}")
    nodes, weights = _grid(step)
    return np.tensordot(f(np.sqrt(q)[..., None] * nodes), weights, axes=([-1], [0]))


def variance_map(
    q: Any, sigma_w: float, sigma_b: float = 0.0, sigma_u: float = 0.0, q_x: float = 1.0, activation: str = "tanh"
) -> np.ndarray:
    """One step of the mean-field variance map, ``q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_u^2 q_x + sigma_b^2``.

    Args:
        q: the pre-activations' variance at step t - 1 (a number or an array, ``>= 0``).
        sigma_w, sigma_b, sigma_u: the scales of W, b and U (see the module docstring), ``>= 0``.
        q_x: the inputs' mean square ``E[x_j^2]``, ``>= 0``.
        activation: ``"tanh"`` or ``"linear"``.
    """
    phi, _ = _activation(activation)
    sw, sb, su, qx = (_nonnegative(v, n) for v, n in ((sigma_w, "sigma_w"), (sigma_b, "sigma_b"),
                                                       (sigma_u, "sigma_u"), (q_x, "q_x")))  # fmt: skip
    return sw**2 * gaussian_expectation(lambda h: phi(h) ** 2, q) + su**2 * qx + sb**2


def fixed_point(
    sigma_w: float, sigma_b: float = 0.0, sigma_u: float = 0.0, q_x: float = 1.0, activation: str = "tanh"
) -> float:
    """The stable fixed point ``q*`` of :func:`variance_map`.

    For tanh the map is increasing, concave and bounded by ``sigma_w^2 + c`` (``c = sigma_u^2 q_x + sigma_b^2``):
    with ``c > 0`` it has one fixed point, found by bisection on ``[0, sigma_w^2 + c]``; with ``c = 0``,
    ``q* = 0`` for ``sigma_w <= 1`` and the positive root (bisection of ``map(q)/q - 1``) for ``sigma_w > 1``.
    Linear: ``q* = c / (1 - sigma_w^2)`` for ``sigma_w < 1``, 0 for ``c = 0, sigma_w <= 1``, else ``inf``.
    """
    _activation(activation)
    sw, sb, su, qx = (_nonnegative(v, n) for v, n in ((sigma_w, "sigma_w"), (sigma_b, "sigma_b"),
                                                       (sigma_u, "sigma_u"), (q_x, "q_x")))  # fmt: skip
    c = su**2 * qx + sb**2
    if activation == "linear":
        if sw < 1:
            return c / (1 - sw**2)
        return 0.0 if c == 0 else float("inf")
    if c == 0 and sw <= 1:
        return 0.0

    def excess(q: np.ndarray) -> np.ndarray:  # > 0 below q*, < 0 above it
        out = variance_map(q, sw, sb, su, qx) - q
        return out if c > 0 else out / q

    lo, hi = 0.0, sw**2 + c
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if excess(np.asarray(mid)) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


class MeanField(NamedTuple):
    """The mean-field quantities of one initialisation (see the module docstring).

    Attributes:
        q_star: the fixed point of the pre-activations' variance.
        chi: ``sigma_w^2 mu_1``, the per-step factor of the mean squared singular value.
        mu_1, mu_2: ``E[phi'(sqrt(q*) z)^2]`` and ``E[phi'(sqrt(q*) z)^4]``.
        sigma_w, sigma_b, sigma_u, q_x: the initialisation.
    """

    q_star: float
    chi: float
    mu_1: float
    mu_2: float
    sigma_w: float
    sigma_b: float
    sigma_u: float
    q_x: float


def mean_field(
    sigma_w: float, sigma_b: float = 0.0, sigma_u: float = 0.0, q_x: float = 1.0, activation: str = "tanh"
) -> MeanField:
    """``q*``, ``chi = sigma_w^2 E[phi'(sqrt(q*) z)^2]`` and the moments of ``phi'^2`` at ``q*``.

    Raises a ValueError where ``q*`` is infinite (a linear RNN with ``sigma_w >= 1`` and inputs or bias).
    """
    q = fixed_point(sigma_w, sigma_b, sigma_u, q_x, activation)
    if not np.isfinite(q):
        raise ValueError(f"sigma_w: expected a variance map with a finite fixed point, got sigma_w={sigma_w} "
                         f"for a {activation} RNN with inputs or bias (the variance grows without bound)")  # fmt: skip
    _, dphi = _activation(activation)
    mu_1 = float(gaussian_expectation(lambda h: dphi(h) ** 2, q))
    mu_2 = float(gaussian_expectation(lambda h: dphi(h) ** 4, q))
    return MeanField(float(q), float(sigma_w) ** 2 * mu_1, mu_1, mu_2, float(sigma_w), float(sigma_b),
                     float(sigma_u), float(q_x))  # fmt: skip


def critical_point(
    q_star: float, sigma_u: float = 0.0, q_x: float = 1.0, activation: str = "tanh"
) -> tuple[float, float]:
    """``(sigma_w, sigma_b)`` on the critical line ``chi = 1`` whose fixed point is ``q_star``.

    ``sigma_w^2 = 1 / E[phi'(sqrt(q*) z)^2]`` and ``sigma_b^2 = q* - sigma_w^2 E[phi(sqrt(q*) z)^2] - sigma_u^2 q_x``
    (the line parametrised by its fixed point). For tanh the slack ``q* - sigma_w^2 E[phi^2]``
    is of order ``q*^3``: near ``q* = 0`` the critical line leaves little room for inputs or bias.

    Raises:
        ValueError: ``q_star`` not ``> 0``, or the inputs alone (``sigma_u^2 q_x``) exceed the slack.
    """
    phi, dphi = _activation(activation)
    q = check_float(q_star, "q_star", low=0.0, low_open=True)
    su, qx = _nonnegative(sigma_u, "sigma_u"), _nonnegative(q_x, "q_x")
    sigma_w2 = 1.0 / float(gaussian_expectation(lambda h: dphi(h) ** 2, q))
    slack = q - sigma_w2 * float(gaussian_expectation(lambda h: phi(h) ** 2, q))
    sigma_b2 = slack - su**2 * qx
    if sigma_b2 < -1e-15 * q:
        raise ValueError(
            f"sigma_u: expected sigma_u^2 q_x <= {slack:.3g} (the slack of the critical line at q* = {q}), got "
            f"sigma_u={su}, q_x={qx} (sigma_u at most {np.sqrt(max(slack, 0.0) / qx) if qx else np.inf:.3g}; or a "
            "larger q_star)"
        )
    return float(np.sqrt(sigma_w2)), float(np.sqrt(max(sigma_b2, 0.0)))


def predicted_moments(mf: MeanField, times: Any, ensemble: str = "orthogonal") -> tuple[np.ndarray, np.ndarray]:
    """The mean-field moments of the squared singular values ``lambda`` of ``da_T/da_0``, for each T of ``times``.

    Returns:
        ``(mean, normalised variance)``: ``E[lambda] = chi^T`` and ``Var(lambda)/E[lambda]^2 = T (mu_2/mu_1^2 -
        1 - s_1)`` (Pennington et al. 2017; ``s_1`` from :data:`ENSEMBLES`), float64 arrays of the shape of
        ``times``.
    """
    s_1 = ENSEMBLES[check_choice(ensemble, tuple(ENSEMBLES), "ensemble")]
    if not isinstance(mf, MeanField):
        raise ValueError(f"mf: expected a MeanField from mean_field(...), got {describe(mf)}")
    T = np.asarray(times, np.float64)
    if not np.all(np.isfinite(T)) or np.any(T < 0):
        raise ValueError(f"times: expected steps >= 0, got {T}")
    return mf.chi**T, T * (mf.mu_2 / mf.mu_1**2 - 1.0 - s_1)


def mean_field_init(
    key: PRNGKey, hidden_size: int, input_size: int, *, sigma_w: float, sigma_b: float = 0.0, sigma_u: float = 0.0,
    ensemble: str = "gaussian", activation: str = "tanh", dtype: Any = jnp.float32,
) -> tuple[cells.Cell, cells.RNNParams]:  # fmt: skip
    """A vanilla RNN drawn as in the mean-field papers: the cell and its params.

    ``W`` comes from the library's initialiser, ``rnnjax.init.recurrent_weights(key, ensemble, 1, n, sigma_w)``
    (``N(0, sigma_w^2 / n)`` entries, or ``sigma_w`` times a Haar-orthogonal matrix); ``U_ij ~ N(0, sigma_u^2 /
    input_size)`` and ``b_i ~ N(0, sigma_b^2)`` are drawn here (the library's input initialisers have no scale,
    its bias is a constant). The cell is the plain ``rj.cells.rnn(hidden_size, activation, dtype=dtype)``, the same
    for every draw (its step does not depend on the init), so that one compiled analysis serves them all.
    """
    check_key(key)
    check_choice(ensemble, tuple(ENSEMBLES), "ensemble")
    check_choice(activation, tuple(ACTIVATIONS), "activation")
    hidden_size = check_positive_int(hidden_size, "hidden_size")
    input_size = check_positive_int(input_size, "input_size")
    sw = check_float(sigma_w, "sigma_w", low=0.0, low_open=True)
    sb, su = _nonnegative(sigma_b, "sigma_b"), _nonnegative(sigma_u, "sigma_u")
    dtype = inits.check_dtype(dtype)
    draw = inits.draw_dtype(dtype)
    k_w, k_u, k_b = jax.random.split(key, 3)
    W = inits.recurrent_weights(k_w, ensemble, 1, hidden_size, sw, dtype)
    U = su / np.sqrt(input_size) * jax.random.normal(k_u, (hidden_size, input_size), draw)
    b = sb * jax.random.normal(k_b, (hidden_size,), draw)
    cell = cells.rnn(hidden_size, activation, dtype=dtype)
    return cell, cells.RNNParams(U=U.astype(dtype), W=W, b=b.astype(dtype))


def end_to_end_singular_values(
    cell: cells.Cell | RNN, params: Params, xs: Array, times: Sequence[int], carry: Carry | None = None,
    lengths: Array | None = None, *, layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """Singular values of ``da_T/da_0 = J_T ... J_1`` for each T of ``times``, per sequence.

    Args:
        cell, params, carry, layer, direction: as in :func:`~rnnjax.analysis.trajectory` (``carry`` is ``a_0``;
            start it on the stationary distribution to compare with the mean field, e.g. the last state of
            a burn-in run).
        xs: ``(batch, time, features)``.
        times: the T's, each in ``0..time``.
        lengths: ``(batch,)`` valid steps: a sequence of length ``L < T`` gives ``da_L/da_0``.

    Returns:
        ``(batch, len(times), n)``, largest first; the products come from
        :func:`~rnnjax.analysis.jacobian_products` of :func:`~rnnjax.analysis.step_jacobians`.
    """
    system = drive(cell, params, xs, carry, lengths, layer, direction)
    jac = system_jacobians(system)
    time = jac.shape[1]
    if isinstance(times, int | np.integer) or not len(times):
        raise ValueError(f"times: expected a non-empty sequence of steps in [0, {time}], got {times!r}")
    ts = [check_time(t, time, "times") for t in times]
    products = [jacobian_products(jac, t, system.lengths)[:, 0] for t in ts]  # entry k = 0: da_{t_b}/da_0
    return singular_values(jnp.stack(products, axis=1))


def squared_moments(singular: Array, axis: int | tuple[int, ...] = -1) -> tuple[Array, Array]:
    """The mean and the normalised variance of ``lambda = sigma^2`` over ``axis`` (the pooled spectrum):
    ``(E[lambda], E[lambda^2] / E[lambda]^2 - 1)``, to set beside :func:`predicted_moments`.

    Args:
        singular: singular values, e.g. ``(batch, times, n)`` from :func:`end_to_end_singular_values` with
            ``axis=(0, 2)`` for the spectrum of each T pooled over the batch.
    """
    if not hasattr(singular, "dtype") or not jnp.issubdtype(singular.dtype, jnp.floating) or singular.ndim < 1:
        raise ValueError(f"singular: expected a floating array of singular values, got {describe(singular)}")
    singular = jnp.asarray(singular)
    lam = singular.astype(jnp.promote_types(singular.dtype, jnp.float32)) ** 2
    m1 = jnp.mean(lam, axis=axis)
    return m1, jnp.mean(lam**2, axis=axis) / m1**2 - 1.0
