"""rj.classify: train a sequence classifier, table and figures beside the baselines."""

from __future__ import annotations

import jax
import numpy as np
import optax

import rnnjax as rj


def _task(n: int, seed: int) -> rj.classify.Split:
    """Is the sum of a sequence's valid steps positive? (Padding holds large values of the wrong sign.)"""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 9, n).astype(np.int32)
    xs = rng.normal(size=(n, 8, 1)).astype(np.float32)
    valid = np.arange(8)[None, :] < lengths[:, None]
    labels = (np.where(valid, xs[..., 0], 0).sum(1) > 0).astype(np.int32)
    xs[~valid] = np.where(labels[:, None] == 1, -5.0, 5.0).repeat(8, 1)[~valid][:, None]
    return rj.classify.Split(xs, lengths, labels)


def test_train_learns_reports_the_final_weights_and_draws(tmp_path):
    train, test = _task(512, 0), _task(256, 1)
    model = rj.models.ManyToOne(rj.RNN(cell="gru", hidden_size=16), output_size=2)
    params = model.init(jax.random.key(0), 1)
    result = rj.classify.train(
        "gru", model, params, train, test, optax.adam(1e-2), steps=300, batch_size=64, key=jax.random.key(1), seed=0,
        run_dir=tmp_path, eval_every=100, progress=False,
    )  # fmt: skip
    logits = model.apply(result.trained.params, test.xs, test.lengths)
    np.testing.assert_array_equal(result.predictions, np.asarray(logits).argmax(-1))
    assert result.accuracy == np.mean(result.predictions == test.labels) > 0.85  # padding ignored: learnt
    assert result.accuracy == result.trained.last("eval/accuracy") <= result.best_eval_accuracy
    assert 0.5 < result.train_accuracy <= 1 and result.seconds > 0
    assert (tmp_path / "gru" / "metrics.jsonl").exists()

    table = rj.classify.table([result], {"majority": 0.5})
    rows = rj.experiment.table_cells(table)
    assert rows["gru"]["kind"] == "network" and rows["majority"]["test accuracy"] == "0.5"
    best = rj.classify.figures([result], {"majority": 0.5}, test.labels, ["no", "yes"], tmp_path, what="sign")
    assert best is result
    assert all((tmp_path / f).exists() for f in ("learning_curves.png", "accuracy.png", "confusion.png"))


def test_models_without_lengths_are_called_without_them(tmp_path):
    train = rj.classify.Split(
        np.eye(4, dtype=np.float32)[np.arange(64) % 4], None, (np.arange(64) % 4 > 1).astype(np.int32)
    )
    model = rj.models.FeedForward((8,), 2)
    result = rj.classify.train("mlp", model, model.init(jax.random.key(0), 4), train, train, optax.adam(5e-2),
                               steps=60, batch_size=16, key=jax.random.key(1), seed=0, run_dir=tmp_path,
                               progress=False)  # fmt: skip
    assert result.accuracy == 1.0
