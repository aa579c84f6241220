"""Characters as tokens, and the textbook's example: a trained language model completes a sentence."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data.text import CharVocab, windows

TEXT = "The color of an apple is red. The color of the sky is blue. " * 4


def test_vocab_round_trip_and_errors():
    vocab = CharVocab.from_text(TEXT)
    assert vocab.size == len(set(TEXT))
    ids = vocab.encode("apple is red")
    assert ids.dtype == np.int32 and vocab.decode(ids) == "apple is red"
    with pytest.raises(ValueError, match=r"unknown \['z'\]"):
        vocab.encode("zebra")
    with pytest.raises(ValueError, match="ids: expected values in"):
        vocab.decode([vocab.size])
    with pytest.raises(ValueError, match="text: expected at least one character"):
        CharVocab.from_text("")


def test_windows_are_shifted_by_one():
    ids = np.arange(20)
    xs, ys = windows(ids, 5, np.random.default_rng(0), 8)
    assert xs.shape == ys.shape == (8, 5)
    np.testing.assert_array_equal(ys, xs + 1)
    with pytest.raises(ValueError, match="length: expected"):
        windows(ids, 20, np.random.default_rng(0), 1)


def test_a_trained_model_completes_the_color_of_an_apple():
    vocab = CharVocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    model = rj.models.LanguageModel(rj.RNN(cell="lstm", hidden_size=64), output_size=vocab.size, vocab_size=vocab.size)
    params = model.init(jax.random.key(0))

    def loss_fn(p, batch, key):
        xs, ys = batch
        logits, _ = model.apply(p, xs)
        return rj.losses.cross_entropy(logits, ys), {}

    tx = rj.train.optimizer("adam", 1e-2, clip_norm=1.0)
    state = rj.train.TrainState.create(params, tx)
    step = rj.train.make_train_step(loss_fn, tx)

    def data(s):
        return windows(ids, 40, np.random.default_rng([0, s]), 16)

    state, history = rj.train.fit(state, step, data, 250, key=jax.random.key(1), progress=False)
    text = model.generate_text(state.params, vocab, "The color of an apple is", 5, jax.random.key(2), temperature=0)
    assert text == "The color of an apple is red.", (text, history[-1]["loss"])
    sky = model.generate_text(state.params, vocab, "The color of the sky is", 6, jax.random.key(2), temperature=0)
    assert sky == "The color of the sky is blue.", sky
