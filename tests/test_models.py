"""The architectures: output shapes, padding that changes nothing, a small task each learns, teacher
forcing against free running, and clear errors.

Compiling dominates the run time here, so each check jits one function and calls it on batches of
one shape (clean and garbled), and shapes come from ``jax.eval_shape``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnnjax as rj
from rnnjax.cells import LSTMState
from rnnjax.losses import cross_entropy, mask_from_lengths
from rnnjax.models import FeedForward, LanguageModel, ManyToMany, ManyToOne, OneToMany, Seq2Seq
from rnnjax.models.conditional import shift_right
from rnnjax.models.layers import dense

B, T, I, H, V = 3, 5, 3, 8, 7  # batch, time, input features, hidden size, vocabulary
LENGTHS = jnp.array([T, 2, 4])  # one full row and two padded ones
PAD, BOS, EOS = 0, 1, 2  # Seq2Seq's defaults
ATOL = 1e-6


# --- helpers --------------------------------------------------------------------------------------------


def vectors(seed: int, shape: tuple[int, ...] = (B, T, I)) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def tokens(seed: int, shape: tuple[int, ...] = (B, T), low: int = 0, high: int = V) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).integers(low, high, shape), jnp.int32)


def abstract_params(model, *args):
    """``model.init(key, *args)`` as shapes and dtypes only: no initialiser runs or compiles."""
    return jax.eval_shape(lambda key: model.init(key, *args), jax.random.key(0))


def garble(x: jax.Array, lengths: jax.Array, seed: int, vocab: int | None = None) -> jax.Array:
    """``x`` with every padded step (``t >= lengths[b]``) replaced by garbage: other ids, or large values."""
    x = np.asarray(x)
    rng = np.random.default_rng(seed)
    padded = np.arange(x.shape[1])[None, :] >= np.asarray(lengths)[:, None]
    if vocab is None:
        junk = rng.normal(0.0, 10.0, x.shape)
        padded = padded[..., None]
    else:
        junk = (x + rng.integers(1, vocab, x.shape)) % vocab  # never the old id
    out = np.where(padded, junk, x).astype(x.dtype)
    assert (out != x).any()
    return jnp.asarray(out)


def assert_same_loss_and_grads(value_and_grad, params, clean, garbage) -> None:
    """Loss, aux outputs and every gradient agree on the clean and the garbled batch; the gradient is not zero."""
    (loss, aux), grads = value_and_grad(params, clean)
    (loss_g, aux_g), grads_g = value_and_grad(params, garbage)
    np.testing.assert_allclose(loss_g, loss, rtol=ATOL, atol=ATOL)
    chex.assert_trees_all_close(aux_g, aux, rtol=ATOL, atol=ATOL)
    chex.assert_trees_all_close(grads_g, grads, rtol=ATOL, atol=ATOL)
    assert float(optax.tree.norm(grads)) > 0.0


def fit(loss_fn, params, data, steps: int, lr: float = 1e-2):
    """Trains with ``rj.train`` on ``data(step) -> batch``, ``loss_fn(params, batch) -> (loss, metrics)``.

    Returns the params, the loss per step and ``evaluate(batch) -> metrics`` of the trained params on a
    batch of the training shape: the metrics of one more step, computed before its update, so that the
    compiled step serves (compiling dominates these tests' time).

    RMSProp, not Adam: optax's Adam computes ``decay ** count`` with a Python float and an int32 count,
    which the suite's strict dtype promotion rejects (optax 0.2.8).
    """
    tx = rj.train.optimizer("rmsprop", lr, clip_norm=1.0)
    state = rj.train.TrainState.create(params, tx)
    step = jax.jit(rj.train.make_train_step(lambda p, batch, key: loss_fn(p, batch), tx))
    key = jax.random.key(0)
    losses = []
    for s in range(steps):
        state, metrics = step(state, data(s), key)
        losses.append(metrics["loss"])

    def evaluate(batch) -> dict[str, float]:
        return {k: float(v) for k, v in step(state, batch, key)[1].items()}

    return state.params, np.asarray(jax.device_get(losses)), evaluate


def assert_learned(losses: np.ndarray, ratio: float = 0.3) -> None:
    final = losses[-10:].mean()
    assert np.isfinite(losses).all()
    assert final < ratio * losses[0], f"loss {losses[0]:.3f} -> {final:.3f}"


def greedy_by_apply(logits_fn, buffer: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Free running by a plain Python loop over teacher-forced logits.

    ``logits_fn(buffer)`` gives the logits for ``buffer: (batch, n)`` where ``logits[:, t]`` predicts
    ``buffer[:, t + 1]``; the models read left to right, so whatever stands after ``t`` does not matter
    and one compiled shape serves every step.
    """
    buffer = np.array(buffer)
    for t in range(start, stop):
        buffer[:, t] = np.argmax(np.asarray(logits_fn(jnp.asarray(buffer)))[:, t - 1], axis=-1)
    return buffer


# --- one-to-one -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_feedforward_is_an_mlp(getkey, activation):
    model = FeedForward((6, 4), output_size=2, activation=activation)
    params = model.init(getkey(), I)
    x = np.asarray(vectors(0, (B, I)))
    f = np.tanh if activation == "tanh" else lambda a: np.maximum(a, 0.0)
    a = x
    for layer in params[:-1]:
        a = f(a @ np.asarray(layer.V).T + np.asarray(layer.c))
    expected = a @ np.asarray(params[-1].V).T + np.asarray(params[-1].c)
    y = model.apply(params, jnp.asarray(x))
    chex.assert_shape(y, (B, 2))
    chex.assert_shape([layer.V for layer in params], [(6, I), (4, 6), (2, 4)])
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_feedforward_masked_rows_contribute_nothing(getkey):
    model = FeedForward((6,), output_size=2)
    params = model.init(getkey(), I)
    x, labels, mask = vectors(1, (4, I)), jnp.array([0, 1, 1, 0]), jnp.array([1.0, 1.0, 0.0, 1.0])

    def loss_fn(p, batch):
        logits = model.apply(p, batch)
        return cross_entropy(logits, labels, mask), logits * mask[:, None]

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    assert_same_loss_and_grads(value_and_grad, params, x, x.at[2].set(100.0))


def test_feedforward_learns_xor():
    model = FeedForward((8,), output_size=2)
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    labels = jnp.array([0, 1, 1, 0])

    def loss_fn(p, x):
        logits = model.apply(p, x)
        return cross_entropy(logits, labels), {"accuracy": rj.losses.accuracy(logits, labels)}

    _, losses, evaluate = fit(loss_fn, model.init(jax.random.key(0), 2), lambda s: x, 300, lr=3e-2)
    assert_learned(losses, 0.1)
    assert evaluate(x)["accuracy"] == 1.0


# --- many-to-one ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["last", "mean"])
@pytest.mark.parametrize("vocab", [None, V])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_one_shapes(pool, vocab, bidirectional):
    model = ManyToOne(rj.RNN("lstm", H, num_layers=2, bidirectional=bidirectional), 4, vocab, embed_dim=5, pool=pool)
    params = abstract_params(model, I)
    xs = vectors(0) if vocab is None else tokens(0)
    out = jax.eval_shape(lambda p: model.apply(p, xs, LENGTHS), params)
    chex.assert_shape(out, (B, 4))
    chex.assert_shape(params.head.V, (4, H * (2 if bidirectional else 1)))
    assert (params.E is None) == (vocab is None)


MANY_TO_ONE = {  # (cell, num_layers, bidirectional, pool, vocab)
    "vectors-last-bidirectional-lstm": ("lstm", 1, True, "last", None),
    "tokens-mean-bidirectional-gru": ("gru", 1, True, "mean", V),
    "tokens-last-rnn": ("rnn", 1, False, "last", V),
}


@pytest.mark.parametrize("case", list(MANY_TO_ONE))
def test_many_to_one_padding_changes_nothing(getkey, case):
    """Garbage at padded steps changes neither the outputs nor the gradients, and the shortest row's
    output is that of its unpadded sequence run alone."""
    cell, layers, bidirectional, pool, vocab = MANY_TO_ONE[case]
    model = ManyToOne(rj.RNN(cell, H, num_layers=layers, bidirectional=bidirectional), 3, vocab, 4, pool=pool)
    params = model.init(getkey(), I)
    xs = vectors(0) if vocab is None else tokens(0)
    labels = jnp.array([0, 2, 1])

    def loss_fn(p, xs):
        logits = model.apply(p, xs, LENGTHS)
        return cross_entropy(logits, labels), logits

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    assert_same_loss_and_grads(value_and_grad, params, xs, garble(xs, LENGTHS, 1, vocab))
    logits = value_and_grad(params, xs)[0][1]
    alone = model.apply(params, xs[1:2, : int(LENGTHS[1])])  # the shortest row, unpadded
    np.testing.assert_allclose(logits[1:2], alone, rtol=1e-5, atol=1e-6)


def test_many_to_one_last_pool_is_forward_and_backward_final_h(getkey):
    """``pool="last"`` with a bidirectional net reads ``[h_fwd after x_{L-1}; h_bwd after x_0]``, computed
    here with ``rj.unroll`` over each row and over each row reversed by hand."""
    model = ManyToOne(rj.RNN("lstm", H, bidirectional=True), 2, pool="last")
    params = model.init(getkey(), I)
    xs = vectors(2)
    cell = model.rnn.step_cell
    ((p_fwd, p_bwd),) = params.rnn
    lengths = np.asarray(LENGTHS)
    t = np.arange(T)[None, :]
    index = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # each row reversed within its length
    reversed_xs = jnp.asarray(np.take_along_axis(np.asarray(xs), index[..., None], axis=1))
    h_fwd = rj.unroll(cell, p_fwd, xs, lengths=LENGTHS)[0].h
    h_bwd = rj.unroll(cell, p_bwd, reversed_xs, lengths=LENGTHS)[0].h
    expected = dense(params.head, jnp.concatenate([h_fwd, h_bwd], axis=-1))
    np.testing.assert_allclose(model.apply(params, xs, LENGTHS), expected, rtol=1e-5, atol=1e-6)


def sign_of_sum(step: int, batch: int = 64, time: int = 6):
    rng = np.random.default_rng([1, step])
    lengths = rng.integers(2, time + 1, batch)
    xs = rng.normal(size=(batch, time, 1)) * (np.arange(time)[None, :, None] < lengths[:, None, None])
    return jnp.asarray(xs, jnp.float32), jnp.asarray(lengths), jnp.asarray(xs.sum((1, 2)) > 0, jnp.int32)


def test_many_to_one_learns_the_sign_of_a_sum():
    model, task = ManyToOne(rj.RNN("lstm", 16), 2, pool="last"), sign_of_sum

    def loss_fn(p, batch):
        xs, lengths, labels = batch
        logits = model.apply(p, xs, lengths)
        return cross_entropy(logits, labels), {"accuracy": rj.losses.accuracy(logits, labels)}

    _, losses, evaluate = fit(loss_fn, model.init(jax.random.key(0), 1), task, 300)
    assert_learned(losses)
    assert evaluate(task(10**6))["accuracy"] > 0.9  # unseen sequences; chance: about 0.5


# --- many-to-many ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vocab", [None, V])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_many_shapes(vocab, bidirectional):
    model = ManyToMany(rj.RNN("gru", H, bidirectional=bidirectional), 4, vocab, embed_dim=5)
    params = abstract_params(model, I)
    xs = vectors(0) if vocab is None else tokens(0)
    chex.assert_shape(jax.eval_shape(lambda p: model.apply(p, xs, LENGTHS), params), (B, T, 4))


def test_many_to_many_padding_changes_nothing(getkey):
    model = ManyToMany(rj.RNN("gru", H, bidirectional=True), 4, V, embed_dim=5)
    params = model.init(getkey())
    xs, labels = tokens(3), tokens(4, high=4)
    mask = mask_from_lengths(LENGTHS, T)

    def loss_fn(p, batch):
        xs, labels = batch
        logits = model.apply(p, xs, LENGTHS)
        return cross_entropy(logits, labels, mask), logits * mask[..., None]  # the valid outputs

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    garbage = (garble(xs, LENGTHS, 5, V), garble(labels, LENGTHS, 6, 4))
    assert_same_loss_and_grads(value_and_grad, params, (xs, labels), garbage)


def echo(step: int, batch: int = 64, time: int = 8, vocab: int = 5):
    """``y_t = x_{t-1}`` (and ``y_0 = 0``): repeat the input one step late."""
    rng = np.random.default_rng([3, step])
    xs = rng.integers(1, vocab, (batch, time))
    ys = np.concatenate([np.zeros((batch, 1), int), xs[:, :-1]], axis=1)
    return jnp.asarray(xs), jnp.asarray(rng.integers(4, time + 1, batch)), jnp.asarray(ys)


def test_many_to_many_learns_to_echo_with_a_delay():
    model = ManyToMany(rj.RNN("gru", 16), 5, vocab_size=5, embed_dim=8)

    def loss_fn(p, batch):
        xs, lengths, ys = batch
        logits, mask = model.apply(p, xs, lengths), mask_from_lengths(lengths, xs.shape[1])
        return cross_entropy(logits, ys, mask), {"accuracy": rj.losses.accuracy(logits, ys, mask)}

    _, losses, evaluate = fit(loss_fn, model.init(jax.random.key(0)), echo, 200)
    assert_learned(losses, 0.1)
    assert evaluate(echo(10**6))["accuracy"] > 0.95  # chance: about 0.25


# --- one-to-many ----------------------------------------------------------------------------------------

CONDITIONS = ["state", "input", "both"]
C = 4  # condition size


def one_to_many(condition: str, cell: str = "gru", num_layers: int = 1, hidden: int = H) -> OneToMany:
    return OneToMany(rj.RNN(cell, hidden, num_layers=num_layers), V, embed_dim=5, condition=condition)


def test_shift_right():
    """Teacher forcing reads ``[bos, y_1, ..., y_{T-1}]`` for targets ``y_1..y_T``."""
    targets = jnp.array([[4, 5, 6], [7, 8, 9]], jnp.int32)
    shifted = shift_right(targets, 1)
    np.testing.assert_array_equal(shifted, [[1, 4, 5], [1, 7, 8]])
    assert shifted.dtype == targets.dtype


@pytest.mark.parametrize("condition", CONDITIONS)
def test_one_to_many_shapes(condition):
    model = one_to_many(condition, "lstm", num_layers=2)
    params = abstract_params(model, C)
    v = vectors(0, (B, C))
    chex.assert_shape(jax.eval_shape(lambda p: model.apply(p, v, tokens(1), LENGTHS), params), (B, T, V))
    generated = jax.eval_shape(lambda p: model.generate(p, v, 6, jax.random.key(0)), params)
    chex.assert_shape(generated, (B, 6))
    assert jnp.issubdtype(generated.dtype, jnp.integer)
    assert (params.condition is None) == (condition == "input")
    chex.assert_shape(params.rnn[0][0].U, (4 * H, 5 + (C if condition != "state" else 0)))


@pytest.mark.parametrize("condition", CONDITIONS)
def test_one_to_many_initial_state(getkey, condition):
    """``"state"``/``"both"`` start every layer at ``h = tanh(A v + a)`` (its slice per layer, ``c = 0``);
    ``"input"`` starts at zeros."""
    model = one_to_many(condition, "lstm", num_layers=2)
    params = model.init(getkey(), C)
    v = vectors(1, (B, C))
    carry = model.initial_carry(params, v)
    chex.assert_trees_all_equal_shapes(carry, model.rnn.initial_carry(params.rnn, B))
    if condition == "input":
        chex.assert_trees_all_equal(carry, model.rnn.initial_carry(params.rnn, B))
        return
    A, a = np.asarray(params.condition.V), np.asarray(params.condition.c)
    h = np.tanh(np.asarray(v) @ A.T + a)
    for layer, (state,) in enumerate(carry):
        assert isinstance(state, LSTMState)
        np.testing.assert_allclose(state.h, h[:, layer * H : (layer + 1) * H], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(state.c, 0.0)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_one_to_many_padding_changes_nothing(getkey, condition):
    model = one_to_many(condition)
    params = model.init(getkey(), C)
    v, targets = vectors(2, (B, C)), tokens(3)
    mask = mask_from_lengths(LENGTHS, T)

    def loss_fn(p, targets):
        logits = model.apply(p, v, shift_right(targets, model.bos_id), LENGTHS)
        return cross_entropy(logits, targets, mask), logits * mask[..., None]

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    assert_same_loss_and_grads(value_and_grad, params, targets, garble(targets, LENGTHS, 4, V))


@pytest.mark.parametrize("condition", CONDITIONS)
def test_one_to_many_greedy_generation_is_free_running_teacher_forcing(getkey, condition):
    """``generate(temperature=0)`` equals a Python loop that feeds the argmax of ``apply`` back."""
    model = one_to_many(condition)
    params = model.init(getkey(), C)
    v = vectors(5, (B, C))
    generated = model.generate(params, v, T, jax.random.key(0), temperature=0.0)
    apply = jax.jit(lambda tokens: model.apply(params, v, shift_right(tokens, model.bos_id)))
    buffer = np.zeros((B, T + 1), np.int32)  # [bos, y_1, ..., y_T]; the loop fills y_t from logits[t - 1]
    expected = greedy_by_apply(lambda buf: apply(buf[:, 1:]), buffer, 1, T + 1)
    np.testing.assert_array_equal(generated, expected[:, 1:])


def test_one_to_many_top_k_one_is_greedy_at_any_temperature(getkey):
    """With ``top_k=1`` only the best token survives, whatever the temperature."""
    model = one_to_many("both")
    params = model.init(getkey(), C)
    v = vectors(6, (B, C))
    greedy = model.generate(params, v, 8, jax.random.key(0), temperature=0.0)
    np.testing.assert_array_equal(model.generate(params, v, 8, jax.random.key(1), temperature=5.0, top_k=1), greedy)


ONE_TO_MANY_TARGETS = jnp.array([[1, 2, 3, 4, 5], [5, 5, 1, 1, 2], [3, 1, 4, 1, 5], [2, 6, 6, 3, 1]])


@pytest.mark.parametrize("condition", CONDITIONS)
def test_one_to_many_learns_a_sequence_per_class(condition):
    """A one-hot class generates that class's fixed sequence."""
    model = one_to_many(condition, hidden=16)
    v = jnp.eye(4)

    def loss_fn(p, targets):
        return cross_entropy(model.apply(p, v, shift_right(targets, model.bos_id)), targets), {}

    params, losses, _ = fit(loss_fn, model.init(jax.random.key(0), 4), lambda s: ONE_TO_MANY_TARGETS, 200)
    assert_learned(losses, 0.1)
    generated = model.generate(params, v, 5, jax.random.key(0), temperature=0.0)
    np.testing.assert_array_equal(generated, ONE_TO_MANY_TARGETS)


# --- sequence to sequence -------------------------------------------------------------------------------

SEQ2SEQ = {  # (cell, num_layers, bidirectional encoder, decoder hidden size); a bridge when sizes differ
    "unidirectional": ("lstm", 1, False, H),
    "unidirectional-bridge": ("gru", 1, False, H + 2),
    "bidirectional-bridge": ("lstm", 1, True, H),
    "bidirectional-2-layers": ("gru", 2, True, 2 * H),
}


def seq2seq(case: str) -> Seq2Seq:
    cell, layers, bidirectional, decoder_hidden = SEQ2SEQ[case]
    encoder = rj.RNN(cell, H, num_layers=layers, bidirectional=bidirectional)
    return Seq2Seq(encoder, rj.RNN(cell, decoder_hidden, num_layers=layers), V, V + 1, embed_dim=5)


@pytest.mark.parametrize("case", list(SEQ2SEQ))
def test_seq2seq_shapes(case):
    model = seq2seq(case)
    params = abstract_params(model)
    _, layers, bidirectional, decoder_hidden = SEQ2SEQ[case]
    if (2 * H if bidirectional else H) == decoder_hidden:
        assert params.bridge is None
    else:
        assert len(params.bridge) == layers
        chex.assert_shape([b.V for b in params.bridge], (decoder_hidden, H * (2 if bidirectional else 1)))
    src, tgt_in = tokens(0, (B, T)), tokens(1, (B, T + 2), high=V + 1)
    logits = jax.eval_shape(lambda p: model.apply(p, src, LENGTHS, tgt_in, LENGTHS + 2), params)
    chex.assert_shape(logits, (B, T + 2, V + 1))
    out, lengths = jax.eval_shape(lambda p: model.greedy(p, src, LENGTHS, 6), params)
    chex.assert_shape([out, lengths], [(B, 6), (B,)])
    beams = jax.eval_shape(lambda p: model.beam_search(p, src, LENGTHS, 6, beam_size=3), params)
    chex.assert_shape([beams.tokens, beams.lengths, beams.scores, beams.ranking], [(B, 3, 6), *[(B, 3)] * 3])


def test_seq2seq_bridge_maps_concatenated_final_states(getkey):
    """A bidirectional encoder starts the decoder at ``tanh(B [s_fwd; s_bwd] + d)`` for ``h`` and ``c``."""
    model = seq2seq("bidirectional-bridge")
    params = model.init(getkey())
    src = tokens(7)
    ((carry,),) = model.encode(params, src, LENGTHS)
    _, finals = model.encoder.apply(params.encoder, params.E_src[src], LENGTHS)
    ((fwd, bwd),) = finals
    bridge = params.bridge[0]
    for got, f, b in [(carry.h, fwd.h, bwd.h), (carry.c, fwd.c, bwd.c)]:
        expected = np.tanh(np.concatenate([f, b], -1) @ np.asarray(bridge.V).T + np.asarray(bridge.c))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["unidirectional", "bidirectional-bridge"])
def test_seq2seq_padding_changes_nothing(getkey, case):
    """Garbage after each source's length and after each target's length changes nothing."""
    model = seq2seq(case)
    params = model.init(getkey())
    tgt_lengths = jnp.array([3, T + 1, 1])
    src, tgt = tokens(8), tokens(9, (B, T + 1), high=V + 1)
    mask = mask_from_lengths(tgt_lengths, T + 1)

    def loss_fn(p, batch):
        src, tgt = batch
        logits = model.apply(p, src, LENGTHS, shift_right(tgt, BOS), tgt_lengths)
        return cross_entropy(logits, tgt, mask), logits * mask[..., None]

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    garbage = (garble(src, LENGTHS, 10, V), garble(tgt, tgt_lengths, 11, V + 1))
    assert_same_loss_and_grads(value_and_grad, params, (src, tgt), garbage)


REVERSE_VOCAB, REVERSE_TIME = 8, 5
MAX_LEN = REVERSE_TIME + 1  # the longest target: the reversed source and EOS


def reversal(step: int, batch: int = 64):
    """Source: 3 to 5 tokens from ``3..7``; target: the source reversed, then ``EOS``."""
    rng = np.random.default_rng([4, step])
    lengths = rng.integers(3, REVERSE_TIME + 1, batch)
    t = np.arange(REVERSE_TIME)[None, :]
    valid = t < lengths[:, None]
    src = np.where(valid, rng.integers(3, REVERSE_VOCAB, (batch, REVERSE_TIME)), PAD)
    index = np.where(valid, lengths[:, None] - 1 - t, t)
    tgt = np.full((batch, REVERSE_TIME + 1), PAD)
    tgt[:, :REVERSE_TIME] = np.where(valid, np.take_along_axis(src, index, axis=1), PAD)
    tgt[np.arange(batch), lengths] = EOS
    return tuple(jnp.asarray(a) for a in (src, lengths, tgt, lengths + 1))


def train_reversal(bidirectional: bool):
    """Unidirectional: LSTMs of 16 units, no bridge; bidirectional: GRUs of 24, bridged from 48 to 24."""
    cell, hidden = ("gru", 24) if bidirectional else ("lstm", 16)
    encoder = rj.RNN(cell, hidden, bidirectional=bidirectional)
    model = Seq2Seq(encoder, rj.RNN(cell, hidden), REVERSE_VOCAB, REVERSE_VOCAB, embed_dim=8)

    def loss_fn(p, batch):
        src, src_lengths, tgt, tgt_lengths = batch
        logits = model.apply(p, src, src_lengths, shift_right(tgt, BOS), tgt_lengths)
        return cross_entropy(logits, tgt, mask_from_lengths(tgt_lengths, tgt.shape[1])), {}

    params, losses, _ = fit(loss_fn, model.init(jax.random.key(0)), reversal, 300)
    src, src_lengths, _, _ = reversal(10**6)
    return model, params, losses, model.greedy(params, src, src_lengths, MAX_LEN)


@pytest.fixture(scope="module")
def reverser():
    """A unidirectional encoder-decoder trained to reverse short sequences, and its greedy decoding of
    ``reversal(10**6)`` (shared by the decoding tests)."""
    return train_reversal(bidirectional=False)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_seq2seq_learns_to_reverse(reverser, bidirectional):
    _, _, losses, (out, lengths) = reverser if not bidirectional else train_reversal(bidirectional=True)
    assert_learned(losses)
    _, _, tgt, tgt_lengths = reversal(10**6)
    valid = np.asarray(mask_from_lengths(tgt_lengths, MAX_LEN)) > 0
    hits = np.asarray(out) == np.asarray(tgt)
    assert hits[valid].mean() > 0.7  # token accuracy through EOS; chance: about 1 / 6
    assert (hits.all(1) & (np.asarray(lengths) == np.asarray(tgt_lengths))).mean() > 0.4  # exact matches


def test_seq2seq_greedy_is_free_running_teacher_forcing(reverser):
    """``greedy`` equals a Python loop feeding back the argmax of ``apply``: pad after EOS, lengths through it."""
    model, params, _, (out, lengths) = reverser
    src, src_lengths, _, _ = reversal(10**6)
    apply = jax.jit(lambda tgt: model.apply(params, src, src_lengths, shift_right(tgt, BOS)))
    buffer = np.full((src.shape[0], MAX_LEN + 1), BOS, np.int32)  # [bos, y_1, ...]
    free = greedy_by_apply(lambda buf: apply(buf[:, 1:]), buffer, 1, MAX_LEN + 1)[:, 1:]
    is_eos = free == EOS
    expected_lengths = np.where(is_eos.any(1), is_eos.argmax(1) + 1, MAX_LEN)
    expected = np.where(np.arange(MAX_LEN)[None] < expected_lengths[:, None], free, PAD)
    assert (expected_lengths < MAX_LEN).any()  # some outputs end early, so padding is exercised
    np.testing.assert_array_equal(lengths, expected_lengths)
    np.testing.assert_array_equal(out, expected)


def test_seq2seq_beam_search(reverser):
    """The beams' scores are the teacher-forced log-probabilities of their tokens (so each beam kept its own
    decoder state), ranked best first; the best beam is mostly the greedy output (tests/test_decoding.py
    checks ``beam_size=1`` against greedy and wider beams against brute force)."""
    model, params, _, (out, _) = reverser
    src, src_lengths, _, _ = reversal(10**6)
    n, k = src.shape[0], 3
    beams = model.beam_search(params, src, src_lengths, MAX_LEN, beam_size=k, length_penalty=0.6)
    flat = beams.tokens.reshape(n * k, MAX_LEN)
    logits = model.apply(params, jnp.repeat(src, k, 0), jnp.repeat(src_lengths, k), shift_right(flat, BOS))
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), flat[..., None], -1)[..., 0]
    scores = (logp * mask_from_lengths(beams.lengths.reshape(-1), MAX_LEN)).sum(1).reshape(n, k)
    np.testing.assert_allclose(beams.scores, scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(beams.ranking, beams.scores / beams.lengths.astype(jnp.float32) ** 0.6, rtol=1e-6)
    assert (np.diff(np.asarray(beams.ranking), axis=1) <= 0).all()
    assert (np.asarray(beams.tokens[:, 0]) == np.asarray(out)).all(1).mean() > 0.8  # a sharp model agrees


# --- language model -------------------------------------------------------------------------------------


def language_model(cell: str = "gru", hidden: int = H, num_layers: int = 1) -> LanguageModel:
    return LanguageModel(rj.RNN(cell, hidden, num_layers=num_layers), V, vocab_size=V, embed_dim=5)


def test_language_model_shapes():
    model = language_model("lstm", num_layers=2)
    params = abstract_params(model)
    logits, carry = jax.eval_shape(lambda p: model.apply(p, tokens(0), LENGTHS), params)
    chex.assert_shape(logits, (B, T, V))
    chex.assert_trees_all_equal_shapes(carry, model.rnn.initial_carry(params.rnn, B))
    chex.assert_shape(
        jax.eval_shape(lambda p: model.generate(p, tokens(1, (B, 2)), 9, jax.random.key(0)), params), (B, 9)
    )


def test_language_model_padding_changes_nothing(getkey):
    """Garbage after each row's length changes no valid logit, no gradient, and not the final carry."""
    model = language_model()
    params = model.init(getkey())
    text = tokens(12, (B, T + 1))
    mask = mask_from_lengths(LENGTHS, T)

    def loss_fn(p, text):
        logits, carry = model.apply(p, text[:, :-1], LENGTHS)
        return cross_entropy(logits, text[:, 1:], mask), (logits * mask[..., None], carry)

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    assert_same_loss_and_grads(value_and_grad, params, text, garble(text, LENGTHS + 1, 13, V))


def test_language_model_continues_from_the_carry(getkey):
    """Reading a text in two parts, passing the carry on, equals reading it at once."""
    model = language_model("lstm")
    params = model.init(getkey())
    text = tokens(14, (B, 7))
    logits, carry = model.apply(params, text)
    head, carry_head = model.apply(params, text[:, :3])
    tail, carry_tail = model.apply(params, text[:, 3:], carry=carry_head)
    np.testing.assert_allclose(jnp.concatenate([head, tail], 1), logits, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(carry_tail, carry, rtol=1e-5, atol=1e-6)


def test_language_model_generation(getkey):
    """Greedy generation continues the prompt as a Python loop over ``apply`` does; a temperature divides the
    logits; ``top_k`` draws only among the k best."""
    model = language_model()
    params = model.init(getkey())
    prompt, n, key = tokens(15, (B, 3)), 12, jax.random.key(1)
    generate = jax.jit(model.generate, static_argnames=("num_tokens", "temperature", "top_k"))
    apply = jax.jit(lambda p, text: model.apply(p, text)[0])

    greedy = generate(params, prompt, num_tokens=n, key=key, temperature=0.0)
    buffer = np.concatenate([np.asarray(prompt), np.zeros((B, n), np.int32)], axis=1)
    np.testing.assert_array_equal(greedy, greedy_by_apply(lambda t: apply(params, t), buffer, 3, 3 + n)[:, 3:])

    hot = generate(params, prompt, num_tokens=n, key=key, temperature=0.5)
    sharper = params._replace(head=jax.tree.map(lambda a: a / 0.5, params.head))  # logits / 0.5, exactly
    np.testing.assert_array_equal(generate(sharper, prompt, num_tokens=n, key=key, temperature=1.0), hot)
    assert not np.array_equal(generate(params, prompt, num_tokens=n, key=key, temperature=1.0), hot)

    top2 = generate(params, prompt, num_tokens=n, key=key, temperature=3.0, top_k=2)
    logits = apply(params, jnp.concatenate([prompt, top2], axis=1))[:, 2:-1]  # those that drew top2
    rank = (logits > jnp.take_along_axis(logits, top2[..., None], -1)).sum(-1)  # better tokens than the draw
    assert int(rank.max()) == 1 and int(rank.min()) == 0  # only the two best, and both of them


TEXT = "hello world "
CHARS = sorted(set(TEXT))


def encode(text: str) -> jax.Array:
    return jnp.array([CHARS.index(c) for c in text])


def test_language_model_learns_a_string_and_generates_it():
    model = LanguageModel(rj.RNN("gru", 16), len(CHARS), vocab_size=len(CHARS), embed_dim=8)
    stream = encode(TEXT * 3)
    windows = jnp.stack([stream[i : i + 13] for i in range(len(TEXT))])  # every phase of the period

    def loss_fn(p, windows):
        return cross_entropy(model.apply(p, windows[:, :-1])[0], windows[:, 1:]), {}

    params, losses, _ = fit(loss_fn, model.init(jax.random.key(0)), lambda s: windows, 300)
    assert_learned(losses, 0.1)
    generated = model.generate(params, encode("hel")[None], 20, jax.random.key(0), temperature=0.0)
    assert "".join(CHARS[i] for i in generated[0]) == (TEXT * 3)[3:23]


# --- errors ---------------------------------------------------------------------------------------------


def test_token_errors_name_the_argument(getkey):
    float_ids, too_big, negative = jnp.ones((B, T)), jnp.full((B, T), V), jnp.full((B, T), -1)
    many_to_one = ManyToOne(rj.RNN("gru", H), 2, V)
    many_to_many = ManyToMany(rj.RNN("gru", H), 2, V)
    for model in (many_to_one, many_to_many):
        params = model.init(getkey())
        for bad in (float_ids, too_big, negative, jnp.zeros((B, T, 1), jnp.int32)):
            with pytest.raises(ValueError, match="^xs:"):
                model.apply(params, bad)

    o2m = one_to_many("state")
    params = o2m.init(getkey(), C)
    for bad in (float_ids, too_big, negative):
        with pytest.raises(ValueError, match="^tokens:"):
            o2m.apply(params, vectors(0, (B, C)), bad)

    s2s = seq2seq("unidirectional")
    params = s2s.init(getkey())
    good_tgt = tokens(0, (B, T), high=V + 1)
    for bad in (float_ids, too_big, negative):
        with pytest.raises(ValueError, match="^src:"):
            s2s.apply(params, bad, None, good_tgt)
        with pytest.raises(ValueError, match="^src:"):
            s2s.greedy(params, bad, None, 3)
    for bad in (float_ids, jnp.full((B, T), V + 1)):
        with pytest.raises(ValueError, match="^tgt_in:"):
            s2s.apply(params, tokens(0), None, bad)

    lm = language_model()
    params = lm.init(getkey())
    for bad in (float_ids, too_big, negative):
        with pytest.raises(ValueError, match="^prompt:"):
            lm.generate(params, bad, 2, jax.random.key(0))
    with pytest.raises(ValueError, match="^prompt:"):
        lm.generate(params, jnp.zeros((B, 0), jnp.int32), 2, jax.random.key(0))


def test_language_model_token_errors_name_tokens(getkey):
    """``LanguageModel.apply`` calls its ids ``tokens``; the message should say so."""
    lm = language_model()
    params = lm.init(getkey())
    for bad in (jnp.ones((B, T)), jnp.full((B, T), V)):
        with pytest.raises(ValueError, match="^tokens:"):
            lm.apply(params, bad)


def test_config_errors_name_the_argument(getkey):
    with pytest.raises(ValueError, match="^output_size:"):
        LanguageModel(rj.RNN("gru", H), V - 1, vocab_size=V)
    with pytest.raises(ValueError, match="^vocab_size:"):
        LanguageModel(rj.RNN("gru", H))  # no vocabulary
    lm = LanguageModel(rj.RNN("gru", H), vocab_size=V)  # the vocabulary's size is said once
    assert lm.output_size == lm.vocab_size == V == LanguageModel(rj.RNN("gru", H), V).vocab_size
    with pytest.raises(ValueError, match="^rnn:"):
        LanguageModel(rj.RNN("gru", H, bidirectional=True), V, vocab_size=V)

    with pytest.raises(ValueError, match="^decoder:"):
        Seq2Seq(rj.RNN("lstm", H, num_layers=2), rj.RNN("lstm", H), V, V)
    with pytest.raises(ValueError, match="^decoder:"):
        Seq2Seq(rj.RNN("lstm", H), rj.RNN("gru", H), V, V)
    with pytest.raises(ValueError, match="^decoder:"):
        Seq2Seq(rj.RNN("lstm", H), rj.RNN("lstm", H, bidirectional=True), V, V)

    with pytest.raises(ValueError, match="^rnn:"):
        OneToMany(rj.RNN("gru", H, bidirectional=True), V)
    with pytest.raises(ValueError, match="^condition:"):
        OneToMany(rj.RNN("gru", H), V, condition="hidden")

    with pytest.raises(ValueError, match="^activation:"):
        FeedForward((4,), 2, activation="sigmoid")


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: ManyToOne(rj.RNN("gru", H), 0), "^output_size: expected a positive int, got int 0"),
        (lambda: ManyToMany(rj.RNN("gru", H), 2.0), "^output_size: expected a positive int"),
        (lambda: ManyToOne(rj.RNN("gru", H), 2, embed_dim=0), "^embed_dim:"),
        (lambda: ManyToOne(rj.RNN("gru", H), 2, vocab_size=-1), "^vocab_size:"),
        (lambda: ManyToOne("gru", 2), "^rnn: expected an rj.RNN"),
        (lambda: LanguageModel(rj.RNN("gru", H), vocab_size=0), "^vocab_size:"),
        (lambda: FeedForward((4,), 0), "^output_size:"),
        (lambda: FeedForward((4, 0), 2), r"^hidden_sizes\[1\]:"),
        (lambda: FeedForward([4], 2), "^hidden_sizes: expected a tuple"),
        (lambda: OneToMany(rj.RNN("gru", H), 0), "^vocab_size:"),
        (lambda: OneToMany(rj.RNN("gru", H), V, bos_id=-1), "^bos_id:"),
        (lambda: OneToMany(rj.RNN("gru", H), V, bos_id=V), "^bos_id:"),
        (lambda: Seq2Seq(rj.RNN("lstm", H), rj.RNN("lstm", H), 0, V), "^src_vocab:"),
        (lambda: Seq2Seq(rj.RNN("lstm", H), rj.RNN("lstm", H), V, V, eos_id=V), "^eos_id:"),
        (lambda: Seq2Seq("lstm", rj.RNN("lstm", H), V, V), "^encoder: expected an rj.RNN"),
    ],
)
def test_bad_model_configs_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_model_calls_raise(getkey):
    lm = LanguageModel(rj.RNN("gru", H), vocab_size=V)
    params = lm.init(getkey())
    prompt = jnp.zeros((2, 3), jnp.int32)
    with pytest.raises(ValueError, match="^num_tokens: expected an int >= 0, got int -1"):
        lm.generate(params, prompt, -1, getkey())
    with pytest.raises(ValueError, match="^key: expected a PRNG key"):
        lm.generate(params, prompt, 3, 0)
    with pytest.raises(ValueError, match="^temperature:"):
        lm.generate(params, prompt, 3, getkey(), temperature=float("nan"))
    with pytest.raises(ValueError, match="^top_k:"):
        lm.generate(params, prompt, 3, getkey(), top_k=2.5)
    assert lm.generate(params, prompt, 0, getkey()).shape == (2, 0)
    with pytest.raises(ValueError, match="^key: expected a PRNG key"):
        lm.init(0)
    with pytest.raises(ValueError, match="^key: expected a PRNG key"):
        ManyToOne(rj.RNN("gru", H), 2).init(1, I)
    vocab = rj.data.CharVocab("ab")
    with pytest.raises(ValueError, match=f"^vocab: expected {V} characters"):
        lm.generate_text(params, vocab, "ab", 3, getkey())

    with pytest.raises(ValueError, match="^input_size:"):
        ManyToOne(rj.RNN("gru", H), 2).init(getkey())
    with pytest.raises(ValueError, match="^pool:"):  # at construction or, at the latest, at apply
        model = ManyToOne(rj.RNN("gru", H), 2, pool="max")
        model.apply(model.init(getkey(), I), vectors(0))
