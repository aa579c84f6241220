"""Gradient flossing (Engelken 2023) on the delayed XOR task: a plain tanh RNN stalls at chance, a flossed one learns.

The delayed XOR task (``rnnjax.data.delayed_xor``): a stream of random bits, and at every step ``t >= 2d`` the
target ``b_{t-d} XOR b_{t-2d}``. The gradient that teaches it must cross ``2d`` steps of the tanh RNN's Jacobians,
whose products shrink like ``exp(lambda_1 t)``; at initialisation (Gaussian ``W``, gain 1) ``lambda_1`` is -0.32
to -0.39 per step (measured), so the signal from ``2d = 30`` steps back arrives shrunk by ``exp(-0.35 * 30) ~ 3e-5``
and training stays at chance (binary cross-entropy ``log 2``), while the exponents fall further. Pre-flossing
(``rnnjax.analysis.floss``) first minimises ``sum_{i<=k} lambda_i^2`` alone, pushing the k largest Lyapunov
exponents to 0, then trains as usual. Three arms start from the same weights and see the same batches (their
keys and data follow the seed's name, not the arm):

- ``plain``: Adam on the task loss;
- ``preflossed``: pre-flossing, then the same training;
- ``preflossed+during``: pre-flossing, and the flossing loss added to the task loss every ``during_every``
  steps of the first ``during_until`` (flossing during training; Engelken's code instead stops training twice,
  at epochs 10 and 20, for 50 steps of flossing alone).

Every run logs the ``monitor_k`` largest exponents every ``monitor_every`` steps (``fit(monitor=...)``, on fixed
probe sequences), and the figure ``lyapunov_and_loss.png`` draws them against the loss; ``flossing.png`` shows
the exponents during pre-flossing. Each model is trained with ``model=`` and ``probe=``, so
``rj.runs.load_run(runs/flossing/<arm>_seed<s>)`` rebuilds it.

Run::

    python experiments/flossing.py                      # d = 15, 64 units, 3 arms x 3 seeds
    python experiments/flossing.py --tiny               # seconds: a smoke test
    python experiments/flossing.py --delay 20 --seeds 0 1 2 3 4

The default run took 28 s on 2 CPU cores at a load average of 3, and 467 s when they were shared with other jobs
(load average 9-12); most of it goes to the three pre-flossings (300 steps each, shared by the two flossed arms
of a seed). It found: plain 0/3 seeds learned (held-out accuracy 0.497, chance), preflossed 2/3 (the third let
its exponents fall back to -0.5 and stayed at chance), preflossed+during 3/3 (0.999). With ``--delay 10
--length 80``: 0/3, 3/3, 3/3; ``--delay 20 --length 160``: 0/3, 2/3, 3/3 (accuracy ~0.96); ``--delay 25
--length 200``: 0/3, 0/3, 0/3 (the flossed arms at ~0.75 after 2000 steps).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rnnjax as rj
from rnnjax.analysis.flossing import Flossed, floss, flossing_loss
from rnnjax.analysis.monitor import lyapunov_monitor
from rnnjax.data.delayed_xor import CHANCE_BCE, delayed_xor
from rnnjax.plots.training import flossing_curves, lyapunov_and_loss

ARMS = ("plain", "preflossed", "preflossed+during")


@dataclasses.dataclass(frozen=True)
class Config:
    """A tanh RNN on the delayed XOR task, trained plainly, after pre-flossing, and with flossing during training."""

    delay: int = 15
    """d: the target at step t is b_(t-d) XOR b_(t-2d)."""
    length: int = 120
    """T, steps per training sequence (targets from step 2d on)."""
    hidden_size: int = 64
    """Units of the tanh RNN (Engelken's code: 80)."""
    gain: float = 1.0
    """W ~ N(0, gain^2 / h) (Engelken: g = 1); U ~ N(0, 1) (lecun_normal with one input), b = 0."""
    batch_size: int = 16
    """Sequences per training step, fresh every step (Engelken: 16)."""
    steps: int = 2000
    """Training steps per run."""
    learning_rate: float = 1e-3
    """Adam's learning rate for the task (Engelken: 1e-3)."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping of the task's updates."""
    k: int = 32
    """Lyapunov exponents flossed (the largest k; Engelken's code: 75 of 80)."""
    floss_steps: int = 300
    """Pre-flossing steps (Adam on the flossing loss alone; Engelken's code: 50)."""
    floss_learning_rate: float = 1e-2
    """Adam's learning rate for pre-flossing."""
    floss_length: int = 55
    """Steps of each flossing trajectory (a fresh bit stream of the task per step, batch 1, as Engelken's code)."""
    floss_warmup: int = 10
    """Steps of a flossing trajectory carried but not averaged."""
    during_every: int = 10
    """preflossed+during: the flossing loss joins the task loss every this many steps ..."""
    during_until: int = 500
    """... of the first this many training steps."""
    during_weight: float = 1.0
    """... with this weight."""
    arms: tuple[str, ...] = ARMS
    """Arms to run: plain, preflossed, preflossed+during."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: each names one initialisation and one stream of batches, shared by the arms."""
    monitor_every: int = 100
    """Steps between measurements of the Lyapunov exponents during training."""
    monitor_k: int = 3
    """Exponents measured during training."""
    probe_size: int = 4
    """Fixed sequences (length T) that drive the network when the exponents are measured."""
    eval_size: int = 256
    """Held-out sequences for the final accuracy."""
    solved: float = 0.9
    """Held-out accuracy from which a run counts as having learned the task (chance: 0.5)."""
    name: str = "flossing"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per run."""
    tiny: bool = False
    """Smoke test: 8 units, d = 3, a few steps of two arms (seconds); overrides those fields."""


TINY = dict(delay=3, length=20, hidden_size=8, batch_size=4, steps=6, k=2, floss_steps=3, floss_length=12,
            floss_warmup=2, during_every=2, during_until=4, arms=("plain", "preflossed+during"), seeds=(0,),
            monitor_every=3, monitor_k=2, probe_size=2, eval_size=8)  # fmt: skip


def make_model(cfg: Config) -> rj.models.ManyToMany:
    cell = rj.cells.rnn(cfg.hidden_size, input_init="lecun_normal", recurrent_init="gaussian", gain=cfg.gain)
    return rj.models.ManyToMany(rj.RNN(cell=cell, hidden_size=cfg.hidden_size), output_size=1)


def batch(cfg: Config, seed: int, step: int) -> tuple[np.ndarray, ...]:
    """Training step ``step``'s batch of seed ``seed``, and the bit stream its flossing term (if any) reads."""
    xs, ys, mask = delayed_xor(np.random.default_rng([seed, step]), cfg.batch_size, cfg.length, cfg.delay)
    return xs, ys, mask, floss_stream(cfg, seed, 2**20 + step)


def floss_stream(cfg: Config, seed: int, step: int) -> np.ndarray:
    """``(1, floss_length, 1)``: one bit stream of the task, the trajectory a flossing step pushes on."""
    return delayed_xor(np.random.default_rng([seed, 2**21, step]), 1, cfg.floss_length, cfg.delay)[0]


class Shared(NamedTuple):
    """What every run of an experiment shares, built once so that each piece is compiled once."""

    model: rj.models.ManyToMany
    train_steps: dict[str, Callable]
    """The train step of each arm (the same for all seeds)."""
    tx: optax.GradientTransformation
    floss_tx: optax.GradientTransformation
    evaluate: Callable
    monitor: Callable
    probe: np.ndarray


def setup(cfg: Config, eval_set: tuple[np.ndarray, ...], probe: np.ndarray) -> Shared:
    model = make_model(cfg)

    def accuracy(logits, ys, mask):
        return (((logits[..., 0] > 0) == (ys[..., 0] > 0.5)) * mask).sum() / mask.sum()

    def loss_fn(during: bool):
        def fn(p, b, key):
            xs, ys, mask, floss_xs, on = b
            logits = model.apply(p, xs)
            bce = rj.losses.binary_cross_entropy(logits, ys, mask)
            metrics = {"bce": bce, "accuracy": accuracy(logits, ys, mask)}
            if not during:
                return bce, metrics
            # Only the steps that floss pay for it: lax.cond runs one branch (forwards and backwards).
            floss_term = lambda: flossing_loss(model.rnn, p.rnn, floss_xs, k=cfg.k, warmup=cfg.floss_warmup)  # noqa: E731
            term = jax.lax.cond(on > 0, floss_term, lambda: jnp.zeros(()))
            return bce + cfg.during_weight * on * term, metrics | {"floss": term}

        return fn

    @jax.jit
    def evaluate(p):
        xs, ys, mask = eval_set
        logits = model.apply(p, xs)
        return {"bce": rj.losses.binary_cross_entropy(logits, ys, mask), "accuracy": accuracy(logits, ys, mask)}

    tx = rj.train.optimizer("adam", cfg.learning_rate, clip_norm=cfg.clip_norm)
    steps = {arm: rj.train.make_train_step(loss_fn(arm == "preflossed+during"), tx) for arm in cfg.arms}
    monitor = lyapunov_monitor(lambda p: (model.rnn, p.rnn), probe, k=cfg.monitor_k, warmup=cfg.length // 4)
    return Shared(model, steps, tx, optax.adam(cfg.floss_learning_rate), evaluate, monitor, probe)


def seed_key(seed: int) -> jax.Array:
    """The key of one seed, from its name: the arms of a seed share their weights and batches."""
    return rj.experiment.key_for(jax.random.key(0), f"seed{seed}")


def preflossed(cfg: Config, seed: int, shared: Shared) -> Flossed:
    """Seed ``seed``'s initial network after pre-flossing (the same for every flossed arm of the seed)."""
    params = shared.model.init(jax.random.fold_in(seed_key(seed), 0), 1)
    return floss(shared.model.rnn, params.rnn, lambda s: floss_stream(cfg, seed, s), k=cfg.k, steps=cfg.floss_steps,
                 tx=shared.floss_tx, warmup=cfg.floss_warmup)  # fmt: skip


def train_arm(cfg: Config, arm: str, seed: int, run_dir: Path, shared: Shared, flossed: Flossed | None) -> dict:
    """One arm of one seed (``flossed``: its pre-flossing, None for the plain arm), trained with the exponents
    monitored; its results."""
    model, key = shared.model, seed_key(seed)
    params = model.init(jax.random.fold_in(key, 0), 1)
    if flossed is not None:
        params = params._replace(rnn=flossed.params)
    during = arm == "preflossed+during"

    def data(step: int):
        on = during and step < cfg.during_until and step % cfg.during_every == 0
        return (*batch(cfg, seed, step), np.float32(on))

    name = f"{arm}_seed{seed}"
    start = time.perf_counter()
    _, history = rj.train.fit(
        rj.train.TrainState.create(params, shared.tx), shared.train_steps[arm], data, cfg.steps,
        key=jax.random.fold_in(key, 1), run_dir=run_dir / name, eval_fn=shared.evaluate,
        config=dataclasses.asdict(cfg), progress=cfg.progress, description=name, overwrite=True, model=model,
        probe={"xs": shared.probe}, monitor=shared.monitor, monitor_every=cfg.monitor_every,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    final = history[-1]
    return {
        "name": name, "arm": arm, "seed": seed, "history": history, "seconds": seconds, "flossed": flossed,
        "accuracy": final["eval/accuracy"], "bce": final["eval/bce"],
        "exponents_start": [history[0][f"lyapunov/{i + 1}"] for i in range(cfg.monitor_k)],
        "exponents_end": [final[f"lyapunov/{i + 1}"] for i in range(cfg.monitor_k)],
        "solved_at": next((r["step"] for r in history if r.get("accuracy", 0) >= cfg.solved), None),
    }  # fmt: skip


def summary(cfg: Config, results: list[dict]) -> tuple[str, dict[str, dict]]:
    """The per-run table and, per arm, the runs that learned and the mean accuracy."""
    rows = [[r["name"], r["accuracy"], r["bce"], "yes" if r["accuracy"] >= cfg.solved else "no",
             r["solved_at"] or "never", " / ".join(f"{v:.3f}" for v in r["exponents_start"]),
             " / ".join(f"{v:.3f}" for v in r["exponents_end"]), f"{r['seconds']:.0f}"] for r in results]  # fmt: skip
    headers = ["run", "eval accuracy", "eval BCE", "learned", f"first step with train accuracy >= {cfg.solved}",
               f"lambda_1..{cfg.monitor_k} at step 0 (after pre-flossing)", f"lambda_1..{cfg.monitor_k} at the end",
               "seconds"]  # fmt: skip
    arms = {}
    for arm in cfg.arms:
        runs = [r for r in results if r["arm"] == arm]
        arms[arm] = {"learned": sum(r["accuracy"] >= cfg.solved for r in runs), "runs": len(runs),
                     "accuracy": float(np.mean([r["accuracy"] for r in runs]))}  # fmt: skip
    return rj.experiment.markdown_table(headers, rows), arms


def flossing_table(cfg: Config, results: list[dict]) -> tuple[str, float, float]:
    """The exponents before and after pre-flossing (on a flossing step's bit stream), the largest |lambda_i| after
    it and the smallest before it."""
    flossed = [r for r in results if r["flossed"] is not None and r["arm"] == "preflossed"] or [
        r for r in results if r["flossed"] is not None]  # fmt: skip
    rows, worst_after, best_before = [], 0.0, np.inf
    for r in flossed:
        before, after = r["flossed"].exponents[0], r["flossed"].exponents[-1]
        rows.append([f"seed {r['seed']}", f"{before[0]:.3f}", f"{before[-1]:.3f}", f"{after[0]:.3f}",
                     f"{after[-1]:.3f}", f"{np.abs(after).max():.3f}"])  # fmt: skip
        worst_after = max(worst_after, float(np.abs(after).max()))
        best_before = min(best_before, float(np.abs(before).min()))
    headers = ["seed", "lambda_1 before", f"lambda_{cfg.k} before", "lambda_1 after", f"lambda_{cfg.k} after",
               f"max_i<={cfg.k} abs(lambda_i) after"]  # fmt: skip
    return rj.experiment.markdown_table(headers, rows), worst_after, best_before


def relapses(cfg: Config, results: list[dict]) -> str:
    """What became of the pre-flossed runs that did not learn: their largest exponent at the end."""
    failed = [r for r in results if r["arm"] != "plain" and r["accuracy"] < cfg.solved]
    if not failed:
        return "Every flossed run learned."
    where = ", ".join(f"{r['name']}: lambda_1 {r['exponents_start'][0]:.3f} -> {r['exponents_end'][0]:.3f}"
                      for r in failed)  # fmt: skip
    return f"The flossed runs that stayed at chance let the exponents fall again during training ({where})."


def main(cfg: Config) -> dict:
    """Runs every arm of every seed, writes the run folder, prints and returns the tables."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    unknown = sorted(set(cfg.arms) - set(ARMS))
    if unknown:
        raise ValueError(f"arms: expected names among {ARMS}, got {unknown}")
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    eval_set = delayed_xor(np.random.default_rng([2**30]), cfg.eval_size, cfg.length, cfg.delay)
    probe = delayed_xor(np.random.default_rng([2**30 + 1]), cfg.probe_size, cfg.length, cfg.delay)[0]
    shared = setup(cfg, eval_set, probe)
    results = []
    for seed in cfg.seeds:
        flossed = preflossed(cfg, seed, shared) if set(cfg.arms) - {"plain"} else None
        results += [train_arm(cfg, arm, seed, run_dir, shared, None if arm == "plain" else flossed)
                    for arm in cfg.arms]  # fmt: skip
    rj.experiment.merge_metrics(run_dir, [r["name"] for r in results], key="run")
    lyapunov_and_loss(
        {r["name"]: r["history"] for r in results}, run_dir / "lyapunov_and_loss.png", metric="bce",
        ylabel="binary cross-entropy (train)", baseline=("chance (log 2)", CHANCE_BCE),
        window=max(1, cfg.steps // 50), title=f"delayed XOR, d = {cfg.delay}: loss and Lyapunov exponents",
        groups={r["name"]: r["arm"] for r in results},
    )  # fmt: skip
    table, arms = summary(cfg, results)
    body = [
        f"Delayed XOR, d = {cfg.delay} (target b_(t-d) XOR b_(t-2d) from step 2d), T = {cfg.length}; tanh RNN of "
        f"{cfg.hidden_size} units (W ~ N(0, {cfg.gain}^2/h)), batch {cfg.batch_size}, {cfg.steps} steps of Adam "
        f"(lr {cfg.learning_rate}, clip {cfg.clip_norm}); chance: accuracy 0.5, BCE log 2 = {CHANCE_BCE:.3f}. "
        f"Pre-flossing: {cfg.floss_steps} steps of Adam (lr {cfg.floss_learning_rate}) on the sum of the {cfg.k} "
        f"largest exponents squared, one fresh bit stream of {cfg.floss_length} steps per step. Evaluation on "
        f"{cfg.eval_size} held-out sequences; 'learned' means an accuracy of at least {cfg.solved}.",
        "",
        table,
        "",
        "Per arm: "
        + "; ".join(
            f"{a}: {s['learned']}/{s['runs']} learned, mean accuracy {s['accuracy']:.3f}" for a, s in arms.items()
        )
        + ".",  # fmt: skip
        "",
        "![loss and exponents over training](lyapunov_and_loss.png)",
    ]
    classics = []
    worst_after = None
    if any(r["flossed"] is not None for r in results):
        ftable, worst_after, best_before = flossing_table(cfg, results)
        flossing_curves({f"seed {r['seed']}": r["flossed"].exponents for r in results if r["arm"] == "preflossed"}
                        or {r["name"]: r["flossed"].exponents for r in results if r["flossed"] is not None},
                        run_dir / "flossing.png", title=f"pre-flossing the {cfg.k} largest exponents")  # fmt: skip
        body += ["", f"Pre-flossing, the exponents on the flossing trajectories (the {cfg.k} largest):", "", ftable, "",
                 "![exponents during pre-flossing](flossing.png)"]  # fmt: skip
        classics.append(rj.experiment.Classic(
            result=f"flossing pushes the {cfg.k} largest Lyapunov exponents of a tanh RNN to 0",
            source="Engelken 2023, abstract; the loss of its code (GradientFlossing_ExampleCode.jl)",
            published="Lyapunov exponents pushed toward zero by backpropagation through differentiable linear algebra",
            ours=f"abs(lambda_i), i <= {cfg.k}: at least {best_before:.3f} before, at most {worst_after:.3f} after "
                 f"{cfg.floss_steps} flossing steps",
            agrees="yes" if worst_after < 0.05 else ("partly" if worst_after < best_before else "no"),
            note="measured on the flossing trajectories (finite-time exponents of one bit stream each); Engelken's "
                 "code flosses 75 of 80",
        ))  # fmt: skip
    plain, flossed_arms = arms.get("plain"), [arms[a] for a in arms if a != "plain"]
    if plain is not None and flossed_arms:
        best = max(flossed_arms, key=lambda s: (s["learned"], s["accuracy"]))
        stalls = plain["accuracy"] < 0.6
        if stalls and best["learned"] > plain["learned"]:
            agrees = "yes"
        elif best["learned"] > plain["learned"] or best["accuracy"] > plain["accuracy"] + 0.05:
            agrees = "partly"
        else:
            agrees = "no"
        classics.append(rj.experiment.Classic(
            result=f"delayed XOR, d = {cfg.delay}: plain tanh RNN stays at chance, pre-flossed one learns",
            source="Engelken 2023, abstract; the delayed XOR task of its code (GradientFlossing_XOR.jl)",
            published="flossing prior to training enhances both the success rate and convergence speed for tasks "
                      "involving long time horizons; flossing during training can further increase the time "
                      "horizon (the success rates of its figures are not compared here)",
            ours="; ".join(f"{a} {s['learned']}/{s['runs']} learned (mean accuracy {s['accuracy']:.3f})"
                           for a, s in arms.items()),  # fmt: skip
            agrees=agrees,
            note=f"{cfg.hidden_size} units (Engelken's code: 80), {cfg.steps} steps, {len(cfg.seeds)} seeds; 'learned' "
                 f"= held-out accuracy >= {cfg.solved}. {relapses(cfg, results)}",
        ))  # fmt: skip
    rj.experiment.write_report(run_dir, "Gradient flossing on the delayed XOR task", "\n".join(body),
                               seconds=time.perf_counter() - start, classics=classics)  # fmt: skip
    print(table)
    return {"run_dir": run_dir, "results": results, "table": table, "arms": arms, "worst_after": worst_after}


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
