"""The 3-bit flip-flop, opened: the fixed points of trained networks (Sussillo & Barak 2013).

Three input channels carry rare +1/-1 pulses; each output channel must hold the sign of its channel's last
pulse (:mod:`rnnjax.data.flip_flop`), so a network that solves it is a memory of 2^3 = 8 states. The tanh RNN,
the GRU and the LSTM (``rj.models.ManyToMany``, a linear readout at every step) train on the same batches
with a mean squared error. Then, at zero input (no pulse: the network must hold what it has), the fixed
points of each trained network are found from states sampled along its trajectories with noise
(:func:`rnnjax.analysis.fixed_points.find_fixed_points`, the method of Sussillo & Barak 2013 with the settings
of Golub & Sussillo 2018's FixedPointFinder) and classified by the eigenvalues of the step's Jacobian there:
stable (every ``|lambda| < 1``), saddles (one unstable direction) and the rest.

Sussillo & Barak found 8 stable fixed points, one per memory, with saddles between them whose unstable
directions lead from one memory to its neighbours; three independent bistable bits, each with two stable
states and an unstable one between them, would make 3^3 = 27 fixed points: 8 stable, 12 with one unstable
direction (a cube's edges), 6 with two (its faces) and 1 with three (its centre). The report counts ours
against both, and checks that the stable points' outputs are the 8 distinct memories. It also asks the network
itself: after 10,000 more steps of no input, are its bits still there, and which stable points does the same
search find from the states it settled in (the attractors, found without noisy starts)?

Writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl`` (every cell's steps), ``<cell>/model.json`` and
``probe.npz`` (``python -m rnnjax.analyse runs/flip_flop/<cell>``), ``fixed_points_<cell>.png`` (the fixed
points and a few trajectories on the top 3 principal components), ``trials_<cell>.png`` (inputs, targets and
outputs), ``loss_curves.png`` and ``report.md``.

Run::

    python experiments/flip_flop.py            # rnn, gru, lstm, 32 units: 2 min on 2 CPU cores at load 14 (36 s CPU)
    python experiments/flip_flop.py --tiny     # seconds: a smoke test
    python experiments/flip_flop.py --cells lstm --hidden-size 64 --steps 3000
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj
from rnnjax.analysis.fixed_points import find_fixed_points, sample_states
from rnnjax.analysis.systems import state_from_vector, step_map
from rnnjax.cells.base import input_size, output_of
from rnnjax.data.flip_flop import flip_flop
from rnnjax.plots import dynamics


@dataclasses.dataclass(frozen=True)
class Config:
    """Train RNN, GRU and LSTM on the 3-bit flip-flop and find the fixed points of each at zero input."""

    cells: tuple[str, ...] = ("rnn", "gru", "lstm")
    """Cells to train, as rj.cells.make builds them (rnn: tanh, orthogonal W; lstm: forget-gate bias 1)."""
    hidden_size: int = 32
    """Units per cell (Golub & Sussillo's example: 16; Sussillo & Barak's network: far larger)."""
    bits: int = 3
    """Memory bits: input and output channels."""
    length: int = 64
    """Steps per training sequence."""
    pulse_probability: float = 0.05
    """Probability of a pulse per step and channel (every channel also pulses at step 0)."""
    batch_size: int = 64
    """Sequences per training step (fresh ones every step)."""
    steps: int = 1000
    """Training steps per cell."""
    learning_rate: float = 1e-2
    """Adam's learning rate."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    eval_size: int = 256
    """Held-out sequences: the evaluation MSE, and the trajectories the starting states are drawn from."""
    eval_every: int = 250
    """Evaluate every this many steps (and at the end)."""
    starts: int = 1024
    """Starting states of the fixed-point search (FixedPointFinder's example: 1024)."""
    noise: float = 0.5
    """Standard deviation of the Gaussian noise added to each sampled starting state (its example: 0.5)."""
    fp_steps: int = 5000
    """Adam iterations of the fixed-point search at most (FixedPointFinder's max_iters)."""
    fp_learning_rate: float = 1e-2
    """Adam's learning rate in the fixed-point search."""
    hold_steps: int = 10000
    """Silent steps after each held-out sequence before its bits are read again: does the memory last?"""
    shown: int = 10
    """Trajectories drawn in each fixed-point figure."""
    seed: int = 0
    """One seed for the weights, the data and the starting states."""
    name: str = "flip_flop"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per cell."""
    tiny: bool = False
    """Smoke test: 8 units, 16 steps a sequence, 6 training steps, 32 starts, 3000 search steps (seconds)."""


TINY = dict(hidden_size=8, length=16, batch_size=8, steps=6, eval_size=32, eval_every=3, starts=32, fp_steps=3000,
            fp_learning_rate=0.1, hold_steps=20)  # fmt: skip


def product_counts(bits: int) -> dict[int, int]:
    """Fixed points of ``bits`` independent bistable units by unstable directions: ``C(bits, d) 2^(bits - d)``
    (each unit at one of its two stable states or at the unstable one between them)."""
    return {d: math.comb(bits, d) * 2 ** (bits - d) for d in range(bits + 1)}


@functools.partial(jax.jit, static_argnames=("cell", "steps"))
def settle(cell: rj.Cell, params, states: jax.Array, steps: int) -> jax.Array:
    """``states: (batch, n)`` after ``steps`` more steps of zero input (the cell's step on state vectors)."""
    step = jax.vmap(step_map(cell, params), (0, None))
    x = jnp.zeros((input_size(cell, params),), states.dtype)
    return jax.lax.fori_loop(0, steps, lambda _, a: step(a, x), states)


def readout(cell: rj.Cell, params, head, states) -> np.ndarray:
    """The model's outputs ``V h + c`` at state vectors ``(k, n)`` (``h``: the carry's output part)."""
    carries = state_from_vector(jnp.asarray(states), cell.initial_carry(params))
    return np.asarray(rj.models.dense(head, output_of(cell, carries)))


def train_cell(cfg: Config, name: str, run_dir, eval_set) -> dict:
    """Trains one cell, finds its fixed points at zero input, draws them; returns its row."""
    cell = rj.cells.make(name, cfg.hidden_size)
    model = rj.models.ManyToMany(rj.RNN(cell=cell), output_size=cfg.bits)
    key = rj.experiment.key_for(jax.random.key(cfg.seed), name)
    params = model.init(jax.random.fold_in(key, 0), cfg.bits)
    tx = rj.train.optimizer("adam", cfg.learning_rate, clip_norm=cfg.clip_norm)
    xs, ys = (jnp.asarray(a) for a in eval_set)

    def data(step: int):
        return flip_flop(np.random.default_rng([cfg.seed, step]), cfg.batch_size, cfg.length, bits=cfg.bits,
                         p=cfg.pulse_probability)  # fmt: skip

    def loss_fn(p, batch, key):
        inputs, targets = batch
        return rj.losses.mse(model.apply(p, inputs), targets), {}

    predict = jax.jit(model.apply)

    def eval_fn(p):
        return {"mse": rj.losses.mse(predict(p, xs), ys)}

    trained = rj.experiment.train_model(
        name, params, loss_fn, tx, data, cfg.steps, key=jax.random.fold_in(key, 1), run_dir=run_dir,
        eval_fn=eval_fn, eval_every=cfg.eval_every, progress=cfg.progress, config=cfg, model=model,
        probe={"xs": np.asarray(xs[:8])},
    )  # fmt: skip
    start = time.perf_counter()
    net, net_params = model.rnn, trained.params.rnn
    trajectories = rj.analysis.trajectory(net, net_params, xs)  # (eval, T + 1, n): the states from a_0 = 0
    starts = sample_states(trajectories, cfg.starts, key=jax.random.fold_in(key, 2), noise=cfg.noise)
    fixed = find_fixed_points(net, net_params, initial_states=starts, steps=cfg.fp_steps,
                              learning_rate=cfg.fp_learning_rate)  # fmt: skip
    seconds = time.perf_counter() - start
    # What each stable fixed point holds: the readout's signs there, one of the 2^bits memories.
    outputs = readout(cell, net_params[0][0], trained.params.head, fixed.states)
    held = {tuple(np.sign(y).astype(int)) for y in outputs[fixed.stable]}
    dynamics.fixed_points(
        fixed, trajectories, run_dir / f"fixed_points_{name}.png", shown=cfg.shown,
        title=f"{name}, {cfg.hidden_size} units: fixed points at zero input",
    )  # fmt: skip
    dynamics.channel_trials(eval_set[0], eval_set[1], np.asarray(predict(trained.params, xs)),
                            run_dir / f"trials_{name}.png", title=f"{name}: held-out trials")  # fmt: skip
    # The memory without the search: the states the network settles in after hold_steps more steps of no input,
    # the bits its readout gives there, and the stable points that a search started from those states finds
    # (the attractors, seen from the network's side; the search above has to find them from noisy starts).
    settled = settle(cell, net_params[0][0], trajectories[:, -1], cfg.hold_steps)
    bits = np.sign(readout(cell, net_params[0][0], trained.params.head, settled))
    kept = float(np.mean(bits == eval_set[1][:, -1]))
    attractors = find_fixed_points(net, net_params, initial_states=settled, steps=cfg.fp_steps,
                                   learning_rate=cfg.fp_learning_rate)  # fmt: skip
    settled_out = readout(cell, net_params[0][0], trained.params.head, attractors.states)
    radius = np.abs(fixed.eigenvalues[:, 0])  # the largest |lambda| at each point
    settled_radius = np.abs(attractors.eigenvalues[attractors.stable, 0])
    stalled = fixed.final_speeds[~(fixed.final_speeds < fixed.tol)]
    counts = fixed.counts()
    by_dims = np.bincount(fixed.unstable_dims, minlength=cfg.bits + 1)
    return {
        "cell": name,
        "final_mse": trained.last("eval/mse"),
        **counts,
        "by_unstable_dims": by_dims.tolist(),
        "memories": len(held),
        "bits_kept": kept,
        "attractors": int(attractors.stable.sum()),
        "attractor_memories": len({tuple(np.sign(y).astype(int)) for y in settled_out[attractors.stable]}),
        "settled_radius": (float(settled_radius.min()), float(settled_radius.max())) if settled_radius.size else None,
        "stable_radius": (float(radius[fixed.stable].min()), float(radius[fixed.stable].max()))
        if fixed.stable.any()
        else None,
        "stalled_median_speed": float(np.median(stalled)) if stalled.size else None,
        "converged": fixed.converged,
        "starts": fixed.starts,
        "iterations": fixed.iterations,
        "train_seconds": trained.seconds,
        "fp_seconds": seconds,
        "train": trained.curve("loss"),
        "eval": trained.curve("eval/mse"),
    }


def classics(cfg: Config, results: list[dict]) -> list[rj.experiment.Classic]:
    """Sussillo & Barak's finding beside each trained cell's fixed points: yes when the stable points are the
    2^bits memories and saddles were found, partly when some of each were found, no otherwise."""
    memories = 2**cfg.bits
    out = []
    for r in results:
        ok = r["stable"] == memories and r["memories"] == memories and r["saddles"] > 0
        some = r["stable"] > 0 and r["saddles"] > 0
        out.append(rj.experiment.Classic(
            result=f"{cfg.bits}-bit flip-flop: one stable fixed point per memory, saddles between them ({r['cell']})",
            source="Sussillo & Barak 2013 (the 3-bit flip-flop example); Golub & Sussillo 2018, fig. 2",
            published="8 stable fixed points, one per memory state, at the corners of a cube in the top 3 PCs, "
                      "with saddle points (one unstable dimension) between neighbouring memories that route the "
                      "flips; FixedPointFinder's 16-unit LSTM: 8 stable fixed points and saddles",
            ours=f"{r['cell']} ({cfg.hidden_size} units, final MSE {r['final_mse']:.2g}): {r['stable']} stable "
                 f"(their outputs: {r['memories']} of {memories} memories), {r['saddles']} saddles, "
                 f"{r['more unstable']} with 2+ unstable dims",
            agrees="yes" if ok else "partly" if some else "no",
            note="ours is a small discrete-time network trained by BPTT and Adam, theirs a large continuous-time "
                 f"one; fixed points at zero input from {r['starts']} noisy states along held-out trajectories "
                 f"({r['converged']} converged below the tolerance"
                 + (f"; the others stalled at a median speed of {r['stalled_median_speed']:.2g}"
                    if r["stalled_median_speed"] is not None else "")
                 + f"); the trained network keeps {100 * r['bits_kept']:.1f}% of its bits over "
                 f"{cfg.hold_steps} silent steps, and a search from the states it settles in finds "
                 f"{r['attractors']} stable points ({r['attractor_memories']} memories)",
        ))  # fmt: skip
    return out


def main(cfg: Config) -> dict:
    """Trains every cell, finds and draws its fixed points, writes the run folder; returns the results table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    eval_set = flip_flop(np.random.default_rng([cfg.seed, 2**31]), cfg.eval_size, cfg.length, bits=cfg.bits,
                         p=cfg.pulse_probability)  # fmt: skip
    results = [train_cell(cfg, name, run_dir, eval_set) for name in cfg.cells]
    rj.experiment.merge_metrics(run_dir, cfg.cells, key="cell")
    rj.plots.loss_curves(
        {r["cell"]: r["train"] for r in results}, run_dir / "loss_curves.png",
        evals={r["cell"]: r["eval"] for r in results}, ylabel="MSE", window=max(1, cfg.steps // 50),
        title=f"{cfg.bits}-bit flip-flop, {cfg.hidden_size} units",
    )  # fmt: skip
    expected = product_counts(cfg.bits)
    rows = [
        [r["cell"], r["final_mse"], r["fixed points"], r["stable"], r["saddles"], r["more unstable"],
         " / ".join(map(str, r["by_unstable_dims"])), f"{r['memories']} of {2**cfg.bits}",
         "-" if r["stable_radius"] is None else "{:.4f} to {:.4f}".format(*r["stable_radius"]),
         f"{r['converged']} of {r['starts']}", r["bits_kept"], f"{r['attractors']} ({r['attractor_memories']})",
         f"{r['train_seconds']:.1f}", f"{r['fp_seconds']:.1f}"]
        for r in results
    ]  # fmt: skip
    table = rj.experiment.markdown_table(
        ["cell", "final eval MSE", "fixed points", "stable", "saddles (1 unstable dim)", "2+ unstable dims",
         "by unstable dims 0 / 1 / 2 / ...", "memories held by the stable points", "largest abs(eig) at the stable",
         "starts converged", f"bits kept after {cfg.hold_steps} silent steps",
         "stable points found from the settled states (memories)", "train s", "search s"],
        rows,
    )  # fmt: skip
    stalls = [
        f"- {r['cell']}: {r['starts'] - r['converged']} of {r['starts']} starts ended above the tolerance (median "
        f"speed {r['stalled_median_speed']:.2g}), yet the search from the settled states finds {r['attractors']} "
        f"stable points ({r['attractor_memories']} memories)"
        + ("" if r["settled_radius"] is None else ", whose largest abs(eig) is {:.4f} to {:.4f}".format(
            *r["settled_radius"]))
        + ": where an eigenvalue is near 1, q is nearly flat along its direction, so Adam approaches such a point "
        "slowly from afar, and a slow region can hold a start too"
        for r in results if r["stalled_median_speed"] is not None and r["converged"] < r["starts"] / 2
    ]  # fmt: skip
    figures = "\n".join(f"![{r['cell']}](fixed_points_{r['cell']}.png) ![{r['cell']} trials](trials_{r['cell']}.png)"
                        for r in results)  # fmt: skip
    body = (
        f"{cfg.bits}-bit flip-flop, T = {cfg.length}, pulses with probability {cfg.pulse_probability} per step and "
        f"channel; {cfg.hidden_size} units, batch {cfg.batch_size}, {cfg.steps} steps of Adam (lr "
        f"{cfg.learning_rate}, clip {cfg.clip_norm}); MSE on {cfg.eval_size} held-out sequences (predicting 0 "
        f"scores 1). Fixed points at zero input from {cfg.starts} states drawn along the held-out trajectories "
        f"plus N(0, {cfg.noise}^2) noise, at most {cfg.fp_steps} Adam steps (lr {cfg.fp_learning_rate}); "
        "'memories held' counts the distinct sign patterns of the readout at the stable points. "
        f"{cfg.bits} independent bistable bits would give, by unstable dims 0 / 1 / ... / {cfg.bits}: "
        f"{' / '.join(str(expected[d]) for d in range(cfg.bits + 1))}. 'Bits kept' reads each held-out "
        f"sequence's bits again after {cfg.hold_steps} more steps of no input (the network's own outputs); the "
        "next column runs the same search from the states the network settled in there.\n\n"
        f"{table}\n\n"
        + ("\n".join(stalls) + "\n\n" if stalls else "")
        + f"![loss curves](loss_curves.png)\n\n{figures}"
    )
    rj.experiment.write_report(run_dir, f"{cfg.bits}-bit flip-flop: fixed points of trained networks", body,
                               seconds=time.perf_counter() - start, classics=classics(cfg, results))  # fmt: skip
    print(table)
    return {"run_dir": run_dir, "results": results, "table": table}


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
