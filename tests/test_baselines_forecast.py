"""rj.baselines.forecast: naive forecasts on hand-checkable series, and errors by horizon."""

import numpy as np
import pytest

import rnnjax as rj

forecast = rj.baselines.forecast


def test_persistence_repeats_the_last_value():
    np.testing.assert_array_equal(forecast.persistence([1.0, 4.0, 2.0], 3), [2.0, 2.0, 2.0])
    batch = forecast.persistence(np.array([[1.0, 2.0], [5.0, 7.0]]), 2)
    np.testing.assert_array_equal(batch, [[2.0, 2.0], [7.0, 7.0]])


def test_seasonal_naive_repeats_the_last_season():
    history = np.array([9.0, 1.0, 2.0, 3.0, 4.0])  # period 4: the last season is 1, 2, 3, 4
    np.testing.assert_array_equal(forecast.seasonal_naive(history, 6, period=4), [1, 2, 3, 4, 1, 2])
    np.testing.assert_array_equal(forecast.seasonal_naive(history, 2, period=1), [4, 4])  # m = 1 is persistence
    # Hyndman's formula y[T + h - m * (floor((h - 1) / m) + 1)], T = 5, 1-based
    T, m = 5, 3
    expected = [history[T + h - m * ((h - 1) // m + 1) - 1] for h in range(1, 8)]
    np.testing.assert_array_equal(forecast.seasonal_naive(history, 7, period=m), expected)


def test_seasonal_naive_is_exact_on_a_periodic_series():
    season = np.array([3.0, -1.0, 0.5, 2.0, 7.0, 1.0])
    series = np.tile(season, 5)
    np.testing.assert_array_equal(forecast.seasonal_naive(series[:-8], 8, period=6), series[-8:])


def test_mean_and_drift():
    np.testing.assert_array_equal(forecast.mean([1.0, 2.0, 6.0], 2), [3.0, 3.0])
    np.testing.assert_allclose(forecast.drift([1.0, 5.0, 3.0], 3), [4.0, 5.0, 6.0])  # slope (3 - 1) / 2
    line = 2.0 + 0.5 * np.arange(10)
    np.testing.assert_allclose(forecast.drift(line[:6], 4), line[6:])


def test_errors_by_horizon():
    targets = np.array([[1.0, 2.0], [3.0, 4.0]])
    predictions = np.array([[2.0, 2.0], [0.0, 8.0]])  # errors [[1, 0], [-3, 4]]
    np.testing.assert_allclose(forecast.rmse(targets, predictions), [np.sqrt(5.0), np.sqrt(8.0)])
    np.testing.assert_allclose(forecast.mae(targets, predictions), [2.0, 2.0])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="horizon"):
        forecast.persistence([1.0], 0)
    with pytest.raises(ValueError, match="history"):
        forecast.seasonal_naive([1.0, 2.0], 3, period=12)
    with pytest.raises(ValueError, match="history"):
        forecast.persistence([1.0, np.nan], 2)
    with pytest.raises(ValueError, match="period"):
        forecast.seasonal_naive([1.0, 2.0], 3, period=0)
    with pytest.raises(ValueError, match="targets, predictions"):
        forecast.rmse(np.zeros((2, 3)), np.zeros((2, 2)))
