"""Character language models of Shakespeare: seven recurrent cells against unigram and Kneser-Ney n-grams.

The cells (:data:`rnnjax.cells.CELLS`; their options in :class:`Config`'s ``cells``): the tanh RNN, the LSTM,
the GRU, minGRU and minLSTM (Feng et al. 2024: gates read from ``x_t`` alone), the LRU (Orvieto et al. 2023: a
complex diagonal linear recurrence) and the IndRNN (Li et al. 2018: ReLU units with one recurrent weight each,
clipped after every optimiser step), on one budget: one layer of the same width, the same steps, batches,
learning rate and clipping. The layer-normalised LSTM (Ba et al. 2016) runs on request (``--cells ... ln_lstm``):
without a hand-written backward pass its training step costs about 3.5 times the LSTM's here, about as much as
the steps of the seven default cells together.

Each network reads 79 character ids (:mod:`rnnjax.data.shakespeare`: a fixed character set, rare ones mapped
to one) through an embedding and predicts the next character at every step
(:class:`rnnjax.models.LanguageModel`), trained on random windows of the training plays (the same batches
for every cell) with Adam on a cosine schedule. They are scored in bits per character on fixed slices of
held-out plays (validation for the curves and the choice of the model that writes the samples, test for the
headline), each slice a set of rows read from their first character, without any earlier context. The
baselines are fitted on the same training text and score the same characters of the same rows: a unigram
(add-one) and interpolated Kneser-Ney 3- to 5-grams (:mod:`rnnjax.baselines.ngram`).

The run writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl`` (every cell's steps), ``learning_curves.png``
(training loss in bits per character, validation points, the baselines as lines) and ``report.md`` (the
table, samples at several temperatures from the best cell, and a held-out passage continued by it).

Run::

    python experiments/char_lm.py                   # seven cells; 6-11 min on 2 shared cores (381, 664 s)
    python experiments/char_lm.py --tiny            # seconds: a smoke test
    python experiments/char_lm.py --cells lstm --hidden-size 512 --steps 3000
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import numpy as np
import optax

import rnnjax as rj
from rnnjax.baselines import ngram


@dataclasses.dataclass(frozen=True)
class Config:
    """Train character language models on Shakespeare and compare them with n-gram models on held-out plays."""

    cells: tuple[str, ...] = ("rnn", "lstm", "gru", "mingru", "minlstm", "lru", "indrnn")
    """Cells to train, each with its published defaults (:func:`make_model`): rnn (tanh); lstm (forget-gate
    bias 1); gru; mingru and minlstm (the paper's log-space model: positive candidate g, PyTorch-Linear init);
    lru (state size = hidden_size, |lambda| on the ring [0, 1], phases in [0, 2 pi], gamma normalisation);
    indrnn (ReLU, u ~ U(0, 2^(1/seq_len)), input weights N(0, 0.001^2), and |u| clipped to 2^(1/seq_len) after
    every optimiser step as in the paper, gamma = 2, T = seq_len); and, not by default (module docstring),
    ln_lstm (layer norms on W h, U x and C with eps 1e-5, gains 1, forget-gate bias 1 as the lstm's)."""
    hidden_size: int = 256
    """Units per cell (one layer)."""
    embed_dim: int = 32
    """Size of the character embedding."""
    seq_len: int = 100
    """Characters per training window (full BPTT over the window)."""
    batch_size: int = 32
    """Windows per training step."""
    steps: int = 2000
    """Training steps per cell."""
    learning_rate: float = 3e-3
    """Peak learning rate of Adam, decayed to 0 by a cosine schedule."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    train_chars: int | None = None
    """Use only the first this many characters of the training text (None: all 4.3 million)."""
    eval_rows: int = 32
    """Rows of each held-out slice (validation and test), spread evenly over the part."""
    eval_len: int = 1024
    """Characters predicted per row (the slice holds eval_rows * eval_len characters)."""
    eval_every: int = 500
    """Validate every this many steps (and at the end)."""
    ngram_orders: tuple[int, ...] = (3, 4, 5)
    """Orders of the interpolated Kneser-Ney baselines."""
    temperatures: tuple[float, ...] = (0.5, 0.8, 1.0)
    """Sampling temperatures of the best cell's samples."""
    sample_chars: int = 400
    """Characters per sample and per continuation."""
    prompt_chars: int = 300
    """Characters of the held-out passage that the best cell continues."""
    seed: int = 0
    """One seed for the split, the batches, the weights and the samples."""
    name: str = "char_lm"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per cell."""
    tiny: bool = False
    """Smoke test: 8 units, 3 steps, short slices (seconds); overrides those fields."""


TINY = dict(
    hidden_size=8, embed_dim=4, seq_len=16, batch_size=4, steps=3, train_chars=200_000, eval_rows=2, eval_len=32,
    eval_every=2, ngram_orders=(3, 5), temperatures=(0.5, 1.0), sample_chars=20, prompt_chars=20,
)  # fmt: skip
PROBE = 8
"""Held-out examples saved with each model (fit's probe=), the inputs that python -m rnnjax.analyse drives it with."""


def held_out_rows(ids: np.ndarray, rows: int, length: int) -> np.ndarray:
    """``(rows, length + 1)`` windows of ``ids`` at evenly spaced starts: a fixed slice to score."""
    starts = np.linspace(0, len(ids) - length - 1, rows).astype(np.int64)
    return ids[starts[:, None] + np.arange(length + 1)[None, :]]


def make_model(cfg: Config, cell: str, vocab_size: int) -> rj.models.LanguageModel:
    """The language model of one cell, built with the options :class:`Config`'s ``cells`` names."""
    h = cfg.hidden_size
    cells = {
        "rnn": lambda: rj.cells.rnn(h),
        "lstm": lambda: rj.cells.lstm(h, forget_bias=1.0),
        "gru": lambda: rj.cells.gru(h),
        "mingru": lambda: rj.cells.mingru(h),
        "minlstm": lambda: rj.cells.minlstm(h),
        "lru": lambda: rj.cells.lru(h),
        "indrnn": lambda: rj.cells.indrnn(h, "relu", t_max=cfg.seq_len),
        "ln_lstm": lambda: rj.cells.ln_lstm(h, forget_bias=1.0),
    }
    if cell not in cells:
        raise ValueError(f"cells: expected names among {tuple(cells)}, got {cell!r}")
    return rj.models.LanguageModel(rj.RNN(cell=cells[cell]()), vocab_size=vocab_size, embed_dim=cfg.embed_dim)


def optimizer(cfg: Config, cell: str) -> optax.GradientTransformation:
    """Adam on the cosine schedule with clipping; for the IndRNN followed by the paper's clip of ``|u|``."""
    tx = rj.train.optimizer("adam", cfg.learning_rate, clip_norm=cfg.clip_norm, schedule="cosine",
                            total_steps=cfg.steps)  # fmt: skip
    if cell == "indrnn":
        return optax.chain(tx, rj.train.project_params(lambda p: rj.cells.constrain_indrnn(p, t_max=cfg.seq_len)))
    return tx


def train_cell(cfg: Config, cell: str, corpus, train_ids: np.ndarray, slices: dict, run_dir) -> dict:
    """Trains one cell on the shared batches; returns its row: validation and test bpc, curves, params."""
    model = make_model(cfg, cell, corpus.vocab.size)
    key = rj.experiment.key_for(jax.random.key(cfg.seed), cell)
    params = model.init(jax.random.fold_in(key, 0))
    tx = optimizer(cfg, cell)

    def data(step: int):
        return rj.data.windows(train_ids, cfg.seq_len, np.random.default_rng([cfg.seed, step]), cfg.batch_size)

    def loss_fn(p, batch, key):
        del key
        tokens, targets = batch
        nats = rj.losses.cross_entropy(model.apply(p, tokens)[0], targets)
        return nats, {"bpc": nats / math.log(2.0)}

    @jax.jit
    def bpc(p, rows):
        return rj.losses.bits_per_character(model.apply(p, rows[:, :-1])[0], rows[:, 1:])

    trained = rj.experiment.train_model(
        cell, params, loss_fn, tx, data, cfg.steps, key=jax.random.fold_in(key, 1), run_dir=run_dir,
        eval_fn=lambda p: {"bpc": bpc(p, slices["valid"])}, eval_every=cfg.eval_every, progress=cfg.progress,
        config=cfg, model=model, probe={"tokens": slices["test"][:PROBE, :-1]},
    )  # fmt: skip
    steps, train_bpc = trained.curve("bpc")
    last = max(1, len(train_bpc) // 20)
    return {
        "cell": cell,
        "model": model,
        "params": trained.params,
        "num_params": int(sum(x.size for x in jax.tree.leaves(trained.params))),
        "train_bpc": float(np.mean(train_bpc[-last:])),
        "valid_bpc": trained.last("eval/bpc"),
        "test_bpc": float(bpc(trained.params, slices["test"])),
        "seconds": trained.seconds,
        "train": (steps, train_bpc),
        "eval": trained.curve("eval/bpc"),
    }


def baselines(cfg: Config, corpus, train_ids: np.ndarray, slices: dict) -> dict[str, dict[str, float]]:
    """``{baseline: {part: bpc}}`` on the characters the networks predict (each row after its first)."""
    models = {"unigram": ngram.fit_unigram(train_ids, corpus.vocab.size)}
    models |= {f"Kneser-Ney {n}-gram": ngram.fit_kneser_ney(train_ids, corpus.vocab.size, n) for n in cfg.ngram_orders}
    return {
        name: {part: float(np.mean([ngram.bits(m, row)[1:].mean() for row in rows])) for part, rows in slices.items()}
        for name, m in models.items()
    }


def samples(cfg: Config, best: dict, corpus) -> tuple[list[tuple[float, str]], str, str, str]:
    """The best cell's samples at each temperature, and its continuation of a held-out passage."""
    model, params, vocab = best["model"], best["params"], corpus.vocab
    key = rj.experiment.key_for(jax.random.key(cfg.seed), f"samples/{best['cell']}")
    drawn = [
        (t, model.generate_text(params, vocab, "\n", cfg.sample_chars, jax.random.fold_in(key, i), temperature=t)[1:])
        for i, t in enumerate(cfg.temperatures)
    ]
    test_text = vocab.decode(corpus.test)
    start = test_text.find("\n\n", len(test_text) // 2) + 2  # a speech that begins after a blank line
    prompt = test_text[start : start + cfg.prompt_chars]
    truth = test_text[start + cfg.prompt_chars : start + cfg.prompt_chars + cfg.sample_chars]
    continued = model.generate_text(params, vocab, prompt, cfg.sample_chars, jax.random.fold_in(key, len(drawn)), 0.5)
    return drawn, prompt, truth, continued[len(prompt) :]


def indented(text: str) -> str:
    """A markdown code block by indentation (no line of it can start a table)."""
    return "\n".join("    " + line for line in text.split("\n"))


DIAGONAL = {"mingru": "minGRU", "minlstm": "minLSTM", "lru": "the LRU", "indrnn": "the IndRNN"}
"""Cells whose units each evolve on their own (an element-wise recurrence), by their names in prose."""


def verdict_of(cfg: Config, headline: rj.experiment.Headline, results: list[dict], train_chars: int) -> str:
    """What the table says, in words: the best network against the best baseline, and who is behind it."""
    seen = cfg.steps * cfg.batch_size * cfg.seq_len
    behind = [r for r in results if r["test_bpc"] >= headline.baseline_score]
    why = (
        f"With {cfg.steps} steps of {cfg.batch_size} windows a network sees {seen / 1e6:.1f} million characters "
        f"({seen / train_chars:.2f} passes over the training text) while the n-gram counts take in all of it, and "
        "a 5-gram on this much text already knows most spellings and common phrases; a network needs more steps "
        + ("(or, for the tanh RNN, gates) " if any(r["cell"] == "rnn" for r in behind) else "")
        + "to overtake it."
    )
    diagonal = [DIAGONAL[r["cell"]] for r in behind if r["cell"] in DIAGONAL]
    if diagonal:
        names = ", ".join(diagonal[:-1]) + (" and " if len(diagonal) > 1 else "") + diagonal[-1]
        why += (
            f" In one layer each unit of {names} evolves on its own (an element-wise recurrence) and the units meet "
            "only in the linear maps to the logits"
            + (" (the LRU's layer is linear from the embedding to the logits)" if "the LRU" in diagonal else "")
            + "; their papers stack such layers."
        )
    text = (
        f"The best network, {headline.model}, scores {headline.score:.3f} bits per character on the test slice "
        f"against {headline.baseline_score:.3f} for the best baseline ({headline.baseline}): "
    )
    if not headline.beats_baseline:
        return text + f"no network beats {headline.baseline}. " + why
    text += f"it beats every baseline, by {headline.baseline_score - headline.score:.3f} bits per character."
    if behind:
        names = ", ".join(f"{r['cell']} ({r['test_bpc']:.3f})" for r in behind)
        text += f" Behind {headline.baseline}: {names}. " + why
    return text


def main(cfg: Config) -> dict:
    """Fits the baselines, trains every cell, samples from the best, writes the run folder; returns the results."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    corpus = rj.data.shakespeare.corpus(cfg.seed)
    train_ids = corpus.train if cfg.train_chars is None else corpus.train[: cfg.train_chars]
    slices = {part: held_out_rows(getattr(corpus, part), cfg.eval_rows, cfg.eval_len) for part in ("valid", "test")}
    base = baselines(cfg, corpus, train_ids, slices)
    results = [train_cell(cfg, cell, corpus, train_ids, slices, run_dir) for cell in cfg.cells]
    rj.experiment.merge_metrics(run_dir, [r["cell"] for r in results], key="cell")
    rj.plots.loss_curves(
        {r["cell"]: r["train"] for r in results}, run_dir / "learning_curves.png",
        baselines={f"{name} (valid)": v["valid"] for name, v in base.items()},
        evals={r["cell"]: r["eval"] for r in results}, ylabel="bits per character", window=max(1, cfg.steps // 50),
        log_y=False, clip_to_baselines=True,
        title=f"Shakespeare, {cfg.hidden_size} units: training windows and held-out validation plays",
    )  # fmt: skip
    best = min(results, key=lambda r: r["valid_bpc"])
    drawn, prompt, truth, continued = samples(cfg, best, corpus)

    rows = [[r["cell"], r["num_params"], r["train_bpc"], r["valid_bpc"], r["test_bpc"], f"{r['seconds']:.0f}"]
            for r in results]  # fmt: skip
    rows += [[name, "", "", v["valid"], v["test"], ""] for name, v in base.items()]
    table = rj.experiment.markdown_table(
        ["model", "parameters", "train bpc (last 5% of steps)", "valid bpc", "test bpc", "seconds"], rows
    )
    headline = rj.experiment.Headline.best(
        "Shakespeare, held-out plays (test slice)", "bits/char (lower is better)",
        models={r["cell"]: r["test_bpc"] for r in results}, baselines={k: v["test"] for k, v in base.items()},
    )  # fmt: skip
    verdict = verdict_of(cfg, headline, results, len(train_ids))
    samples_md = "\n\n".join(f"Temperature {t}:\n\n{indented(text)}" for t, text in drawn)
    body = f"""Character language models on the 36 training works of Shakespeare
({len(train_ids):,} characters; the split is by play: validation {", ".join(corpus.split.valid)}; test
{", ".join(corpus.split.test)}). One layer of {cfg.hidden_size} units over a {cfg.embed_dim}-dimensional
embedding of {corpus.vocab.size} characters; {cfg.steps} steps of Adam (lr {cfg.learning_rate}, cosine decay,
clip {cfg.clip_norm}) on {cfg.batch_size} random windows of {cfg.seq_len} characters, the same batches for
every cell. Held-out slices: {cfg.eval_rows} rows of {cfg.eval_len} predicted characters each, spread over the
validation and the test plays, each row read from its first character; the baselines are fitted on the same
training text and score the same characters.

{table}

{verdict}

![learning curves](learning_curves.png)

## Samples from {best["cell"]} (best on validation)

{samples_md}

## A held-out passage continued

The passage (from the test plays):

{indented(prompt)}

continued by {best["cell"]} at temperature 0.5:

{indented(continued)}

and as Shakespeare has it:

{indented(truth)}
"""
    rj.experiment.write_report(
        run_dir, "Character language models of Shakespeare", body, seconds=time.perf_counter() - start,
        headlines=[headline],
    )  # fmt: skip
    print(table)
    return {
        "run_dir": run_dir,
        "results": [{k: v for k, v in r.items() if k not in ("model", "params")} for r in results],
        "baselines": base,
        "samples": drawn,
        "continuation": (prompt, continued, truth),
        "table": table,
        "headlines": [headline],
    }


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
