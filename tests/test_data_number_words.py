"""rj.data.number_words: English and French spellings of numbers, split by number."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import rnnjax as rj

nw = rj.data.number_words


@pytest.fixture(scope="module")
def data():
    return nw.load(n=2000, seed=0)


def test_the_split_is_disjoint_covers_the_range_and_follows_the_seed():
    parts = nw.split(10_000, seed=0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 8000, "valid": 1000, "test": 1000}  # documented
    together = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(together), np.arange(10_000))  # disjoint and complete
    again = nw.split(10_000, seed=0)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    assert not np.array_equal(parts["test"], nw.split(10_000, seed=1)["test"])
    with pytest.raises(ValueError, match="fractions"):
        nw.split(100, fractions={"train": 0.5, "test": 0.4})


def test_spellings_are_num2words_and_the_pairs_line_up(data):
    part = next(p for p, v in data.numbers.items() if 1234 in v)
    i = int(np.flatnonzero(data.numbers[part] == 1234)[0])
    assert data.text["en"][part][i] == "one thousand, two hundred and thirty-four"
    assert data.text["fr"][part][i] == "mille deux cent trente-quatre"
    assert nw.spell([71, 80], "fr") == ["soixante et onze", "quatre-vingts"]


@pytest.mark.parametrize("kind", nw.KINDS)
def test_tokens_round_trip_every_spelling(kind):
    for lang in nw.LANGUAGES:
        for text in nw.spell(np.arange(0, 10_000, 7), lang):
            assert nw.detokenize(nw.tokens(text, kind), kind) == text
    assert nw.tokens("quatre-vingt-dix", "words") == ["quatre", "-", "vingt", "-", "dix"]
    assert nw.tokens("one thousand, two", "words") == ["one", "thousand", ",", "two"]


def test_encode_decode_and_vocabularies_from_training(data):
    for lang in nw.LANGUAGES:
        ids, lengths = data.encode("test", lang, eos=True)
        assert ids.dtype == np.int32 and lengths.dtype == np.int32 and ids.shape[0] == 200
        assert (ids[np.arange(200), lengths - 1] == rj.data.Vocab.eos_id).all()
        assert data.decode(ids, lang) == data.text[lang]["test"]
    vocab = data.vocab["fr"]
    assert vocab.tokens[:4] == rj.data.Vocab.SPECIALS and "quatre" in vocab.tokens and "-" in vocab.tokens
    assert "zero" not in vocab.tokens  # French only
    chars = nw.load(n=300, kind="chars")
    ids, _ = chars.encode("train", "fr")
    assert set(chars.vocab["fr"].tokens[4:]) <= set("abcdefghijklmnopqrstuvwxyzé -")
    assert chars.decode(ids, "fr") == chars.text["fr"]["train"]


def test_a_missing_num2words_names_the_install_command(monkeypatch):
    real = importlib.import_module

    def fake(name, *args):
        if name == "num2words":
            raise ModuleNotFoundError("No module named 'num2words'", name="num2words")
        return real(name, *args)

    monkeypatch.setattr(rj.data.packages.importlib, "import_module", fake)
    with pytest.raises(rj.data.MissingDataPackage, match="pip install"):
        nw.load(n=100)
