"""Polyphonic music: next-step prediction of Bach chorales as piano rolls, tanh RNN vs LSTM vs GRU.

The chorales of music21's corpus (:mod:`rnnjax.data.chorales`: the 350 distinct files, the sung parts on an
eighth-note grid, 46 pitches from MIDI 36 to 81) are split by chorale with the seed (280 train, 35
validation, 35 test). A :class:`rnnjax.models.ManyToMany` network reads the frame at step t (which pitches
sound) and gives 46 logits for the frame at t + 1, every pitch an independent Bernoulli (a multi-label
sigmoid, as in Boulanger-Lewandowski et al. 2012's RNN baseline and Chung et al. 2014). A chorale is read
from its start after an all-silent frame, so its first frame is predicted too. The score is the negative
log-likelihood per time step: the sum over pitches of the Bernoulli NLL, averaged over every frame of the
held-out chorales (nats; lower is better).

Baselines, fitted on the training chorales and scored on the same test frames: *independent Bernoulli* (each
pitch on with its training frequency, whatever came before) and *per-pitch Markov chain* (each pitch on with
the training probability given whether it sounded at the step before: on an eighth-note grid most notes are
held, so persistence alone is strong). Chung et al. 2014 report 8.54 for the GRU on JSB Chorales; that data
set is quantised to quarter notes and split otherwise, so compare the ordering of the cells, not the numbers.

The best cell on validation continues the first bars of a test chorale by sampling (every pitch drawn from
its Bernoulli, the frame fed back), written as ``generated.mid`` with a piano-roll figure beside the real
continuation. The run writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl``, ``loss_curves.png``,
``generated.png``, ``original.png``, ``generated.mid`` and ``report.md``.

Run::

    python experiments/music.py                    # rnn, lstm, gru
    python experiments/music.py --tiny             # seconds: 4 chorales, a smoke test
    python experiments/music.py --cells lstm gru --hidden-size 256 --steps 3000
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj
from rnnjax.data import chorales


@dataclasses.dataclass(frozen=True)
class Config:
    """Train tanh RNN, LSTM and GRU to predict the next piano-roll frame of Bach chorales, against simple baselines."""

    cells: tuple[str, ...] = ("rnn", "lstm", "gru")
    """Cells to train: rnn (tanh), lstm, gru."""
    hidden_size: int = 128
    """Units per cell (one layer)."""
    steps_per_quarter: int = 2
    """Grid of the piano roll: 2 is eighth notes, 4 sixteenths."""
    limit: int | None = None
    """Use only the first this many chorales (None: all 350)."""
    seq_len: int = 64
    """Steps per training window (64 eighths: 8 bars of 4/4); full BPTT over the window."""
    batch_size: int = 32
    """Windows per training step, each from another training chorale."""
    steps: int = 1500
    """Training steps per cell."""
    learning_rate: float = 3e-3
    """Peak learning rate of Adam, decayed by a cosine schedule."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    eval_every: int = 500
    """Validation NLL every this many steps (and at the end)."""
    prime_steps: int = 16
    """Steps of the held-out chorale that start the generated fragment."""
    generate_steps: int = 64
    """Steps the best cell samples after them."""
    seed: int = 0
    """One seed for the split, the batches, the weights and the sample."""
    name: str = "music"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    cache_dir: str | None = None
    """Where the parsed piano rolls are kept (None: $XDG_CACHE_HOME/rnnjax)."""
    progress: bool = True
    """Show a progress bar per cell."""
    tiny: bool = False
    """Smoke test: 4 chorales, 8 units, 4 steps (seconds); overrides those fields."""


TINY = dict(limit=4, hidden_size=8, seq_len=16, batch_size=2, steps=4, eval_every=2, prime_steps=4, generate_steps=8)
CELLS = ("rnn", "lstm", "gru")
PROBE = 8
"""Held-out examples saved with each model (fit's probe=), the inputs that python -m rnnjax.analyse drives it with."""


def with_silence(rolls: list[np.ndarray], extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 1 + max T + extra, pitches)`` float32: a silent frame, then each roll, zeros after; and the
    rolls' lengths (the frames to predict)."""
    T = max(len(r) for r in rolls)
    out = np.zeros((len(rolls), 1 + T + extra, rolls[0].shape[1]), np.float32)
    for i, r in enumerate(rolls):
        out[i, 1 : 1 + len(r)] = r
    return out, np.array([len(r) for r in rolls], np.int32)


def whole(rolls: list[np.ndarray]) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(inputs, targets, lengths)`` that read each chorale from its start: frame t predicts frame t + 1."""
    seq, lengths = with_silence(rolls)
    return jnp.asarray(seq[:, :-1]), jnp.asarray(seq[:, 1:]), jnp.asarray(lengths)


def fit_baselines(train: list[np.ndarray]) -> dict:
    """Per-pitch frequencies (independent Bernoulli) and per-pitch ``P(on | on before)``, ``P(on | off before)``
    (Markov chain) from the training rolls, with add-one smoothing; the step before the first is silent."""
    frames = np.concatenate(train).astype(np.float64)
    before = np.concatenate([np.vstack([np.zeros((1, r.shape[1])), r[:-1]]) for r in train]).astype(np.float64)
    freq = (frames.sum(0) + 1) / (len(frames) + 2)
    on_on = ((frames * before).sum(0) + 1) / (before.sum(0) + 2)
    on_off = ((frames * (1 - before)).sum(0) + 1) / ((1 - before).sum(0) + 2)
    return {"freq": freq, "on_on": on_on, "on_off": on_off}


def baseline_nll(fit: dict, rolls: list[np.ndarray]) -> dict[str, float]:
    """NLL per time step of both baselines on ``rolls`` (every frame, the first after silence)."""

    def nll(p, y):
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(-1)

    frames = np.concatenate(rolls).astype(np.float64)
    before = np.concatenate([np.vstack([np.zeros((1, r.shape[1])), r[:-1]]) for r in rolls]).astype(np.float64)
    markov = np.where(before > 0, fit["on_on"], fit["on_off"])
    return {"independent Bernoulli": float(nll(fit["freq"], frames).mean()),
            "per-pitch Markov chain": float(nll(markov, frames).mean())}  # fmt: skip


def train_cell(
    cfg: Config, cell: str, data: chorales.Chorales, valid, run_dir: Path
) -> tuple[rj.experiment.Trained, rj.models.ManyToMany]:
    """Trains one cell on random windows of the training chorales, validating on whole chorales."""
    model = rj.models.ManyToMany(rj.RNN(cell=cell, hidden_size=cfg.hidden_size), output_size=chorales.NUM_PITCHES)
    key = rj.experiment.key_for(jax.random.key(cfg.seed), cell)
    params = model.init(jax.random.fold_in(key, 0), chorales.NUM_PITCHES)
    tx = rj.train.optimizer("adam", cfg.learning_rate, clip_norm=cfg.clip_norm, schedule="cosine",
                            total_steps=cfg.steps)  # fmt: skip
    seq, lengths = with_silence(data.part("train"), extra=cfg.seq_len)
    batch = min(cfg.batch_size, len(seq))

    def data_fn(step: int):
        idx = rj.data.batch_indices(len(seq), batch, step, cfg.seed)
        starts = np.random.default_rng([cfg.seed, step]).integers(0, np.maximum(lengths[idx] - cfg.seq_len, 0) + 1)
        window = seq[idx[:, None], starts[:, None] + np.arange(cfg.seq_len + 1)]
        valid_steps = np.minimum(lengths[idx] - starts, cfg.seq_len)  # frames left to predict in the window
        return window[:, :-1], window[:, 1:], rj.losses.mask_from_lengths(valid_steps, cfg.seq_len)

    def loss(p, batch):
        xs, ys, mask = batch
        return rj.losses.binary_cross_entropy(model.apply(p, xs), ys, mask)

    xs, ys, lens = valid
    eval_fn = jax.jit(lambda p: {"nll": rj.losses.binary_cross_entropy(model.apply(p, xs, lens), ys,
                                                      rj.losses.mask_from_lengths(lens, xs.shape[1]))})  # fmt: skip
    return rj.experiment.train_model(
        cell, params, lambda p, b, k: (loss(p, b), {}), tx, data_fn, cfg.steps, key=jax.random.fold_in(key, 1),
        run_dir=run_dir, eval_fn=eval_fn, eval_every=cfg.eval_every, progress=cfg.progress, config=cfg,
        model=model, probe={"xs": xs[:PROBE], "lengths": lens[:PROBE]},
    ), model  # fmt: skip


def test_nll(model: rj.models.ManyToMany, params, test) -> float:
    xs, ys, lens = test
    return float(jax.jit(lambda p: rj.losses.binary_cross_entropy(model.apply(p, xs, lens), ys,
                                                 rj.losses.mask_from_lengths(lens, xs.shape[1])))(params))  # fmt: skip


def continue_roll(model: rj.models.ManyToMany, params, prime: np.ndarray, num_steps: int, key: jax.Array) -> np.ndarray:
    """Samples ``num_steps`` frames after ``prime: (P, pitches)`` with :func:`rnnjax.decoding.sample_bernoulli`
    (each pitch from its Bernoulli, each frame fed back). Returns ``(num_steps, pitches)`` of 0/1."""
    xs = jnp.asarray(np.vstack([np.zeros((1, prime.shape[1])), prime]), jnp.float32)[None]
    ys, carry = model.rnn.apply(params.rnn, xs)

    def step_fn(carry, frame):
        ys, carry = model.rnn.apply(params.rnn, frame[:, None], carry=carry)
        return rj.models.dense(params.head, ys[:, 0]), carry

    logits = rj.models.dense(params.head, ys[:, -1])
    return np.asarray(rj.decoding.sample_bernoulli(step_fn, carry, logits, num_steps, key)[0], np.uint8)


def main(cfg: Config) -> dict:
    """Trains every cell, scores them and the baselines, samples a fragment, writes the run folder."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    for c in cfg.cells:
        if c not in CELLS:
            raise ValueError(f"cells: expected names among {CELLS}, got {c!r}")
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    data = chorales.load(cfg.steps_per_quarter, limit=cfg.limit, seed=cfg.seed, cache_dir=cfg.cache_dir)
    valid, test = whole(data.part("valid")), whole(data.part("test"))

    trained, scores, models = {}, {}, {}
    for cell in cfg.cells:
        trained[cell], models[cell] = train_cell(cfg, cell, data, valid, run_dir)
        scores[cell] = {"valid": trained[cell].last("eval/nll"),
                        "test": test_nll(models[cell], trained[cell].params, test)}  # fmt: skip
    rj.experiment.merge_metrics(run_dir, list(trained), key="cell")
    fit = fit_baselines(data.part("train"))
    base = {name: {"valid": v, "test": t} for (name, v), t in
            zip(baseline_nll(fit, data.part("valid")).items(), baseline_nll(fit, data.part("test")).values(),
                strict=True)}  # fmt: skip

    best = min(scores, key=lambda c: scores[c]["valid"])
    piece = int(data.parts["test"][0])
    roll = data.rolls[piece]
    prime = roll[: cfg.prime_steps]
    sample = continue_roll(models[best], trained[best].params, prime, cfg.generate_steps,
                           jax.random.fold_in(rj.experiment.key_for(jax.random.key(cfg.seed), best), 2))  # fmt: skip
    generated = np.vstack([prime, sample])
    original = roll[: cfg.prime_steps + cfg.generate_steps]
    chorales.to_midi(generated, run_dir / "generated.mid", cfg.steps_per_quarter, data.lowest_pitch)
    title = f"{data.names[piece]}: {cfg.prime_steps} steps of the chorale"
    rj.plots.piano_roll(
        generated,
        run_dir / "generated.png",
        lowest_pitch=data.lowest_pitch,
        steps_per_beat=cfg.steps_per_quarter,
        title=f"{title}, then {cfg.generate_steps} sampled by {best}",
    )
    rj.plots.piano_roll(
        original,
        run_dir / "original.png",
        lowest_pitch=data.lowest_pitch,
        steps_per_beat=cfg.steps_per_quarter,
        title=f"{data.names[piece]}: the real continuation",
    )
    rj.plots.loss_curves(
        {c: t.curve("loss") for c, t in trained.items()}, run_dir / "loss_curves.png",
        evals={c: t.curve("eval/nll") for c, t in trained.items()}, ylabel="NLL per time step (nats)",
        baselines={"per-pitch Markov chain (validation)": base["per-pitch Markov chain"]["valid"]},
        window=max(1, cfg.steps // 50), log_y=False, title="Bach chorales: training and validation NLL",
    )  # fmt: skip

    results = [{"name": c, "kind": "model", **s, "seconds": trained[c].seconds} for c, s in scores.items()]
    results += [{"name": n, "kind": "baseline", **s, "seconds": None} for n, s in base.items()]
    rows = [[r["name"], r["kind"], r["valid"], r["test"], "" if r["seconds"] is None else f"{r['seconds']:.0f}"]
            for r in results]  # fmt: skip
    table = rj.experiment.markdown_table(["model", "kind", "valid NLL/step", "test NLL/step", "train s"], rows)
    headline = rj.experiment.Headline.best(
        f"Bach chorales (music21), {len(data.parts['test'])} held-out chorales",
        "NLL per time step, nats (lower is better)",
        {c: s["test"] for c, s in scores.items()}, {n: s["test"] for n, s in base.items()},
    )  # fmt: skip
    order = " < ".join(sorted(scores, key=lambda c: scores[c]["test"]))
    verdict = (f"The best cell ({headline.model}) beats the best baseline ({headline.baseline})."
               if headline.beats_baseline else
               f"No cell beats the {headline.baseline} baseline: with {cfg.steps} steps and {cfg.hidden_size} units "
               "the networks have not learnt more than to hold the notes they hear.")  # fmt: skip
    frames = sum(len(r) for r in data.part("test"))
    body = (
        f"{len(data.rolls)} chorales ({len(data.parts['train'])} train, {len(data.parts['valid'])} validation, "
        f"{len(data.parts['test'])} test: {frames} test frames), {cfg.steps_per_quarter} steps per quarter note, "
        f"{chorales.NUM_PITCHES} pitches (MIDI {chorales.LOWEST_PITCH}-{chorales.HIGHEST_PITCH}); one layer of "
        f"{cfg.hidden_size} units, windows of {cfg.seq_len} steps, batch {cfg.batch_size}, {cfg.steps} steps of "
        f"Adam (lr {cfg.learning_rate}, cosine). NLL per time step = sum over pitches of the Bernoulli NLL, "
        f"averaged over every frame of the held-out chorales.\n\n{table}\n\n{verdict} Test NLL ordering of the "
        f"cells: {order}. Chung et al. (2014) report 8.54 for the GRU on JSB Chorales, their best cell there "
        "(quarter-note grid, their split): compare the ordering, not the numbers.\n\n"
        f"![loss curves](loss_curves.png)\n\nThe first {cfg.prime_steps} steps of test chorale {data.names[piece]}, "
        f"continued for {cfg.generate_steps} steps by {best} (sampled; [generated.mid](generated.mid)):\n\n"
        "![generated](generated.png)\n\nThe real chorale over the same steps:\n\n![original](original.png)\n\n"
        "Every pitch is drawn on its own given the state, so the model cannot make the voices agree within a "
        "step: a sample tends to drift into clusters of neighbouring notes where the real chorale has four "
        "voices (the limit that RNN-RBMs, Boulanger-Lewandowski et al. 2012, address)."
    )
    rj.experiment.write_report(run_dir, "Bach chorales: next-step piano-roll prediction", body,
                               seconds=time.perf_counter() - start, headlines=[headline])  # fmt: skip
    print(table)
    return {"run_dir": run_dir, "results": results, "table": table, "headlines": [headline], "generated": generated}


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
