"""Characters as token ids: the vocabulary of a text, encoding and decoding."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["CharVocab", "windows"]


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """A character vocabulary; id ``k`` is ``chars[k]``.

    Build it from the training text with :meth:`from_text`; ``encode`` turns text into the int32 ids a
    :class:`rnnjax.models.LanguageModel` reads (``vocab_size=vocab.size``), ``decode`` turns sampled
    ids back into text, and :meth:`rnnjax.models.LanguageModel.generate_text` does both around sampling.

    Example:
        >>> vocab = CharVocab.from_text("the color of an apple is red")
        >>> vocab.decode(vocab.encode("apple"))
        'apple'
    """

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The sorted set of characters of ``text``."""
        if not text:
            raise ValueError("text: expected at least one character, got an empty string")
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """``(len(text),)`` int32 ids; a character outside the vocabulary raises a ValueError."""
        # A lookup table over code points: millions of characters in one numpy gather, not a Python loop.
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        chars = np.frombuffer(self.chars.encode("utf-32-le"), np.uint32)
        table = np.full(int(max(chars.max(), codes.max(initial=0))) + 1, -1, np.int32)
        table[chars] = np.arange(len(chars), dtype=np.int32)
        ids = table[codes]
        if (ids < 0).any():
            unknown = sorted({chr(c) for c in np.unique(codes[ids < 0])})
            raise ValueError(f"text: expected characters of the vocabulary, got unknown {unknown}")
        return ids

    def decode(self, ids) -> str:
        """The text of a sequence of ids."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids: expected values in [0, {self.size}), got min {ids.min()} and max {ids.max()}")
        return "".join(self.chars[i] for i in ids)


def windows(ids: np.ndarray, length: int, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of random windows for next-token training.

    Args:
        ids: ``(n,)`` the encoded text, e.g. ``vocab.encode(text)``.
        length: steps per window, ``1 <= length < n``.
        rng: where the window starts come from (e.g. ``np.random.default_rng([seed, step])``, so that the
            batch of a step is a function of the step).
        batch: windows per batch.

    Returns:
        ``(inputs, targets)``, both ``(batch, length)``: ``inputs[b] = ids[s:s+length]`` from a uniform start
        ``s`` and ``targets[b] = ids[s+1:s+length+1]``, the next token at every step.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids: expected integer ids of shape (n,), got {ids.dtype}{ids.shape}")
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or not 1 <= length < len(ids):
        raise ValueError(f"length: expected an int with 1 <= length < {len(ids)} (the text's ids), got {length!r}")
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise ValueError(f"batch: expected a positive int, got {batch!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    starts = rng.integers(0, len(ids) - length, size=batch)
    index = starts[:, None] + np.arange(length)[None, :]
    return ids[index], ids[index + 1]
