"""Forward + backward throughput of our LSTM, GRU and tanh RNN against Flax and PyTorch, in one run.

For every shape ``(batch, time, input, hidden)`` and cell, three sides run the same computation with
the same weights: the loss is the mean of all outputs, the gradient is taken with respect to all
params (and nothing else).

- ours: ``jax.jit(jax.value_and_grad(loss))`` over ``rj.unroll`` (by default with its hand-written
  backward pass, ``rnnjax.fused``; ``--impl scan`` lets JAX differentiate the loop instead);
- flax: the same over ``flax.linen.RNN`` wrapping Flax's own cell (``OptimizedLSTMCell``, and
  ``LSTMCell`` for a second LSTM row, ``GRUCell``, ``SimpleCell``), weights from ``rj.interop.to_flax``;
- torch: ``torch.nn.LSTM/GRU/RNN(batch_first=True)`` from ``rj.interop.to_torch``, forward and
  ``loss.backward()`` with PyTorch's default number of threads.

Before timing, the outputs and the gradients of every side are checked against ours, so the table can
only compare equal computations. Compilation is excluded (the checks and a warm-up round run first); the
sides then take turns, one call each per round in an order that turns every round, so that load from other
processes falls on all of them alike; each time is the median over the rounds. Throughput is sequences x
steps per second; a ratio above 1 means we are faster. ``report.md`` also lists the median, fastest and
slowest call of each side.

Run::

    python benchmarks/rnn_speed.py                       # the full table, writes runs/rnn_speed/ here
    python benchmarks/rnn_speed.py --tiny                # one tiny shape, one repeat (seconds)
    python benchmarks/rnn_speed.py --shapes 16 500 32 64 --cells lstm --repeats 9
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj

Shape = tuple[int, int, int, int]
"""``(batch, time, input, hidden)``."""

TINY_SHAPES: tuple[Shape, ...] = ((2, 5, 3, 4),)

# Flax's cells to compare each of ours with; the first is the one in the default row.
FLAX_CELLS: dict[str, tuple[type[nn.RNNCellBase], ...]] = {
    "lstm": (nn.OptimizedLSTMCell, nn.LSTMCell),
    "gru": (nn.GRUCell,),
    "rnn": (nn.SimpleCell,),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """What to measure and how often."""

    shapes: tuple[Shape, ...] = ((16, 500, 32, 64), (32, 100, 128, 256), (64, 100, 256, 512))
    """Shapes ``(batch, time, input, hidden)``; on the command line four numbers a shape:
    ``--shapes 16 500 32 64 32 100 128 256``."""
    cells: tuple[str, ...] = ("lstm", "gru", "rnn")
    """Cells to compare: any of ``lstm``, ``gru``, ``rnn`` (tanh)."""
    repeats: int = 15
    """Timed calls per side after a warm-up call, interleaved across sides; the median is reported."""
    min_repeats: int = 5
    """Fewest timed calls per side, when ``budget_s`` would allow fewer than ``repeats``."""
    budget_s: float = 40.0
    """Seconds of timed calls per shape and cell (all sides); slow shapes get fewer repeats, not below
    ``min_repeats``."""
    flax_lstm_cell: bool = True
    """Also compare our LSTM with ``flax.linen.LSTMCell`` (a matmul per gate), besides the optimised one."""
    torch: bool = True
    """Include PyTorch (a dev extra)."""
    atol: float = 1e-4
    """Largest absolute difference allowed between the outputs of two sides."""
    grad_rtol: float = 1e-3
    """Largest difference allowed between the gradients of two sides, relative to the largest entry."""
    hoist: bool | None = None
    """Where our input projection runs: None, rnnjax's default (inside the loop on the CPU, before it
    on accelerators); True: before the loop, one matmul over all steps; False: inside the loop."""
    impl: str = "auto"
    """Our implementation (``rj.unroll``'s ``impl``): ``auto`` (for these cells ``fused``, the backward pass
    written by hand) or ``scan`` (``jax.grad`` of the loop, as Flax does)."""
    tiny: bool = False
    """Smoke test: one tiny shape, one repeat (seconds); overrides ``shapes`` and the repeats."""
    seed: int = 0
    """Seed of the weights and inputs (each shape and cell draws its key from its name)."""
    name: str = "rnn_speed"
    """The run folder: <root>/<name>/ (``report.md``, ``config.json``, ``metrics.jsonl``)."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""


class Timing(NamedTuple):
    """Seconds per call: median, fastest and slowest of ``repeats`` timed calls."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int


class Row(NamedTuple):
    """One line of the table: ours against one Flax cell and PyTorch on one shape."""

    shape: Shape
    cell: str
    flax_cell: str
    ours: Timing
    flax: Timing
    torch: Timing | None

    def throughput(self, timing: Timing | None) -> float:
        """Sequences x steps per second."""
        return float("nan") if timing is None else self.shape[0] * self.shape[1] / timing.median_s


def time_interleaved(calls: dict[str, Callable[[], Any]], cfg: Config) -> dict[str, Timing]:
    """Times each call (each returns once its work is done, compiled already): a warm-up round, then
    rounds of one call per side, so that load from other processes falls on all sides alike. The order
    turns by one side each round, so that no side always runs right after the same other one (PyTorch's
    threads keep spinning for a while after its call returns)."""
    t0 = time.perf_counter()
    for call in calls.values():
        call()
    round_s = time.perf_counter() - t0
    repeats = max(cfg.min_repeats, min(cfg.repeats, int(cfg.budget_s / round_s)))
    sides = list(calls)
    times: dict[str, list[float]] = {side: [] for side in calls}
    for r in range(repeats):
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            t0 = time.perf_counter()
            calls[side]()
            times[side].append(time.perf_counter() - t0)
    return {side: Timing(statistics.median(ts), min(ts), max(ts), repeats) for side, ts in times.items()}


def assert_close(name: str, got: Any, want: Any, atol: float) -> None:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shapes differ, {got.shape} against {want.shape}")
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    if not diff < atol:
        raise AssertionError(f"{name}: max abs diff {diff:.3g} is not below {atol:.3g}")


def assert_grads_close(name: str, got: Any, want: Any, rtol: float) -> None:
    """Every leaf of ``got`` agrees with ``want`` within ``rtol`` times the largest entry of ``want``."""
    paths = jax.tree_util.tree_flatten_with_path(want)[0]
    for (path, w), g in zip(paths, jax.tree.leaves(got), strict=True):
        scale = max(float(np.max(np.abs(np.asarray(w)))), 1e-12)
        assert_close(f"{name} grad {jax.tree_util.keystr(path)}", np.asarray(g) / scale, np.asarray(w) / scale, rtol)


def flax_variables(module: nn.RNN, cell: rj.Cell, params: Any, xs: jax.Array) -> dict[str, Any]:
    """Our ``params`` as ``nn.RNN``'s variables, checked against the layout that Flax itself creates."""
    variables = {"params": {"cell": rj.interop.to_flax(cell, params)["params"]}}
    layout = lambda tree: jax.tree.map(lambda a: (a.shape, str(a.dtype)), tree)  # noqa: E731
    expected = layout(jax.eval_shape(module.init, jax.random.key(0), xs))
    got = layout(variables)
    if got != expected:
        raise AssertionError(f"to_flax gives {got}, {type(module.cell).__name__} expects {expected}")
    return variables


def bench_shape_cell(shape: Shape, name: str, cfg: Config, key: jax.Array) -> list[Row]:
    """Checks that all sides agree on one shape and cell, then times them; one row per Flax cell."""
    batch, steps, input_size, hidden = shape
    k_params, k_xs = jax.random.split(key)
    cell = rj.cells.make(name, hidden)
    params = cell.init(k_params, input_size)
    xs = jax.random.normal(k_xs, (batch, steps, input_size), jnp.float32)

    def ours_loss(params: Any, xs: jax.Array) -> jax.Array:
        return rj.unroll(cell, params, xs, hoist=cfg.hoist, impl=cfg.impl)[1].mean()

    ours_step = jax.jit(jax.value_and_grad(ours_loss))
    ys = np.asarray(jax.jit(lambda params, xs: rj.unroll(cell, params, xs, hoist=cfg.hoist)[1])(params, xs))
    loss, grads = ours_step(params, xs)
    calls = {"ours": lambda: jax.block_until_ready(ours_step(params, xs))}
    flax_cells = FLAX_CELLS[name] if cfg.flax_lstm_cell else FLAX_CELLS[name][:1]
    for flax_cell in flax_cells:
        calls[flax_cell.__name__] = checked_flax_step(flax_cell(hidden), cell, params, xs, ys, loss, grads, cfg)
    if cfg.torch:
        calls["torch"] = checked_torch_step(cell, params, xs, ys, grads, cfg)
    t = time_interleaved(calls, cfg)
    return [Row(shape, name, fc.__name__, t["ours"], t[fc.__name__], t.get("torch")) for fc in flax_cells]


def checked_flax_step(
    flax_cell: nn.RNNCellBase, cell: rj.Cell, params: Any, xs: jax.Array, ys: np.ndarray, loss: jax.Array,
    grads: Any, cfg: Config,
) -> Callable[[], Any]:  # fmt: skip
    """One timed call of ``flax.linen.RNN(flax_cell)`` with our weights, after checking its outputs and
    gradients against ours."""
    module = nn.RNN(flax_cell)
    variables = flax_variables(module, cell, params, xs)

    def flax_loss(p: Any, xs: jax.Array) -> jax.Array:
        return module.apply({"params": p}, xs).mean()

    flax_step = jax.jit(jax.value_and_grad(flax_loss))
    label = f"{cell.name}: flax {type(flax_cell).__name__}"
    assert_close(f"{label} outputs", jax.jit(module.apply)(variables, xs), ys, cfg.atol)
    flax_loss_value, flax_grads = flax_step(variables["params"], xs)
    assert_close(f"{label} loss", flax_loss_value, loss, cfg.atol)
    assert_grads_close(label, flax_grads, {"cell": rj.interop.to_flax(cell, grads)["params"]}, cfg.grad_rtol)
    return lambda: jax.block_until_ready(flax_step(variables["params"], xs))


def checked_torch_step(
    cell: rj.Cell, params: Any, xs: jax.Array, ys: np.ndarray, grads: Any, cfg: Config
) -> Callable[[], Any]:
    """One timed call of ``torch.nn.LSTM/GRU/RNN`` with our weights (forward and ``loss.backward()``),
    after checking its outputs and gradients against ours."""
    import torch

    net = rj.RNN(cell=cell)
    module = rj.interop.to_torch(net, ((params,),))
    xs_t = torch.from_numpy(np.array(xs))
    label = f"{cell.name}: torch"

    def step() -> Any:
        module.zero_grad(set_to_none=True)
        loss = module(xs_t)[0].mean()
        loss.backward()
        return loss

    with torch.no_grad():
        assert_close(f"{label} outputs", module(xs_t)[0].numpy(), ys, cfg.atol)
    step()
    # Our gradients in torch's layout. torch adds bias_ih and bias_hh where we have one b, so both get
    # b's gradient, except in the GRU's candidate block, where bias_hh is our b_hn (which to_torch sets).
    got = {k: v.grad.numpy() for k, v in module.named_parameters()}
    want = {k: v.detach().numpy().copy() for k, v in rj.interop.to_torch(net, ((grads,),)).named_parameters()}
    shared = slice(None, 2 * cell.hidden_size if cell.name == "gru" else None)
    want["bias_hh_l0"][shared] += want["bias_ih_l0"][shared]
    assert_grads_close(label, got, want, cfg.grad_rtol)
    return step


def format_table(rows: Sequence[Row]) -> str:
    """The markdown table: throughput (sequences x steps / s) of each side and the ratios."""
    lines = [
        "| batch | time | input | hidden | cell | flax cell | ours | flax | torch | ours/flax | ours/torch |",
        "| ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ours, flax_, torch_ = (row.throughput(t) for t in (row.ours, row.flax, row.torch))
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {:,.0f} | {:,.0f} | {} | {:.2f} | {} |".format(
                *row.shape, row.cell, row.flax_cell, ours, flax_,
                "n/a" if row.torch is None else f"{torch_:,.0f}",
                ours / flax_,
                "n/a" if row.torch is None else f"{ours / torch_:.2f}",
            )
        )  # fmt: skip
    return "\n".join(lines)


def format_timings(rows: Sequence[Row]) -> str:
    """Milliseconds per call of each side, to judge the noise behind the ratios."""
    lines = [
        "| batch | time | input | hidden | cell | side | median ms | min ms | max ms | repeats |",
        "| ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    seen = set()
    for row in rows:
        for side, t in (("ours", row.ours), (f"flax {row.flax_cell}", row.flax), ("torch", row.torch)):
            if t is None or (row.shape, row.cell, side) in seen:
                continue
            seen.add((row.shape, row.cell, side))
            lines.append(
                f"| {' | '.join(map(str, row.shape))} | {row.cell} | {side} | {1e3 * t.median_s:.1f} "
                f"| {1e3 * t.min_s:.1f} | {1e3 * t.max_s:.1f} | {t.repeats} |"
            )
    return "\n".join(lines)


def environment() -> dict[str, str]:
    """rnnjax's run environment, plus PyTorch's version and threads."""
    env = rj.experiment.environment()
    try:
        import torch

        env["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        env["torch"] = "not installed"
    return env


def main(cfg: Config) -> str:
    """Runs the benchmark, prints the table, writes ``report.md`` and ``config.json``; returns the table."""
    unknown = set(cfg.cells) - set(FLAX_CELLS)
    if unknown:
        raise ValueError(f"cells: expected some of {tuple(FLAX_CELLS)}, got {sorted(unknown)}")
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, shapes=TINY_SHAPES, repeats=1, min_repeats=1)
    key = jax.random.key(cfg.seed)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    rows = []
    for shape in cfg.shapes:
        for name in cfg.cells:
            shape_key = rj.experiment.key_for(key, f"{name}/{','.join(map(str, shape))}")
            rows += bench_shape_cell(tuple(shape), name, cfg, shape_key)
            print(f"done {shape} {name} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    table = format_table(rows)
    print(table)

    repeats = sorted({t.repeats for row in rows for t in (row.ours, row.flax, row.torch) if t is not None})
    body = "\n".join(
        [
            "Sequences x steps per second for `jit(value_and_grad(mean of outputs))` over all params "
            "(torch: forward + `loss.backward()`); ratios above 1 mean ours is faster. Same weights on all "
            f"sides; outputs agree within {cfg.atol:g}, gradients within {cfg.grad_rtol:g} (relative).",
            f"Median of {'/'.join(map(str, repeats))} repeats after a warm-up, the sides interleaved. "
            "Our input projection: "
            + {None: "rnnjax's default for this backend", True: "hoisted before the loop", False: "inside the loop"}[
                cfg.hoist
            ]
            + f". Our implementation: impl={cfg.impl!r}.",
            "",
            table,
            "",
            "## Time per call",
            "",
            format_timings(rows),
        ]
    )
    with (run_dir / "metrics.jsonl").open("w") as f:
        for row in rows:
            sides = {"ours": row.ours, "flax": row.flax, "torch": row.torch}
            f.write(json.dumps({"shape": row.shape, "cell": row.cell, "flax_cell": row.flax_cell,
                                **{f"{k}_s": None if t is None else t.median_s for k, t in sides.items()},
                                "repeats": row.ours.repeats}) + "\n")  # fmt: skip
    rj.experiment.write_report(run_dir, "RNN forward + backward throughput", body, seconds=elapsed, env=environment())
    return table


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
