"""Turning real data into what a network reads: padding, batches of a finite set, splits by group, token vocabularies.

Numpy in, numpy out. A training loop (:func:`rnnjax.train.fit`) asks for the batch of a step; with
:func:`batch_indices` that batch is a function of the seed and the step alone, so a resumed run sees the
same batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["Vocab", "batch_indices", "group_split", "pad", "tokenize"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def pad(
    sequences: Sequence[np.ndarray], max_length: int | None = None, value: float = 0, dtype=None
) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length sequences as one padded array and their lengths.

    Args:
        sequences: ``n`` arrays of shape ``(t_i, *features)`` (the same features), ``t_i >= 1``.
        max_length: the padded length ``T`` (default: the longest ``t_i``); longer sequences are cut to it
            (their length becomes ``T``).
        value: what fills the padding.
        dtype: of the result (default: that of the first sequence).

    Returns:
        ``(padded, lengths)``: ``(n, T, *features)`` and ``(n,)`` int32, ready for
        ``rj.RNN.apply(params, padded, lengths=lengths)``.
    """
    if len(sequences) == 0:
        raise ValueError("sequences: expected at least one sequence, got none")
    arrays = [np.asarray(s) for s in sequences]
    features = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.ndim < 1 or a.shape[1:] != features or len(a) == 0:
            raise ValueError(f"sequences[{i}]: expected shape (t >= 1, *{features}) like sequences[0], got {a.shape}")
    longest = max(len(a) for a in arrays)
    T = longest if max_length is None else _positive_int(max_length, "max_length")
    out = np.full((len(arrays), T, *features), value, dtype=dtype or arrays[0].dtype)
    lengths = np.array([min(len(a), T) for a in arrays], np.int32)
    for i, a in enumerate(arrays):
        out[i, : lengths[i]] = a[: lengths[i]]
    return out, lengths


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """The examples of training step ``step``: epochs of a seeded shuffle of ``range(n)``.

    Epoch ``e`` is the permutation ``default_rng([seed, e])`` draws; step ``s`` takes its slice
    ``(s mod per_epoch) * batch_size ...`` where ``per_epoch = n // batch_size`` (the last partial batch of an
    epoch is dropped, so every batch has ``batch_size`` rows and the step compiles once).
    """
    n, batch_size = _positive_int(n, "n"), _positive_int(batch_size, "batch_size")
    if batch_size > n:
        raise ValueError(f"batch_size: expected at most n = {n} (the examples), got {batch_size}")
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"step: expected a non-negative int, got {step!r}")
    per_epoch = n // batch_size
    epoch, k = divmod(int(step), per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[k * batch_size : (k + 1) * batch_size]


def group_split(groups: Sequence, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Splits examples so that no group (a speaker, a movie, a play) is in two parts.

    The distinct groups are shuffled with ``default_rng(seed)`` (in sorted order first, so the split does not
    depend on the order of the examples) and dealt to the parts in the order of ``fractions`` until each part
    holds its fraction of the examples.

    Args:
        groups: ``(n,)`` the group of each example.
        fractions: ``{part: fraction}``, positive, summing to 1 (e.g. ``{"train": 0.8, "test": 0.2}``).
        seed: of the shuffle.

    Returns:
        ``{part: sorted example indices}``; every part non-empty.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) == 0:
        raise ValueError(f"groups: expected a non-empty (n,) array, got shape {groups.shape}")
    if not fractions or any(not 0 < f <= 1 for f in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-9:
        raise ValueError(f"fractions: expected positive fractions summing to 1, got {fractions}")
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(names) < len(fractions):
        raise ValueError(f"groups: expected at least {len(fractions)} distinct groups (one a part), got {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    bounds = np.cumsum(list(fractions.values())) * len(groups)
    filled = np.cumsum(counts[order]) - counts[order] / 2  # each group's midpoint in the dealt order
    part_of = np.minimum(np.searchsorted(bounds, filled), len(fractions) - 1)
    assigned = np.empty(len(names), np.int64)
    assigned[order] = part_of
    parts = {name: np.flatnonzero(assigned[inverse] == p) for p, name in enumerate(fractions)}
    empty = [name for name, idx in parts.items() if len(idx) == 0]
    if empty:
        raise ValueError(f"fractions: parts {empty} got no group; use fewer parts or larger fractions")
    return parts


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks: ``"It's good."`` -> ``["it's", "good", "."]``."""
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[^\sa-z0-9]", text.lower())


@dataclasses.dataclass(frozen=True)
class Vocab:
    """A token vocabulary with the special tokens first: ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2,
    ``<eos>`` = 3, then the tokens by falling count (ties alphabetical).

    Build it from the training part only (:meth:`from_texts`), so the test part's words are unknown to it as
    they would be to a deployed model.

    Example:
        >>> vocab = Vocab.from_texts([["a", "good", "film"], ["a", "bad", "film"]])
        >>> vocab.decode(vocab.encode(["a", "great", "film"]))
        ['a', '<unk>', 'film']
    """

    tokens: tuple[str, ...]

    SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    @classmethod
    def from_texts(cls, texts: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None) -> Vocab:
        """The tokens seen at least ``min_count`` times, the most frequent ``max_size`` (specials included)."""
        counts = Counter(t for text in texts for t in text)
        kept = sorted((t for t, c in counts.items() if c >= min_count and t not in cls.SPECIALS),
                      key=lambda t: (-counts[t], t))  # fmt: skip
        if max_size is not None:
            kept = kept[: max(0, _positive_int(max_size, "max_size") - len(cls.SPECIALS))]
        return cls((*cls.SPECIALS, *kept))

    @property
    def size(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str], bos: bool = False, eos: bool = False) -> np.ndarray:
        """``(len,)`` int32 ids, unknown tokens as ``<unk>``; ``bos``/``eos`` add the markers."""
        index = {t: i for i, t in enumerate(self.tokens)}
        ids = [index.get(t, self.unk_id) for t in tokens]
        return np.array([self.bos_id] * bos + ids + [self.eos_id] * eos, np.int32)

    def decode(self, ids, strip: bool = True) -> list[str]:
        """The tokens of ``ids``; with ``strip``, up to the first ``<eos>`` and without ``<pad>``/``<bos>``."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids: expected values in [0, {self.size}), got min {ids.min()} and max {ids.max()}")
        out = []
        for i in ids:
            if strip and i == self.eos_id:
                break
            if not (strip and i in (self.pad_id, self.bos_id)):
                out.append(self.tokens[i])
        return out
