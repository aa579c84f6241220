"""Time of every registered cell under each implementation it declares, and of the parallel scan of the
linear cells against their sequential loop on long sequences, in one run.

Two tables, each time a call of ``jit(value_and_grad(loss))`` (loss: the mean of all outputs of
``rj.unroll``, the gradient taken with respect to all params) unless it says forward only (the loss alone):

- every cell in :data:`rnnjax.cells.CELLS` at one shape (default: batch 32, 100 steps, 32 inputs,
  128 units), under each implementation it declares: ``"scan"`` (every cell: ``jax.grad`` of a
  ``lax.scan`` of its step), ``"fused"`` (``spec.parts``: the backward pass written by hand,
  :mod:`rnnjax.fused`) and ``"associative"`` (``spec.linear``: the parallel scan, :mod:`rnnjax.associative`).
  Each time is set against the cell's own ``"scan"`` and against the LSTM's default (``impl="auto"``), a
  yardstick common to all rows. Every cell is ``rj.cells.make(name, hidden)``, its default options (the
  LRU: as many complex states as units);
- the linear cells (``spec.linear``) on long sequences (default: T = 1,000 and 10,000; batch 8, 32 inputs,
  64 units): ``"associative"`` against ``"scan"``, forward + backward and forward only. The parallel form
  trades work for depth: ``lax.associative_scan`` makes about ``2 T`` compositions (each two multiplies and
  an add, where a step of the loop has one of each) over strided slices, in ``2 log2 T`` passes over the
  sequence (in log space for minGRU and minLSTM, each composition a ``logaddexp``). Its
  depth is ``O(log T)`` instead of ``T``, which pays off where thousands of lanes run at once (a GPU or a
  TPU, where ``resolve_impl`` picks it), not on a few CPU cores, where it is expected to lose.

Before timing, every implementation of a cell is checked against its ``"scan"`` (outputs, loss, every
gradient), so each table compares equal computations; the largest differences are reported. Compilation is
excluded (ahead of time, its seconds reported); all calls of a table (of one long shape and cell) then take
turns, one call each per round in an order that turns every round, after a warm-up round, so that load from
other processes falls on all of them alike; each time is the median over the rounds, and ratios are of
medians measured in those same rounds. A ratio is the other's time over this row's: above 1, this row is
faster.

Run::

    python benchmarks/cell_speed.py                              # both tables, writes runs/cell_speed/ here
    python benchmarks/cell_speed.py --tiny                       # tiny shapes, one repeat (seconds)
    python benchmarks/cell_speed.py --cells lstm mingru --long-lengths 1000 --repeats 9
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj

Shape = tuple[int, int, int, int]
"""``(batch, time, input, hidden)``."""

YARDSTICK = "lstm"
"""The cell whose default implementation every row of the first table is also set against."""


@dataclasses.dataclass(frozen=True)
class Config:
    """What to measure and how often."""

    cells: tuple[str, ...] | None = None
    """Cells of the first table, by name in ``rj.cells.CELLS``; None: all of them. The linear ones among
    them make the second table. The LSTM, the yardstick, is in the first table whatever is chosen."""
    shape: Shape = (32, 100, 32, 128)
    """``(batch, time, input, hidden)`` of the first table."""
    long_lengths: tuple[int, ...] = (1_000, 10_000)
    """T of the second table (the linear cells, parallel against sequential)."""
    long_batch: int = 8
    """Batch of the second table."""
    long_input: int = 32
    """Features per step in the second table."""
    long_hidden: int = 64
    """Units of the linear cells in the second table."""
    repeats: int = 15
    """Timed rounds after a warm-up round, at most; the median is reported."""
    min_repeats: int = 3
    """Fewest timed rounds, when ``budget_s`` would allow fewer than ``repeats``."""
    budget_s: float = 10.0
    """Seconds of timed rounds per table (the second: per cell and T); slow ones get fewer rounds."""
    atol: float = 1e-4
    """Largest absolute difference allowed between the outputs (and losses) of two implementations."""
    grad_rtol: float = 1e-3
    """Largest difference allowed between the gradients of two implementations, relative to the largest
    entry of each param's gradient."""
    tiny: bool = False
    """Smoke test: tiny shapes, T = 16 for the second table, one repeat (seconds); overrides the shapes."""
    seed: int = 0
    """Seed of the weights and inputs (each cell and shape draws its key from its name)."""
    name: str = "cell_speed"
    """The run folder: <root>/<name>/ (``report.md``, ``config.json``, ``metrics.jsonl``)."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""


TINY = dict(shape=(2, 5, 3, 4), long_lengths=(16,), long_batch=2, long_input=3, long_hidden=4, repeats=1,
            min_repeats=1)  # fmt: skip


class Timing(NamedTuple):
    """Seconds per call: median, fastest and slowest of ``repeats`` timed calls, and the compile time."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int
    compile_s: float


class Side(NamedTuple):
    """One timed computation: a cell, an implementation, a pass, on one shape; checked against the scan."""

    cell: str
    impl: str
    forward_only: bool
    shape: Shape
    call: Callable[[], Any]
    compile_s: float
    y_diff: float
    """Largest |difference| of the outputs from the cell's ``"scan"`` (0 for the scan itself)."""
    grad_diff: float
    """Largest difference of the gradients from the scan's, relative to each param's largest entry."""


def compiled(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Callable[[], Any], float]:
    """``jit(fn)`` compiled ahead of time for ``args`` (so no timed call compiles) as a call that waits for its
    output, and the seconds the compilation took."""
    t0 = time.perf_counter()
    exe = jax.jit(fn).lower(*args).compile()
    return (lambda: jax.block_until_ready(exe(*args))), time.perf_counter() - t0


def time_interleaved(sides: Sequence[Side], cfg: Config) -> list[Timing]:
    """Times each side: a warm-up round, then rounds of one call each, the order turning by one each round so
    that no side always runs right after the same other one; as many rounds as ``budget_s`` allows, within
    ``[min_repeats, repeats]``."""
    t0 = time.perf_counter()
    for side in sides:
        side.call()
    round_s = time.perf_counter() - t0
    repeats = max(cfg.min_repeats, min(cfg.repeats, int(cfg.budget_s / round_s)))
    times: list[list[float]] = [[] for _ in sides]
    order = list(range(len(sides)))
    for r in range(repeats):
        for k in order[r % len(order) :] + order[: r % len(order)]:
            t0 = time.perf_counter()
            sides[k].call()
            times[k].append(time.perf_counter() - t0)
    return [Timing(statistics.median(ts), min(ts), max(ts), repeats, s.compile_s) for s, ts in zip(sides, times)]


def max_diff(got: Any, want: Any) -> float:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"shapes differ, {got.shape} against {want.shape}")
    return float(np.max(np.abs(got - want))) if got.size else 0.0


def grads_diff(got: Any, want: Any) -> float:
    """The largest difference over the leaves, each relative to the largest entry of ``want``'s leaf."""
    diffs = [0.0]
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        scale = max(float(np.max(np.abs(np.asarray(w)))), 1e-12)
        diffs.append(max_diff(np.asarray(g) / scale, np.asarray(w) / scale))
    return max(diffs)


def impls_of(cell: rj.Cell) -> list[str]:
    """The implementations ``cell`` declares, the reference ``"scan"`` first."""
    return ["scan"] + ["fused"] * (cell.spec.parts is not None) + ["associative"] * (cell.spec.linear is not None)


def checked_sides(
    name: str, shape: Shape, impls: Sequence[str], cfg: Config, key: jax.Array, forward_only: bool = False
) -> list[Side]:
    """The timed calls of cell ``name`` on ``shape`` under ``impls`` (``"scan"`` first): forward + backward and,
    if ``forward_only``, the forward alone (the outputs) too, after checking each implementation's outputs, loss
    and gradients against the scan's. The checks read the outputs of the calls that are timed (the forward
    of the first table is compiled for the check alone)."""
    batch, steps, input_size, hidden = shape
    cell = rj.cells.make(name, hidden)
    params = cell.init(rj.experiment.key_for(key, f"{name}/{shape}"), input_size)
    xs = jax.random.normal(rj.experiment.key_for(key, f"xs/{shape}"), (batch, steps, input_size), jnp.float32)
    sides, reference = [], None
    for impl in impls:

        def outputs(params: Any, xs: jax.Array, impl: str = impl) -> jax.Array:
            return rj.unroll(cell, params, xs, impl=impl)[1]

        backward, backward_s = compiled(jax.value_and_grad(lambda p, xs: outputs(p, xs).mean()), (params, xs))
        forward, forward_s = compiled(outputs, (params, xs))
        (value, grads), ys = backward(), forward()
        if reference is None:
            reference = ys, value, grads
        label = f"{name} impl={impl!r} against impl='scan' on {shape}"
        y_diff, loss_diff = max_diff(ys, reference[0]), max_diff(value, reference[1])
        grad_diff = grads_diff(grads, reference[2])
        if not (y_diff < cfg.atol and loss_diff < cfg.atol):
            raise AssertionError(
                f"{label}: outputs differ by {y_diff:.3g}, losses by {loss_diff:.3g} (atol {cfg.atol:g})"
            )
        if not grad_diff < cfg.grad_rtol:
            raise AssertionError(f"{label}: gradients differ by {grad_diff:.3g} relative (grad_rtol {cfg.grad_rtol})")
        del ys, grads
        sides.append(Side(name, impl, False, shape, backward, backward_s, y_diff, grad_diff))
        if forward_only:
            sides.append(Side(name, impl, True, shape, forward, forward_s, y_diff, grad_diff))
    return sides


def cells_table(sides: Sequence[Side], timings: Sequence[Timing]) -> str:
    """The first table: every cell and implementation, against its own scan and the LSTM's default."""
    median = {(s.cell, s.impl): t.median_s for s, t in zip(sides, timings)}
    yardstick = median[YARDSTICK, rj.scan.resolve_impl(rj.cells.make(YARDSTICK, 1))]
    lines = [
        "| cell | impl | auto | ms | scan/this | lstm auto/this | max abs dy | max rel dgrad | compile s |",
        "| --- | --- | :---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s, t in zip(sides, timings):
        auto = rj.scan.resolve_impl(rj.cells.make(s.cell, 1)) == s.impl
        lines.append(
            f"| {s.cell} | {s.impl} | {'yes' if auto else ''} | {1e3 * t.median_s:.2f} "
            f"| {median[s.cell, 'scan'] / t.median_s:.2f} | {yardstick / t.median_s:.2f} | {s.y_diff:.1e} "
            f"| {s.grad_diff:.1e} | {s.compile_s:.1f} |"
        )
    return "\n".join(lines)


def long_table(sides: Sequence[Side], timings: Sequence[Timing]) -> str:
    """The second table: associative against scan for the linear cells at each long T, both passes."""
    median = {(s.cell, s.shape, s.impl, s.forward_only): t.median_s for s, t in zip(sides, timings)}
    lines = [
        "| cell | batch | T | hidden | pass | scan ms | associative ms | scan/associative |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for cell, shape, _, fwd in [k for k in median if k[2] == "associative"]:
        scan_s, assoc_s = median[cell, shape, "scan", fwd], median[cell, shape, "associative", fwd]
        batch, steps, _, hidden = shape
        lines.append(
            f"| {cell} | {batch} | {steps:,} | {hidden} | {'forward' if fwd else 'forward + backward'} "
            f"| {1e3 * scan_s:.1f} | {1e3 * assoc_s:.1f} | {scan_s / assoc_s:.3f} |"
        )
    return "\n".join(lines)


def timings_table(sides: Sequence[Side], timings: Sequence[Timing]) -> str:
    """Milliseconds per call of every side, to judge the noise behind the ratios."""
    lines = [
        "| cell | batch | T | input | hidden | impl | pass | median ms | min ms | max ms | repeats |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for s, t in zip(sides, timings):
        lines.append(
            f"| {s.cell} | {' | '.join(map(str, s.shape))} | {s.impl} | {'fwd' if s.forward_only else 'fwd+bwd'} "
            f"| {1e3 * t.median_s:.2f} | {1e3 * t.min_s:.2f} | {1e3 * t.max_s:.2f} | {t.repeats} |"
        )
    return "\n".join(lines)


def main(cfg: Config) -> str:
    """Runs the benchmark, prints both tables, writes ``report.md``, ``config.json`` and ``metrics.jsonl``;
    returns the two tables."""
    names = tuple(rj.cells.CELLS) if cfg.cells is None else tuple(cfg.cells)
    unknown = sorted(set(names) - set(rj.cells.CELLS))
    if unknown or not names:
        raise ValueError(f"cells: expected some of {tuple(rj.cells.CELLS)}, got {unknown or 'none'}")
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    key = jax.random.key(cfg.seed)
    load_before, start = os.getloadavg()[0], time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    log = lambda what: print(f"{what} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)  # noqa: E731

    sides = []
    for name in names if YARDSTICK in names else (*names, YARDSTICK):
        sides += checked_sides(name, tuple(cfg.shape), impls_of(rj.cells.make(name, 1)), cfg, key)
        log(f"checked and compiled {name}")
    timings = time_interleaved(sides, cfg)
    log("timed the first table")

    linear = [name for name in names if rj.cells.make(name, 1).spec.linear is not None]
    long_sides, long_timings = [], []
    for steps in cfg.long_lengths:
        shape = (cfg.long_batch, steps, cfg.long_input, cfg.long_hidden)
        for name in linear:
            group = checked_sides(name, shape, ["scan", "associative"], cfg, key, forward_only=True)
            long_sides += group
            long_timings += time_interleaved(group, cfg)
            log(f"timed {name} at T = {steps}")
    elapsed = time.perf_counter() - start

    first, second = cells_table(sides, timings), long_table(long_sides, long_timings)
    tables = first + "\n\n" + second if long_sides else first
    print(tables)
    lstm_auto = rj.scan.resolve_impl(rj.cells.make(YARDSTICK, 1))
    batch, steps, input_size, hidden = cfg.shape
    body = [
        "Milliseconds per call of `jit(value_and_grad(mean of outputs of rj.unroll))` over all params, compiled "
        "ahead of time; the calls of a table take turns in rounds after a warm-up round, and each time is the "
        f"median of its rounds (repeats: {'/'.join(map(str, sorted({t.repeats for t in timings + long_timings})))}). "
        "A ratio is the other's median over this row's, measured in the same rounds: above 1, this row is "
        f"faster. Before timing, every implementation was checked against the cell's `impl='scan'`: outputs and "
        f"losses within {cfg.atol:g}, every gradient within {cfg.grad_rtol:g} of its largest entry (the largest "
        "differences are in the table).",
        "",
        f"## Every cell: batch {batch}, {steps} steps, {input_size} inputs, {hidden} units",
        "",
        f"`auto`: the implementation `impl='auto'` picks on this backend ({jax.default_backend()}). "
        f"`scan/this`: the cell's own sequential scan against this row; `lstm auto/this`: the LSTM's default "
        f"(impl='auto', here {lstm_auto!r}) against this row.",
        "",
        first,
    ]
    if long_sides:
        body += [
            "",
            "## The linear cells on long sequences: parallel (associative) against sequential (scan)",
            "",
            "`scan/associative` below 1: the parallel form is slower. It does more work than the loop (about 2T "
            "compositions, each dearer than a step, in 2 log2 T passes over the sequence; in log space for minGRU "
            "and minLSTM, each composition a `logaddexp`) in exchange for a "
            "depth of `O(log T)` instead of `T`. On a few CPU cores nothing uses that depth, so the sequential loop "
            "should win, as `impl='auto'` assumes on the CPU; on a GPU or a TPU, where thousands of lanes run "
            "each pass at once, the parallel form is expected to win on long sequences (not measured here).",
            "",
            second,
        ]
    body += ["", "## Time per call", "", timings_table(sides + long_sides, timings + long_timings)]
    with (run_dir / "metrics.jsonl").open("w") as f:
        for s, t in zip(sides + long_sides, timings + long_timings):
            f.write(json.dumps({"cell": s.cell, "impl": s.impl, "pass": "fwd" if s.forward_only else "fwd+bwd",
                                "shape": s.shape, "median_s": t.median_s, "min_s": t.min_s, "max_s": t.max_s,
                                "repeats": t.repeats, "compile_s": t.compile_s, "y_diff": s.y_diff,
                                "grad_diff": s.grad_diff}) + "\n")  # fmt: skip
    env = {**rj.experiment.environment(), "load_average_1m": f"{load_before:.1f} at the start, "
           f"{os.getloadavg()[0]:.1f} at the end (other processes on this machine)"}  # fmt: skip
    rj.experiment.write_report(run_dir, "Cells and their implementations: forward + backward time", "\n".join(body),
                               seconds=elapsed, env=env)  # fmt: skip
    return tables


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
