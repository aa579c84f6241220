"""Long sequences in bounded memory: what ``rj.unroll(..., remat=)`` saves and what it costs, forward + backward.

A 128-unit LSTM, batch 8, over T = 10,000 and 100,000 steps, three ways:

- ``off``: the default (the fused backward pass keeps every step's residuals: memory linear in T);
- ``per step``: ``remat=1``, every step its own checkpoint (the carries are kept, each step is recomputed);
- ``sqrt(T)``: ``remat=True``, chunks of ``ceil(sqrt(T))`` steps (:func:`rnnjax.scan.chunked`): a chunk's
  starting carry is kept, and its forward pass is rerun when the backward pass reaches it.

Two losses: ``per-step outputs`` (the mean square of every output, so the outputs and their cotangents,
``2 T * batch * hidden`` numbers, must exist whatever the checkpointing) and ``final state`` (many-to-one: only
the last carry is read). Each configuration runs in its own process, which reports: XLA's temporary memory for
the compiled program (``memory_analysis().temp_size_in_bytes``: the buffers of the backward pass, exact and
independent of the load), the process's peak resident memory (``ru_maxrss``: everything, including the ~0.3 GB
of a process that has imported JAX), the compile time (which must not grow with T), and the median and spread
of the timed calls. The ratios are against ``off`` at the same T and loss; the goals (issue 12): ``sqrt(T)`` at
most 1/5 of the memory for at most 1.5x the time at T = 10,000.

Run::

    python benchmarks/long_sequences.py                        # minutes; writes runs/long_sequences/
    python benchmarks/long_sequences.py --lengths 10000 --rounds 5
    python benchmarks/long_sequences.py --tiny                 # seconds
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time

import numpy as np

import rnnjax as rj

MODES = {"off": False, "per step": 1, "sqrt(T)": True}
"""The ``remat=`` of each side."""

CHILD = r"""
import json, resource, sys, time
import jax, jax.numpy as jnp
import rnnjax as rj

a = json.loads(sys.argv[1])
cell = rj.cells.lstm(a["hidden"])
params = cell.init(jax.random.key(0), a["inputs"])
xs = jax.random.normal(jax.random.key(1), (a["batch"], a["length"], a["inputs"]))


def loss(p, xs):
    final, ys = rj.unroll(cell, p, xs, remat=a["remat"])
    return (ys**2).mean() if a["loss"] == "outputs" else (final[0] ** 2).sum()


start = time.perf_counter()
compiled = jax.jit(jax.value_and_grad(loss)).lower(params, xs).compile()
compile_s = time.perf_counter() - start
jax.block_until_ready(compiled(params, xs))  # warm-up
times = []
for _ in range(a["rounds"]):
    start = time.perf_counter()
    jax.block_until_ready(compiled(params, xs))
    times.append(time.perf_counter() - start)
print(json.dumps({
    "temp_bytes": compiled.memory_analysis().temp_size_in_bytes,
    "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "compile_s": compile_s,
    "times": times,
}))
"""


@dataclasses.dataclass(frozen=True)
class Config:
    """Memory and time of forward + backward over long sequences, with and without checkpointing over time."""

    lengths: tuple[int, ...] = (10000, 100000)
    """Sequence lengths T."""
    hidden_size: int = 128
    """Units of the LSTM."""
    batch_size: int = 8
    """Sequences per call."""
    input_size: int = 32
    """Features per step."""
    losses: tuple[str, ...] = ("outputs", "state")
    """outputs: the mean square of every output; state: of the final h only (many-to-one)."""
    rounds: int = 3
    """Timed calls per configuration, after one warm-up call."""
    name: str = "long_sequences"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    tiny: bool = False
    """Smoke test: T = 60, the final-state loss, 8 units, one round (three processes: seconds)."""


TINY = dict(lengths=(60,), losses=("state",), hidden_size=8, batch_size=2, input_size=3, rounds=1)


def measure(cfg: Config, length: int, loss: str, remat: bool | int) -> dict:
    """One configuration, in a process of its own (so that its peak memory is its own)."""
    args = dict(hidden=cfg.hidden_size, inputs=cfg.input_size, batch=cfg.batch_size, length=length, loss=loss,
                remat=remat, rounds=cfg.rounds)  # fmt: skip
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"T = {length}, {loss}, remat={remat}: the measuring process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def main(cfg: Config) -> str:
    """Measures every (T, loss, remat) in its own process, prints and writes the table, returns it."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    rows, results = [], []
    for length in cfg.lengths:
        for loss in cfg.losses:
            found = {mode: measure(cfg, length, loss, remat) for mode, remat in MODES.items()}
            base = found["off"]
            for mode, r in found.items():
                t = np.asarray(r["times"])
                rows.append([
                    f"{length:,}", "per-step outputs" if loss == "outputs" else "final state", mode,
                    _mb(r["temp_bytes"]), f"{r['temp_bytes'] / base['temp_bytes']:.3f}", _mb(r["max_rss_bytes"]),
                    f"{np.median(t):.3f}", f"{t.min():.3f}-{t.max():.3f}",
                    f"{np.median(t) / np.median(base['times']):.2f}", f"{r['compile_s']:.2f}",
                ])  # fmt: skip
                results.append({"T": length, "loss": loss, "remat": mode, **r})
    headers = ["T", "loss", "remat", "XLA temp MiB", "temp / off", "peak RSS MiB", "s per call (median)",
               "spread (s)", "time / off", "compile s"]  # fmt: skip
    table = rj.experiment.markdown_table(headers, rows)
    body = (
        f"A {cfg.hidden_size}-unit LSTM, batch {cfg.batch_size}, {cfg.input_size} inputs, forward + backward "
        f"(`jax.value_and_grad` of the loss); {cfg.rounds} timed calls per row after a warm-up, each row in its "
        "own process. `XLA temp` is the compiled program's temporary memory (exact, independent of the load); "
        "the peak RSS includes the process's JAX runtime. Ratios are against `off` at the same T and loss.\n\n"
        f"{table}\n"
    )
    (run_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    rj.experiment.write_report(run_dir, "Long sequences in bounded memory", body, seconds=time.perf_counter() - start)
    print(table)
    return table


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
