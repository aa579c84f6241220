"""Decoding: sampling against softmax frequencies, greedy against a Python loop, beam search against
brute-force enumeration, all on toy step functions whose logits come from a table."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax import decoding

VOCAB = 4
PAD, BOS, EOS = 0, 1, 3


# --- a toy model ----------------------------------------------------------------------------------------


def table_step(table: np.ndarray):
    """``step(carry, token) -> (logits, carry)`` reading ``table[row, t, token]``: logits ``(vocab,)`` for
    batch row ``row`` at step ``t`` after input ``token``. The carry ``(row, t)`` follows each row (and
    each beam) through the decoder, as a network's state would."""
    table = jnp.asarray(table, jnp.float32)

    def step(carry, token):
        row, t = carry
        return table[row, t, token], (row, t + 1)

    return step


def start(batch: int):
    return (jnp.arange(batch), jnp.zeros(batch, jnp.int32))


def log_softmax(table: np.ndarray) -> np.ndarray:
    table = np.asarray(table, np.float64)
    top = table.max(-1, keepdims=True)
    return table - top - np.log(np.exp(table - top).sum(-1, keepdims=True))


def random_table(seed: int, batch: int, max_len: int, scale: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, (batch, max_len, VOCAB, VOCAB)).astype(np.float32)


def greedy_reference(table: np.ndarray, max_len: int, eos: int = EOS, pad: int = PAD):
    """A plain Python loop: the arg-max token each step, fed back, until EOS; then padding."""
    batch = table.shape[0]
    tokens, lengths = np.full((batch, max_len), pad), np.full(batch, max_len)
    for row in range(batch):
        prev = BOS
        for t in range(max_len):
            prev = int(np.argmax(table[row, t, prev]))
            tokens[row, t] = prev
            if prev == eos:
                lengths[row] = t + 1
                break
    return tokens, lengths


def path_log_prob(table: np.ndarray, row: int, seq) -> float:
    """Summed log-probabilities of the tokens ``seq`` (read from BOS) in batch row ``row``."""
    logp = log_softmax(table)
    return float(sum(logp[row, t, prev, tok] for t, (prev, tok) in enumerate(zip((BOS, *seq[:-1]), seq))))


def all_hypotheses(table: np.ndarray, row: int, max_len: int) -> dict[tuple[int, ...], float]:
    """Every finished output by brute force: tokens through EOS, or ``max_len`` tokens without it, and its
    summed log-probability."""
    out = {}
    for length in range(1, max_len + 1):
        for seq in itertools.product(range(VOCAB), repeat=length):
            if EOS in seq[:-1] or (length < max_len and seq[-1] != EOS):
                continue
            out[seq] = path_log_prob(table, row, seq)
    return out


# --- sampling -------------------------------------------------------------------------------------------


def test_sample_logits_at_temperature_zero_is_argmax(getkey):
    logits = jax.random.normal(getkey(), (16, 6))
    np.testing.assert_array_equal(decoding.sample_logits(getkey(), logits, 0.0), jnp.argmax(logits, -1))
    np.testing.assert_array_equal(decoding.sample_logits(getkey(), logits, 0.0, top_k=3), jnp.argmax(logits, -1))
    # top_k=1 leaves only the arg-max, at any temperature
    np.testing.assert_array_equal(decoding.sample_logits(getkey(), logits, 10.0, top_k=1), jnp.argmax(logits, -1))


LOGITS = jnp.array([2.0, 1.0, 0.5, 0.0, -1.0])
N = 20_000


def frequencies(key, logits, temperature, top_k=None) -> np.ndarray:
    draws = decoding.sample_logits(key, jnp.broadcast_to(logits, (N, logits.shape[0])), temperature, top_k)
    return np.bincount(np.asarray(draws), minlength=logits.shape[0]) / N


def tolerance(p: np.ndarray) -> np.ndarray:
    """Five binomial standard deviations of a frequency from N draws (plus one count): a correct sampler
    misses it with probability below 1e-6 per class, while the tested alternatives miss it by far."""
    return 5.0 * np.sqrt(p * (1.0 - p) / N) + 1.0 / N


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_logits_draws_from_softmax_over_temperature(getkey, temperature):
    p = np.asarray(jax.nn.softmax(LOGITS / temperature))
    freq = frequencies(getkey(), LOGITS, temperature)
    np.testing.assert_array_less(np.abs(freq - p), tolerance(p))
    if temperature != 1.0:  # the test tells temperatures apart
        p1 = np.asarray(jax.nn.softmax(LOGITS))
        assert (np.abs(freq - p1) > tolerance(p1)).any()


def test_sample_logits_top_k_draws_from_the_k_best_renormalised(getkey):
    p = np.asarray(jax.nn.softmax(jnp.where(LOGITS >= 0.5, LOGITS / 1.5, -jnp.inf)))  # the 3 best
    freq = frequencies(getkey(), LOGITS, 1.5, top_k=3)
    np.testing.assert_array_equal(freq[3:], 0.0)
    np.testing.assert_array_less(np.abs(freq - p), tolerance(p))


def test_sample_logits_errors_name_the_argument(getkey):
    logits = jnp.zeros((2, 5))
    with pytest.raises(ValueError, match="^temperature:"):
        decoding.sample_logits(getkey(), logits, -0.5)
    for top_k in (0, 6, -1):
        with pytest.raises(ValueError, match="^top_k:"):
            decoding.sample_logits(getkey(), logits, 1.0, top_k)


def test_sample_feeds_each_token_back(getkey):
    """``sample`` at temperature 0 (or with ``top_k=1``) follows the arg-max chain of the step function."""
    table = random_table(0, 3, 6)
    step = table_step(table)
    first, carry = step(start(3), jnp.full(3, BOS))
    expected, _ = greedy_reference(table, 6, eos=-1)  # no end token: six steps each
    tokens = decoding.sample(step, carry, first, 5, getkey(), temperature=0.0)
    assert tokens.shape == (3, 5) and jnp.issubdtype(tokens.dtype, jnp.integer)
    np.testing.assert_array_equal(tokens, expected[:, :5])
    np.testing.assert_array_equal(decoding.sample(step, carry, first, 5, getkey(), 3.0, top_k=1), expected[:, :5])


# --- greedy ---------------------------------------------------------------------------------------------


def eos_table(max_len: int) -> np.ndarray:
    """Row 0 ends at once, row 1 after three tokens, row 2 never; row 3 is random."""
    table = random_table(1, 4, max_len)
    table[0, 0, BOS] = [0.0, 0.0, 0.0, 5.0]
    table[1, :, :, EOS] = -10.0
    table[1, 2, :, EOS] = 10.0
    table[2, :, :, EOS] = -10.0
    return table


@pytest.mark.parametrize("pad_id", [PAD, 2])
def test_greedy_is_the_python_loop_and_stops_at_eos(pad_id):
    max_len = 6
    table = eos_table(max_len)
    tokens, lengths = decoding.greedy(table_step(table), start(4), jnp.full(4, BOS), max_len, EOS, pad_id)
    expected, expected_lengths = greedy_reference(table, max_len, pad=pad_id)
    np.testing.assert_array_equal(tokens, expected)
    np.testing.assert_array_equal(lengths, expected_lengths)
    np.testing.assert_array_equal(lengths[:3], [1, 3, max_len])  # through EOS; without it, max_len
    np.testing.assert_array_equal(tokens[0], [EOS] + [pad_id] * (max_len - 1))
    assert tokens[1, 2] == EOS and (np.asarray(tokens[1, 3:]) == pad_id).all()


# --- beam search ----------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(1, 2))
def beam_search(table, beam_size: int, max_len: int, length_penalty=0.0):
    """Beam search over a table model; jitted, so that the calls of one shape share one compilation."""
    batch = table.shape[0]
    return decoding.beam_search(
        table_step(table), start(batch), jnp.full(batch, BOS), batch=batch, beam_size=beam_size,
        max_len=max_len, eos_id=EOS, pad_id=PAD, length_penalty=length_penalty,
    )  # fmt: skip


def test_beam_size_one_is_greedy():
    max_len = 6
    table = eos_table(max_len)
    beams = beam_search(table, 1, max_len)
    expected, expected_lengths = greedy_reference(table, max_len)
    np.testing.assert_array_equal(beams.tokens[:, 0], expected)
    np.testing.assert_array_equal(beams.lengths[:, 0], expected_lengths)
    scores = [path_log_prob(table, row, expected[row, : expected_lengths[row]]) for row in range(4)]
    np.testing.assert_allclose(beams.scores[:, 0], scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
def test_wide_beam_finds_every_hypothesis_in_order(length_penalty):
    """With vocab 4 and max_len 3 there are 1 + 3 + 9 * 4 = 40 finished outputs; a beam of 40 keeps them
    all, so it must return exactly the brute-force set, with its scores, sorted by the penalised ranking."""
    max_len, k = 3, 40
    table = random_table(2, 2, max_len)
    beams = beam_search(table, k, max_len, length_penalty)
    for row in range(2):
        truth = all_hypotheses(table, row, max_len)
        assert len(truth) == k
        tokens, lengths = np.asarray(beams.tokens[row]), np.asarray(beams.lengths[row])
        found = {tuple(int(v) for v in tokens[j, : lengths[j]]): float(beams.scores[row, j]) for j in range(k)}
        assert found.keys() == truth.keys()
        for seq, score in found.items():
            np.testing.assert_allclose(score, truth[seq], rtol=1e-5, atol=1e-5)
        for j in range(k):
            assert (tokens[j, lengths[j] :] == PAD).all()
            assert (tokens[j, : lengths[j] - 1] != EOS).all()
        ranking = np.asarray(beams.scores[row]) / lengths.astype(np.float64) ** length_penalty
        np.testing.assert_allclose(beams.ranking[row], ranking, rtol=1e-5, atol=1e-6)
        best_first = sorted(truth, key=lambda seq: -truth[seq] / len(seq) ** length_penalty)
        assert [tuple(int(v) for v in tokens[j, : lengths[j]]) for j in range(k)] == best_first


def designed_table(max_len: int = 3) -> np.ndarray:
    """Row 0: greedy takes 1 (p 0.5) and then faces a flat distribution, while 2 (p 0.4) is followed by EOS
    with p 0.94, so ``[2, EOS]`` (p 0.376) beats every continuation of 1 (p <= 0.5 * 0.26).
    Row 1: EOS at once has p 0.5 (log-prob -0.69); ``[2, 2, 2]`` has p 0.45 * 0.9 * 0.9 (log-prob -1.01,
    -0.34 per token): the raw sum prefers the short output, the per-token average the long one."""
    log = lambda *p: np.log(np.asarray(p, np.float32))  # noqa: E731
    table = np.tile(log(0.26, 0.25, 0.25, 0.24), (2, max_len, VOCAB, 1))
    table[0, 0, BOS] = log(0.05, 0.5, 0.4, 0.05)
    table[0, 1, 2] = log(0.02, 0.02, 0.02, 0.94)
    table[1, 0, BOS] = log(0.02, 0.03, 0.45, 0.5)
    table[1, 1:, 2] = log(0.04, 0.03, 0.9, 0.03)
    return table


def test_beam_search_beats_greedy_where_greedy_is_suboptimal():
    table = designed_table()
    greedy, greedy_lengths = greedy_reference(table, 3)
    assert tuple(greedy[0, : greedy_lengths[0]])[:2] == (1, 0)
    truth = all_hypotheses(table, 0, 3)
    best = max(truth, key=truth.get)
    assert best == (2, EOS)
    assert truth[best] > path_log_prob(table, 0, greedy[0, : greedy_lengths[0]]) + 1.0
    beams = beam_search(table, 2, 3)
    np.testing.assert_array_equal(beams.tokens[0, 0], [2, EOS, PAD])
    assert beams.lengths[0, 0] == 2
    np.testing.assert_allclose(beams.scores[0, 0], truth[best], rtol=1e-5)


def test_length_penalty_changes_the_ranking_as_documented():
    """``ranking = score / length ** length_penalty``: 0 keeps the raw sum (short wins), 1 the per-token mean."""
    table = designed_table()
    raw, mean = beam_search(table, 3, 3, length_penalty=0.0), beam_search(table, 3, 3, length_penalty=1.0)
    np.testing.assert_array_equal(raw.tokens[1, 0], [EOS, PAD, PAD])
    np.testing.assert_array_equal(mean.tokens[1, 0], [2, 2, 2])
    np.testing.assert_allclose(raw.scores[1, 0], np.log(0.5), rtol=1e-5)
    np.testing.assert_allclose(mean.scores[1, 0], np.log(0.45 * 0.9 * 0.9), rtol=1e-5)
    np.testing.assert_allclose(mean.ranking[1, 0], np.log(0.45 * 0.9 * 0.9) / 3, rtol=1e-5)
    # the search itself ranks by the raw sum: the same beams, in another order
    key = lambda b, j: (tuple(np.asarray(b.tokens[1, j])), round(float(b.scores[1, j]), 5))  # noqa: E731
    assert {key(raw, j) for j in range(3)} == {key(mean, j) for j in range(3)}


def test_beam_search_errors_name_the_argument():
    table = random_table(3, 1, 2)
    for beam_size, max_len, name in [(0, 2, "beam_size"), (2, 0, "max_len"), (2.0, 2, "beam_size")]:
        with pytest.raises(ValueError, match=f"^{name}: expected a positive int"):
            beam_search(table, beam_size, max_len)


def test_decoders_run_eagerly_and_under_jit():
    """The helper above jits beam search; eager and jitted runs agree (greedy: see the tests above)."""
    max_len = 6
    table = eos_table(max_len)
    eager = decoding.beam_search(
        table_step(table), start(4), jnp.full(4, BOS), batch=4, beam_size=3, max_len=max_len, eos_id=EOS,
        length_penalty=0.6,
    )  # fmt: skip
    jitted = beam_search(table, 3, max_len, 0.6)
    np.testing.assert_array_equal(jitted.tokens, eager.tokens)
    np.testing.assert_array_equal(jitted.lengths, eager.lengths)
    np.testing.assert_allclose(jitted.scores, eager.scores, rtol=1e-6)
    greedy = jax.jit(lambda bos: decoding.greedy(table_step(table), start(4), bos, max_len, EOS, PAD))
    expected, expected_lengths = greedy_reference(table, max_len)
    tokens, lengths = greedy(jnp.full(4, BOS))
    np.testing.assert_array_equal(tokens, expected)
    np.testing.assert_array_equal(lengths, expected_lengths)


@pytest.mark.parametrize("decoder", ["greedy", "beam_search"])
def test_decoders_run_with_64_bit_enabled(x64, decoder):
    """With ``jax_enable_x64`` (the suite's ``x64`` fixture) default ints and floats are 64-bit; a float32
    model must still decode."""
    max_len = 6
    table = eos_table(max_len)
    expected, expected_lengths = greedy_reference(table, max_len)
    if decoder == "greedy":
        tokens, lengths = decoding.greedy(table_step(table), start(4), jnp.full(4, BOS), max_len, EOS, PAD)
    else:
        beams = beam_search(table, 1, max_len)
        tokens, lengths = beams.tokens[:, 0], beams.lengths[:, 0]
    np.testing.assert_array_equal(tokens, expected)
    np.testing.assert_array_equal(lengths, expected_lengths)


def test_sample_bernoulli_draws_each_output_from_its_sigmoid_and_feeds_frames_back(getkey):
    logits = jnp.array([[-2.0, 0.0, 3.0]])

    def fixed(carry, frame):
        assert frame.shape == (1, 3) and frame.dtype == jnp.float32
        return logits, carry

    n = 4000
    frames = decoding.sample_bernoulli(fixed, (), logits, n, getkey())
    assert frames.shape == (1, n, 3) and set(np.unique(frames)) <= {0.0, 1.0}
    np.testing.assert_allclose(frames[0].mean(0), jax.nn.sigmoid(logits[0]), atol=0.03)

    # Each output copies the frame fed back (logits +-30): every frame equals the first one drawn.
    def copy(carry, frame):
        return 60.0 * frame - 30.0, carry

    first = jnp.zeros((8, 5))  # sigma(0): the first frame is a coin toss per output
    frames = decoding.sample_bernoulli(copy, (), first, 6, getkey())
    assert 0 < float(frames[:, 0].mean()) < 1
    np.testing.assert_array_equal(frames, jnp.broadcast_to(frames[:, :1], frames.shape))
    assert decoding.sample_bernoulli(fixed, (), logits, 0, getkey()).shape == (1, 0, 3)
    with pytest.raises(ValueError, match="num_steps"):
        decoding.sample_bernoulli(fixed, (), logits, -1, getkey())
