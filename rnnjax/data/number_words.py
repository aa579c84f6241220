"""Numbers written out in English and in French: a small translation task with an exact answer.

Source: the ``num2words`` package (``pip install num2words``, part of the ``[data]`` extra), which spells a
number in many languages; ``num2words(1234, lang="en")`` is ``"one thousand, two hundred and thirty-four"`` and
``num2words(1234, lang="fr")`` is ``"mille deux cent trente-quatre"``. The strings are kept exactly as
num2words writes them (commas and ``and`` on the English side, hyphens and ``et`` on the French side).

Split (:func:`split`): the numbers ``0 .. n - 1`` (default 10,000) are shuffled by ``default_rng(seed)`` and
dealt, in that order, to ``train`` / ``valid`` / ``test`` by the given fractions (default 0.8 / 0.1 / 0.1:
8,000 / 1,000 / 1,000 numbers). A test number is never seen in training, so a model must compose its
translation from the parts it learnt ("soixante et onze" for 71 from "soixante", "et", "onze").

Tokens (:func:`tokens`): ``"words"`` splits at spaces and keeps ``-`` and ``,`` as tokens of their own
(``"quatre-vingt-dix"`` -> ``["quatre", "-", "vingt", "-", "dix"]``), so the word vocabulary is a few dozen
entries and :func:`detokenize` restores the exact string; ``"chars"`` uses single characters. The
vocabularies are :class:`rnnjax.data.Vocab` built from the training part (``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2,
``<eos>`` 3 first).

Example:
    >>> data = rj.data.number_words.load()
    >>> src, src_len = data.encode("train", "en")          # (8000, T) int32 ids, lengths
    >>> tgt, tgt_len = data.encode("train", "fr", eos=True)
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from rnnjax.data.packages import require
from rnnjax.data.sequences import Vocab, pad

__all__ = ["FRACTIONS", "NumberWords", "detokenize", "load", "spell", "split", "tokens"]

FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
"""The default parts of the number range and their shares."""
LANGUAGES = ("en", "fr")
KINDS = ("words", "chars")


def spell(numbers, lang: str) -> list[str]:
    """``num2words(n, lang=lang)`` for every ``n`` of ``numbers`` (non-negative ints)."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang: expected one of {LANGUAGES}, got {lang!r}")
    num2words = require("num2words", "rj.data.number_words").num2words
    numbers = np.asarray(numbers)
    if numbers.ndim != 1 or not np.issubdtype(numbers.dtype, np.integer) or (numbers < 0).any():
        raise ValueError(f"numbers: expected a (n,) array of non-negative ints, got {numbers.dtype}{numbers.shape}")
    return [num2words(int(n), lang=lang) for n in numbers]


def tokens(text: str, kind: str = "words") -> list[str]:
    """The tokens of one spelled number: words with ``-`` and ``,`` apart, or characters."""
    if kind == "chars":
        return list(text)
    if kind != "words":
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    return re.findall(r"[^\s,-]+|[,-]", text)


def detokenize(toks, kind: str = "words") -> str:
    """The string of :func:`tokens`' output: ``-`` joins its neighbours, ``,`` sticks to the word before."""
    if kind == "chars":
        return "".join(toks)
    if kind != "words":
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    text = " ".join(toks)
    return text.replace(" - ", "-").replace(" ,", ",")


def split(n: int = 10_000, seed: int = 0, fractions: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """``{part: sorted numbers}``: ``range(n)`` shuffled by ``default_rng(seed)`` and cut by ``fractions``.

    Part ``k`` gets ``round(cumulative fraction * n)`` minus the previous bound numbers, so the parts are
    disjoint and cover ``range(n)``.
    """
    fractions = dict(FRACTIONS if fractions is None else fractions)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < len(fractions):
        raise ValueError(f"n: expected an int of at least {len(fractions)} (one number a part), got {n!r}")
    if not fractions or any(not 0 < f <= 1 for f in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-9:
        raise ValueError(f"fractions: expected positive fractions summing to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.round(np.cumsum([0.0, *fractions.values()]) * n).astype(int)
    parts = {name: np.sort(order[a:b]) for name, a, b in zip(fractions, bounds[:-1], bounds[1:], strict=True)}
    empty = [name for name, numbers in parts.items() if len(numbers) == 0]
    if empty:
        raise ValueError(f"fractions: parts {empty} got no number; use a larger n or larger fractions")
    return parts


@dataclasses.dataclass(frozen=True)
class NumberWords:
    """The split numbers, their spellings and the vocabularies of the training part.

    Attributes:
        numbers: ``{part: (n,) int64}`` the numbers of each part.
        text: ``{lang: {part: [str]}}`` the spellings, ``lang`` in ``("en", "fr")``.
        vocab: ``{lang: Vocab}`` from the training part's tokens.
        kind: ``"words"`` or ``"chars"``.
    """

    numbers: dict[str, np.ndarray]
    text: dict[str, dict[str, list[str]]]
    vocab: dict[str, Vocab]
    kind: str

    def tokens(self, part: str, lang: str) -> list[list[str]]:
        """The token lists of one part in one language."""
        return [tokens(t, self.kind) for t in self.text[lang][part]]

    def encode(self, part: str, lang: str, eos: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, lengths)``: ``(n, T)`` int32 ids padded with ``<pad>`` = 0, and ``(n,)`` int32 lengths;
        ``eos`` ends every row with ``<eos>`` (the decoder's targets)."""
        vocab = self.vocab[lang]
        return pad([vocab.encode(t, eos=eos) for t in self.tokens(part, lang)])

    def decode(self, ids, lang: str) -> list[str]:
        """Strings of ``(n, T)`` ids, each up to its first ``<eos>``."""
        return [detokenize(self.vocab[lang].decode(row), self.kind) for row in np.asarray(ids)]


def load(n: int = 10_000, seed: int = 0, kind: str = "words", fractions: dict[str, float] | None = None) -> NumberWords:
    """The numbers ``0 .. n-1`` in English and French, split by :func:`split`, with training vocabularies.

    Args:
        n: the size of the number range.
        seed: of the split.
        kind: ``"words"`` or ``"chars"`` (see :func:`tokens`).
        fractions: ``{part: share}`` (default :data:`FRACTIONS`); must contain ``"train"``.

    Raises:
        MissingDataPackage: when num2words is not installed, naming the install command.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    parts = split(n, seed, fractions)
    if "train" not in parts:
        raise ValueError(f"fractions: expected a 'train' part (the vocabularies come from it), got {list(parts)}")
    text = {lang: {part: spell(numbers, lang) for part, numbers in parts.items()} for lang in LANGUAGES}
    vocab = {lang: Vocab.from_texts(tokens(t, kind) for t in text[lang]["train"]) for lang in LANGUAGES}
    return NumberWords(parts, text, vocab, kind)
