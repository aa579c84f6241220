"""Characters as token ids: the vocabulary of a text, encoding and decoding."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """A character vocabulary; id ``k`` is ``chars[k]``.

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
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted({c for c in text if c not in index})
        if unknown:
            raise ValueError(f"text: expected characters of the vocabulary, got unknown {unknown}")
        return np.array([index[c] for c in text], np.int32)

    def decode(self, ids) -> str:
        """The text of a sequence of ids."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids: expected values in [0, {self.size}), got min {ids.min()} and max {ids.max()}")
        return "".join(self.chars[i] for i in ids)


def windows(ids: np.ndarray, length: int, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of random windows for next-token training: inputs ``ids[s:s+length]`` and targets
    shifted by one, both ``(batch, length)``."""
    if not 1 <= length < len(ids):
        raise ValueError(f"length: expected 1 <= length < {len(ids)} (the text's ids), got {length}")
    starts = rng.integers(0, len(ids) - length, size=batch)
    index = starts[:, None] + np.arange(length)[None, :]
    return ids[index], ids[index + 1]
