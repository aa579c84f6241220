"""Naive forecasts that every forecaster must beat, and the errors by horizon that score them.

The forecasts of Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed., section 5.2):

- persistence (naive): ``y_hat[T + h] = y[T]``, the last observed value, for every ``h``;
- seasonal naive: ``y_hat[T + h] = y[T + h - m * (floor((h - 1) / m) + 1)]``, the value one season (``m`` steps)
  before, repeating the last observed season;
- mean: ``y_hat[T + h] = mean(y[1..T])``;
- drift: ``y_hat[T + h] = y[T] + h * (y[T] - y[1]) / (T - 1)``, the line through the first and last values.

Each takes ``history: (..., T)`` (the observed values before the forecast origin, oldest first; leading axes are
independent series or origins) and returns ``(..., horizon)``. (S)ARIMA, being a statsmodels estimator, is fitted by
the experiment itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["drift", "mae", "mean", "persistence", "rmse", "seasonal_naive"]


def _history(history, horizon: int, at_least: int = 1) -> np.ndarray:
    history = np.asarray(history, np.float64)
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon: expected a positive int, got {horizon!r}")
    if history.ndim < 1 or history.shape[-1] < at_least:
        raise ValueError(f"history: expected shape (..., T) with T >= {at_least}, got {history.shape}")
    if not np.all(np.isfinite(history)):
        raise ValueError("history: expected finite values, got NaN or inf")
    return history


def persistence(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value, repeated ``horizon`` times: ``(..., T) -> (..., horizon)``."""
    history = _history(history, horizon)
    return np.repeat(history[..., -1:], horizon, axis=-1)


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The value one season before, the last observed season repeated: ``(..., T) -> (..., horizon)``.

    Args:
        period: ``m``, the steps of a season, at most ``T``.
    """
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < 1:
        raise ValueError(f"period: expected a positive int, got {period!r}")
    history = _history(history, horizon, at_least=period)
    last_season = history[..., -period:]
    return last_season[..., np.arange(horizon) % period]


def mean(history: np.ndarray, horizon: int) -> np.ndarray:
    """The mean of the history, repeated: ``(..., T) -> (..., horizon)``."""
    history = _history(history, horizon)
    return np.repeat(history.mean(-1, keepdims=True), horizon, axis=-1)


def drift(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last value plus ``h`` times the mean step of the history: ``(..., T) -> (..., horizon)``, ``T >= 2``."""
    history = _history(history, horizon, at_least=2)
    slope = (history[..., -1:] - history[..., :1]) / (history.shape[-1] - 1)
    return history[..., -1:] + slope * np.arange(1, horizon + 1)


def _errors(targets, predictions) -> np.ndarray:
    targets, predictions = np.asarray(targets, np.float64), np.asarray(predictions, np.float64)
    if targets.shape != predictions.shape or targets.ndim != 2:
        raise ValueError(
            f"targets, predictions: expected two (origins, horizon) arrays of one shape, "
            f"got {targets.shape} and {predictions.shape}"
        )
    return predictions - targets


def rmse(targets: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Root mean squared error at each horizon, over the forecast origins: ``(origins, H) x 2 -> (H,)``."""
    return np.sqrt((_errors(targets, predictions) ** 2).mean(0))


def mae(targets: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Mean absolute error at each horizon, over the forecast origins: ``(origins, H) x 2 -> (H,)``."""
    return np.abs(_errors(targets, predictions)).mean(0)
