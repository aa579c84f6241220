"""rj.data.sequences: padding, batches of a finite set, splits by group, token vocabularies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnjax as rj
from rnnjax.data import Vocab, batch_indices, group_split, pad, tokenize


def test_pad_keeps_every_sequence_and_fills_the_rest():
    a, b = np.arange(6.0).reshape(3, 2), np.array([[7.0, 8.0]])
    padded, lengths = pad([a, b], value=-1)
    assert padded.shape == (2, 3, 2) and padded.dtype == np.float64
    np.testing.assert_array_equal(lengths, [3, 1])
    np.testing.assert_array_equal(padded[0], a)
    np.testing.assert_array_equal(padded[1], [[7, 8], [-1, -1], [-1, -1]])


def test_pad_cuts_to_max_length_and_takes_token_ids():
    padded, lengths = pad([np.array([1, 2, 3, 4]), np.array([5])], max_length=2, dtype=np.int32)
    np.testing.assert_array_equal(padded, [[1, 2], [5, 0]])
    np.testing.assert_array_equal(lengths, [2, 1])
    assert padded.dtype == np.int32 and lengths.dtype == np.int32


@pytest.mark.parametrize(
    "sequences, match",
    [([], "at least one"), ([np.ones((2, 3)), np.ones((2, 4))], r"sequences\[1\]"), ([np.ones((0, 2))], "t >= 1")],
)
def test_pad_rejects_bad_sequences(sequences, match):
    with pytest.raises(ValueError, match=match):
        pad(sequences)


def test_padded_batches_run_through_the_network_like_the_single_sequences():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(t, 3)).astype(np.float32) for t in (5, 2, 4)]
    xs, lengths = pad(seqs)
    net = rj.RNN(cell="gru", hidden_size=4)
    params = net.init(__import__("jax").random.key(0), 3)
    ys, _ = net.apply(params, xs, lengths=lengths)
    for i, s in enumerate(seqs):
        alone, _ = net.apply(params, s[None])
        np.testing.assert_allclose(ys[i, : len(s)], alone[0], rtol=1e-5, atol=1e-6)


def test_batch_indices_cover_an_epoch_once_and_repeat_with_the_seed():
    n, bs = 10, 3
    epoch = np.concatenate([batch_indices(n, bs, s, seed=7) for s in range(3)])
    assert len(set(epoch)) == 9  # 3 full batches of an epoch of 10: one example left out, none twice
    np.testing.assert_array_equal(batch_indices(n, bs, 4, seed=7), batch_indices(n, bs, 4, seed=7))
    assert not np.array_equal(batch_indices(n, bs, 3, seed=7), batch_indices(n, bs, 0, seed=7))  # a new shuffle
    assert not np.array_equal(batch_indices(n, bs, 0, seed=8), batch_indices(n, bs, 0, seed=7))


@pytest.mark.parametrize(
    "kwargs, match", [(dict(batch_size=11), "batch_size"), (dict(step=-1), "step"), (dict(n=0), "n")]
)
def test_batch_indices_rejects_bad_arguments(kwargs, match):
    args = dict(n=10, batch_size=3, step=0, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        batch_indices(**args)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=6, max_size=80),
    st.integers(0, 2**16),
)
def test_group_split_never_puts_a_group_in_two_parts(groups, seed):
    groups = np.array(groups)
    if len(np.unique(groups)) < 3:
        return
    try:
        parts = group_split(groups, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=seed)
    except ValueError as e:  # a few large groups can leave a part empty: said, not returned
        assert "got no group" in str(e)
        return
    seen = [set(groups[idx]) for idx in parts.values() if len(idx)]
    for i in range(len(seen)):
        for j in range(i + 1, len(seen)):
            assert not seen[i] & seen[j]
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(groups)))


def test_group_split_is_fixed_by_the_seed_not_the_order_of_examples():
    groups = np.repeat([f"movie{i}" for i in range(30)], 5)
    a = group_split(groups, {"train": 0.8, "test": 0.2}, seed=1)
    perm = np.random.default_rng(0).permutation(len(groups))
    b = group_split(groups[perm], {"train": 0.8, "test": 0.2}, seed=1)
    assert set(groups[a["test"]]) == set(groups[perm][b["test"]])
    assert len(a["test"]) == 30  # 6 of 30 equal groups: exactly the fraction
    assert set(groups[group_split(groups, {"train": 0.8, "test": 0.2}, seed=2)["test"]]) != set(groups[a["test"]])


@pytest.mark.parametrize(
    "fractions, match", [({"a": 0.5, "b": 0.6}, "summing to 1"), ({"a": 1.0, "b": 0.0}, "positive"), ({}, "fractions")]
)
def test_group_split_rejects_bad_fractions(fractions, match):
    with pytest.raises(ValueError, match=match):
        group_split(np.arange(10), fractions, seed=0)


def test_group_split_needs_a_group_for_every_part():
    with pytest.raises(ValueError, match="distinct groups"):
        group_split(np.zeros(10), {"train": 0.5, "test": 0.5}, seed=0)


def test_tokenize_keeps_contractions_and_splits_punctuation():
    assert tokenize("It's a well-made film, REALLY!") == ["it's", "a", "well-made", "film", ",", "really", "!"]


def test_vocab_orders_by_count_and_maps_unknown_words():
    vocab = Vocab.from_texts([["b", "a", "b"], ["c", "b", "a"]], min_count=2)
    assert vocab.tokens == ("<pad>", "<unk>", "<bos>", "<eos>", "b", "a")
    ids = vocab.encode(["a", "zzz", "b"], bos=True, eos=True)
    np.testing.assert_array_equal(ids, [2, 5, 1, 4, 3])
    assert vocab.decode(ids) == ["a", "<unk>", "b"]
    assert vocab.decode([4, 3, 5]) == ["b"]  # up to the first <eos>
    assert vocab.decode(ids, strip=False)[0] == "<bos>"
    assert Vocab.from_texts([["a", "b", "c"]], max_size=5).size == 5
    with pytest.raises(ValueError, match="ids"):
        vocab.decode([6])
