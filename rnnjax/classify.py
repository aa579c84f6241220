"""Training and reporting a sequence classifier: what the sentiment, speech and sequential-image experiments share.

A classifier is a model of :mod:`rnnjax.models` whose ``apply(params, xs, lengths)`` (or ``apply(params, xs)``
without lengths) gives ``(batch, classes)`` logits, e.g. :class:`rnnjax.models.ManyToOne`. :func:`train` fits one
on a :class:`Split` with cross-entropy, evaluating on the test split as it goes (for the curves only: the reported
accuracy is the final weights', no early stopping on the test part), and saves its definition and a few test
sequences beside its checkpoint (``fit(model=, probe=)``) for ``python -m rnnjax.analyse``; :func:`table` and
:func:`figures` put several of them beside their baselines.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax import losses, plots
from rnnjax.data.sequences import batch_indices
from rnnjax.experiment import Trained, markdown_table, train_model

__all__ = ["Classified", "Split", "figures", "table", "train"]


class Split(NamedTuple):
    """Examples of one part: ``xs: (n, time, features)`` or token ids ``(n, time)``, ``lengths: (n,)`` or None
    (every sequence full length), ``labels: (n,)`` int classes."""

    xs: np.ndarray
    lengths: np.ndarray | None
    labels: np.ndarray


class Classified(NamedTuple):
    """One trained classifier: test accuracy of the final weights, the best test accuracy seen while training
    (for the curves, not for choosing), the mean training-batch accuracy over the last tenth of the steps
    (against the test accuracy: overfitting), the wall time, the test predictions and the training record."""

    name: str
    accuracy: float
    best_eval_accuracy: float
    train_accuracy: float
    seconds: float
    predictions: np.ndarray
    trained: Trained


def _apply(model: Any, params: Any, xs: jax.Array, lengths: jax.Array | None) -> jax.Array:
    return model.apply(params, xs) if lengths is None else model.apply(params, xs, lengths)


def train(
    name: str,
    model: Any,
    params: Any,
    train_split: Split,
    test_split: Split,
    tx: optax.GradientTransformation,
    *,
    steps: int,
    batch_size: int,
    key: jax.Array,
    seed: int,
    run_dir: str | Path,
    eval_every: int = 0,
    progress: bool = True,
    config: Any = None,
    probe_size: int = 8,
) -> Classified:
    """Trains ``model`` from ``params`` by cross-entropy on batches of ``train_split``
    (:func:`rnnjax.data.batch_indices` with ``seed``), logging to ``run_dir/name/``.

    Args:
        name: the model's name (its log folder).
        key: its key (e.g. :func:`rnnjax.experiment.key_for` of the name); steps use ``fold_in(key, step)``.
        eval_every: evaluate the test loss and accuracy every this many steps (0: at the end only).
        probe_size: the first this many test sequences are saved with the model (``fit(model=, probe=)``), the
            inputs that ``python -m rnnjax.analyse`` drives the trained network with.
    """
    labels = np.asarray(train_split.labels, np.int32)
    x_test = jnp.asarray(test_split.xs)
    len_test = None if test_split.lengths is None else jnp.asarray(test_split.lengths)
    y_test = jnp.asarray(test_split.labels, jnp.int32)

    def batch(step: int):
        i = batch_indices(len(labels), batch_size, step, seed)
        return train_split.xs[i], None if train_split.lengths is None else train_split.lengths[i], labels[i]

    def loss_fn(p, b, key):
        del key
        xs, lengths, ys = b
        logits = _apply(model, p, xs, lengths)
        return losses.cross_entropy(logits, ys), {"accuracy": losses.accuracy(logits, ys)}

    @jax.jit
    def test_logits(p):
        return _apply(model, p, x_test, len_test)

    def eval_fn(p):
        logits = test_logits(p)
        return {"loss": losses.cross_entropy(logits, y_test), "accuracy": losses.accuracy(logits, y_test)}

    names = list(inspect.signature(model.apply).parameters)[1:3]  # after params: xs and lengths, by their names
    probe = {names[0]: test_split.xs[:probe_size]}
    if test_split.lengths is not None:
        probe[names[1]] = test_split.lengths[:probe_size]
    trained = train_model(name, params, loss_fn, tx, batch, steps, key=key, run_dir=run_dir, eval_fn=eval_fn,
                          eval_every=eval_every, progress=progress, config=config, model=model,
                          probe=probe)  # fmt: skip
    predictions = np.asarray(jnp.argmax(test_logits(trained.params), -1))
    return Classified(
        name=name,
        accuracy=float(np.mean(predictions == np.asarray(test_split.labels))),
        best_eval_accuracy=float(trained.curve("eval/accuracy")[1].max()),
        train_accuracy=float(np.mean(trained.curve("accuracy")[1][-max(1, steps // 10) :])),
        seconds=trained.seconds,
        predictions=predictions,
        trained=trained,
    )


def table(results: Sequence[Classified], baselines: Mapping[str, float]) -> str:
    """The networks' accuracies and the baselines' (test accuracy only) in one markdown table."""
    rows = [[r.name, "network", r.accuracy, r.best_eval_accuracy, r.train_accuracy, f"{r.seconds:.1f}"]
            for r in results]  # fmt: skip
    rows += [[name, "baseline", acc, "", "", ""] for name, acc in baselines.items()]
    headers = ["model", "kind", "test accuracy", "best test accuracy while training", "train accuracy (last 10%)",
               "seconds"]  # fmt: skip
    return markdown_table(headers, rows)


def figures(
    results: Sequence[Classified],
    baselines: Mapping[str, float],
    test_labels: np.ndarray,
    class_names: Sequence[str],
    run_dir: str | Path,
    *,
    what: str,
    window: int = 1,
) -> Classified:
    """Writes ``learning_curves.png`` (training loss, test-loss markers), ``accuracy.png`` (test accuracy while
    training, the best baseline as a line) and ``confusion.png`` (of the most accurate network); returns that
    network. ``what`` names the task in the titles."""
    run_dir = Path(run_dir)
    curves = {r.name: r.trained.curve("loss") for r in results}
    evals = {r.name: r.trained.curve("eval/loss") for r in results}
    title = f"{what}: training loss (line), test loss (markers)"
    plots.loss_curves(curves, run_dir / "learning_curves.png", evals=evals, ylabel="cross-entropy (nats)",
                      window=window, log_y=False, title=title)  # fmt: skip
    best_base = max(baselines, key=baselines.get)
    steps = results[0].trained.curve("eval/accuracy")[0]
    plots.lines(steps, {r.name: r.trained.curve("eval/accuracy")[1] for r in results}, run_dir / "accuracy.png",
                xlabel="training step", ylabel="test accuracy", hline=baselines[best_base],
                title=f"{what}: test accuracy (line: {best_base} {baselines[best_base]:.3f})")  # fmt: skip
    best = max(results, key=lambda r: r.accuracy)
    plots.confusion_matrix(test_labels, best.predictions, list(class_names), run_dir / "confusion.png",
                           title=f"{best.name}: accuracy {best.accuracy:.3f}")  # fmt: skip
    return best
