"""Throughput of our LSTM, GRU and tanh RNN against Flax and PyTorch, training and inference, in float32 and in
mixed precision, in one run.

For every shape ``(batch, time, input, hidden)``, cell, pass and precision, the sides run the same computation
with the same weights:

- pass ``train``: the loss is the mean of all outputs, and its gradient is taken with respect to all params;
  ``inference``: the outputs alone (no gradient);
- ours: ``jax.jit`` over ``rj.unroll`` (training by default through its hand-written backward pass,
  ``rnnjax.fused``; ``--impl scan`` lets JAX differentiate the loop instead);
- flax: the same over ``flax.linen.RNN`` wrapping Flax's own cell (``OptimizedLSTMCell``, and
  ``LSTMCell`` for a second LSTM row, ``GRUCell``, ``SimpleCell``), weights from ``rj.interop.to_flax``;
- torch: ``torch.nn.LSTM/GRU/RNN(batch_first=True)`` from ``rj.interop.to_torch``, forward and
  ``loss.backward()`` (inference: under ``torch.inference_mode()``), its threads set to the cores this process
  may use.

Precision ``float32`` is every side in float32. ``mixed`` is float32 params and element-wise work with bfloat16
matmuls that accumulate in float32: ours is the cell built with ``matmul_dtype=jnp.bfloat16``
(``rnnjax.precision``), PyTorch's is ``torch.autocast("cpu", dtype=torch.bfloat16)`` around the forward pass.
Flax has no such mode (its ``dtype=bfloat16`` runs the gates in bfloat16 too, another computation), so the mixed
rows have no Flax column. Each mixed side's distance from the float32 computation is measured and printed beside
its speed.

Before timing, the outputs and the gradients of every side are checked against ours (mixed: ours against our
float32 computation, within ``mixed_rtol``; PyTorch's distance from it is printed, not checked), so the tables
can only compare equal computations. Compilation is excluded (the checks and a warm-up round run first); the
sides then take turns, one call each per round in an order that turns every round, so that load from other
processes falls on all of them alike; each time is the median over the rounds, and the spread of the per-round
ratios (their quartiles) is printed beside it. Throughput is sequences x steps per second; a ratio above 1 means
we are faster.

The matmul rate of this machine is measured in the same run (the fastest square ``jnp.dot`` and ``torch.mm`` of
sides up to ``rate_size``, in float32 and in bfloat16 with float32 accumulation), and each row prints the fraction
of it that each side reaches: the matmul flops of a pass (forward ``2 * batch * time * (input + hidden) * gates *
hidden``, training three times that) over its time, against the faster library's rate in the row's precision.

Run::

    python benchmarks/rnn_speed.py                       # the full tables, writes runs/rnn_speed/ here
    python benchmarks/rnn_speed.py --tiny                # one tiny shape, one repeat (seconds)
    python benchmarks/rnn_speed.py --shapes 16 500 32 64 --cells lstm --passes train --precisions mixed
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


GATES = {"lstm": 4, "gru": 3, "rnn": 1}
"""Blocks of ``U`` and ``W`` per cell: a step's matmuls are ``2 * batch * (input + hidden) * gates * hidden`` flops."""

PASSES = ("train", "inference")
PRECISIONS = ("float32", "mixed")


@dataclasses.dataclass(frozen=True)
class Config:
    """What to measure and how often."""

    shapes: tuple[Shape, ...] = ((16, 500, 32, 64), (32, 100, 128, 256), (64, 100, 256, 512))
    """Shapes ``(batch, time, input, hidden)``; on the command line four numbers a shape:
    ``--shapes 16 500 32 64 32 100 128 256``."""
    cells: tuple[str, ...] = ("lstm", "gru", "rnn")
    """Cells to compare: any of ``lstm``, ``gru``, ``rnn`` (tanh)."""
    passes: tuple[str, ...] = PASSES
    """``train`` (forward + backward), ``inference`` (forward only), or both."""
    precisions: tuple[str, ...] = PRECISIONS
    """``float32``, ``mixed`` (bfloat16 matmuls accumulating in float32, against PyTorch's autocast), or both."""
    repeats: int = 15
    """Timed calls per side after a warm-up call, interleaved across sides; the median is reported."""
    min_repeats: int = 5
    """Fewest timed calls per side, when ``budget_s`` would allow fewer than ``repeats``."""
    budget_s: float = 8.0
    """Seconds of timed calls per shape, cell, pass and precision (all sides); slow ones get fewer repeats, not
    below ``min_repeats``."""
    flax_lstm_cell: bool = True
    """Also compare our LSTM with ``flax.linen.LSTMCell`` (a matmul per gate), besides the optimised one."""
    torch: bool = True
    """Include PyTorch (a dev extra)."""
    torch_threads: int | None = None
    """PyTorch's intra-op threads (None: the cores this process may use, as XLA uses)."""
    atol: float = 1e-4
    """Largest absolute difference allowed between the outputs of two float32 sides."""
    grad_rtol: float = 1e-3
    """Largest difference allowed between the gradients of two float32 sides, relative to the largest entry."""
    mixed_rtol: float = 0.05
    """Largest difference allowed between our mixed-precision computation and our float32 one (outputs and each
    gradient), relative to the largest entry (PyTorch's is printed, not checked)."""
    rate_size: int = 2048
    """``n`` of the ``n x n x n`` matmuls that measure this machine's matmul rate."""
    hoist: bool | None = None
    """Where our input projection runs: None, rnnjax's default (inside the loop on the CPU, before it
    on accelerators); True: before the loop, one matmul over all steps; False: inside the loop."""
    impl: str = "auto"
    """Our implementation (``rj.unroll``'s ``impl``): ``auto`` (for these cells ``fused``, the backward pass
    written by hand) or ``scan`` (``jax.grad`` of the loop, as Flax does)."""
    tiny: bool = False
    """Smoke test: one tiny shape, one repeat (seconds); overrides ``shapes``, the repeats and ``rate_size``."""
    seed: int = 0
    """Seed of the weights and inputs (each shape and cell draws its key from its name)."""
    name: str = "rnn_speed"
    """The run folder: <root>/<name>/ (``report.md``, ``config.json``, ``metrics.jsonl``)."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""


class Timing(NamedTuple):
    """Seconds per call of ``repeats`` timed calls (one per round, in round order)."""

    times: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times)

    @property
    def repeats(self) -> int:
        return len(self.times)


class Case(NamedTuple):
    """What one group of rows measures."""

    shape: Shape
    cell: str
    pass_: str
    precision: str

    def throughput(self, timing: Timing | None) -> float:
        """Sequences x steps per second."""
        return float("nan") if timing is None else self.shape[0] * self.shape[1] / timing.median_s

    def flops(self) -> float:
        """The matmul flops of one call (module docstring)."""
        batch, steps, input_size, hidden = self.shape
        forward = 2 * batch * steps * (input_size + hidden) * GATES[self.cell] * hidden
        return forward * (3 if self.pass_ == "train" else 1)


class Row(NamedTuple):
    """One line of a table: ours against one Flax cell (float32) and PyTorch in one case."""

    case: Case
    flax_cell: str
    ours: Timing
    flax: Timing | None
    torch: Timing | None
    errors: dict[str, float]
    """Mixed precision: each side's distance from our float32 computation (``{side} dy``, ``{side} dgrad``)."""


def time_interleaved(calls: dict[str, Callable[[], Any]], cfg: Config) -> dict[str, Timing]:
    """Times each call (each returns once its work is done, compiled already): a warm-up round, then
    rounds of one call per side, so that load from other processes falls on all sides alike. The order
    turns by one side each round, so that no side always runs right after the same other one (PyTorch's
    threads keep spinning for a while after its call returns)."""
    t0 = time.perf_counter()
    for call in calls.values():
        call()
    round_s = time.perf_counter() - t0
    repeats = max(cfg.min_repeats, min(cfg.repeats, int(cfg.budget_s / max(round_s, 1e-9))))
    sides = list(calls)
    times: dict[str, list[float]] = {side: [] for side in calls}
    for r in range(repeats):
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            t0 = time.perf_counter()
            calls[side]()
            times[side].append(time.perf_counter() - t0)
    return {side: Timing(tuple(ts)) for side, ts in times.items()}


def ratio_quartiles(ours: Timing, other: Timing | None) -> str:
    """The quartiles of the per-round ratios ``other / ours`` (above 1: ours faster in that round)."""
    if other is None:
        return "n/a"
    ratios = [o / u for u, o in zip(ours.times, other.times, strict=True)]
    if len(ratios) < 2:
        return f"{ratios[0]:.2f}"
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return f"{q1:.2f}-{q3:.2f}"


def relative_error(got: Any, want: Any) -> float:
    """The largest difference of any leaf, relative to the largest entry of that leaf of ``want``."""
    worst = 0.0
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g.shape != w.shape:
            raise AssertionError(f"shapes differ, {g.shape} against {w.shape}")
        worst = max(worst, float(np.max(np.abs(g - w))) / max(float(np.max(np.abs(w))), 1e-12) if w.size else 0.0)
    return worst


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


def check_mixed(name: str, errors: dict[str, float], cfg: Config) -> None:
    """A mixed-precision side is within ``mixed_rtol`` of our float32 computation."""
    bad = {k: v for k, v in errors.items() if not v < cfg.mixed_rtol}
    if bad:
        raise AssertionError(f"{name}: mixed precision off float32 by {bad}, not below mixed_rtol={cfg.mixed_rtol}")


def flax_variables(module: nn.RNN, cell: rj.Cell, params: Any, xs: jax.Array) -> dict[str, Any]:
    """Our ``params`` as ``nn.RNN``'s variables, checked against the layout that Flax itself creates."""
    variables = {"params": {"cell": rj.interop.to_flax(cell, params)["params"]}}
    layout = lambda tree: jax.tree.map(lambda a: (a.shape, str(a.dtype)), tree)  # noqa: E731
    expected = layout(jax.eval_shape(module.init, jax.random.key(0), xs))
    got = layout(variables)
    if got != expected:
        raise AssertionError(f"to_flax gives {got}, {type(module.cell).__name__} expects {expected}")
    return variables


class Reference(NamedTuple):
    """Our float32 computation on one shape and cell: what every side is checked against."""

    cell: rj.Cell
    params: Any
    xs: jax.Array
    ys: np.ndarray
    loss: jax.Array
    grads: Any


def reference(shape: Shape, name: str, cfg: Config, key: jax.Array) -> Reference:
    batch, steps, input_size, hidden = shape
    k_params, k_xs = jax.random.split(key)
    cell = rj.cells.make(name, hidden)
    params = cell.init(k_params, input_size)
    xs = jax.random.normal(k_xs, (batch, steps, input_size), jnp.float32)
    ys = np.asarray(jax.jit(lambda params, xs: rj.unroll(cell, params, xs, hoist=cfg.hoist)[1])(params, xs))
    loss, grads = jax.jit(jax.value_and_grad(lambda p: rj.unroll(cell, p, xs, hoist=cfg.hoist)[1].mean()))(params)
    return Reference(cell, params, xs, ys, loss, grads)


def ours_call(case: Case, ref: Reference, cfg: Config) -> tuple[Callable[[], Any], dict[str, float]]:
    """One timed call of ours in ``case``, checked: float32 against the reference (the same code but for
    ``impl``), mixed within ``mixed_rtol`` of it (the distances returned)."""
    cell = ref.cell
    if case.precision == "mixed":
        cell = rj.cells.make(case.cell, case.shape[3], matmul_dtype=jnp.bfloat16)
    params, xs = ref.params, ref.xs
    forward = jax.jit(lambda p, xs: rj.unroll(cell, p, xs, hoist=cfg.hoist)[1])
    errors = {"ours dy": relative_error(forward(params, xs), ref.ys)}
    if case.pass_ == "inference":
        call = lambda: jax.block_until_ready(forward(params, xs))  # noqa: E731
    else:
        loss_fn = lambda p, xs: rj.unroll(cell, p, xs, hoist=cfg.hoist, impl=cfg.impl)[1].mean()  # noqa: E731
        step = jax.jit(jax.value_and_grad(loss_fn))
        loss, grads = step(params, xs)
        if case.precision == "float32":  # (the mean of all outputs is near 0: its relative error says little)
            assert_close(f"{case.cell}: ours loss", loss, ref.loss, cfg.atol)
        errors["ours dgrad"] = relative_error(grads, ref.grads)
        call = lambda: jax.block_until_ready(step(params, xs))  # noqa: E731
    if case.precision == "mixed":
        check_mixed(f"{case.cell}: ours", errors, cfg)
        return call, errors
    assert_close(f"{case.cell}: ours outputs", errors["ours dy"], 0.0, cfg.grad_rtol)
    if case.pass_ == "train":
        assert_close(f"{case.cell}: ours impl={cfg.impl!r} gradients", errors["ours dgrad"], 0.0, cfg.grad_rtol)
    return call, {}


def flax_call(flax_cell: nn.RNNCellBase, case: Case, ref: Reference, cfg: Config) -> Callable[[], Any]:
    """One timed call of ``flax.linen.RNN(flax_cell)`` with our weights, after checking its outputs and
    gradients against ours."""
    module = nn.RNN(flax_cell)
    variables = flax_variables(module, ref.cell, ref.params, ref.xs)
    label = f"{case.cell}: flax {type(flax_cell).__name__}"
    forward = jax.jit(module.apply)
    assert_close(f"{label} outputs", forward(variables, ref.xs), ref.ys, cfg.atol)
    if case.pass_ == "inference":
        return lambda: jax.block_until_ready(forward(variables, ref.xs))
    step = jax.jit(jax.value_and_grad(lambda p, xs: module.apply({"params": p}, xs).mean()))
    loss, grads = step(variables["params"], ref.xs)
    assert_close(f"{label} loss", loss, ref.loss, cfg.atol)
    assert_grads_close(label, grads, {"cell": rj.interop.to_flax(ref.cell, ref.grads)["params"]}, cfg.grad_rtol)
    return lambda: jax.block_until_ready(step(variables["params"], ref.xs))


def torch_call(case: Case, ref: Reference, cfg: Config) -> tuple[Callable[[], Any], dict[str, float]]:
    """One timed call of ``torch.nn.LSTM/GRU/RNN`` with our weights (forward and ``loss.backward()``; inference
    under ``torch.inference_mode()``; mixed under ``torch.autocast``), after checking it against ours."""
    import contextlib

    import torch

    net = rj.RNN(cell=ref.cell)
    module = rj.interop.to_torch(net, ((ref.params,),))
    xs_t = torch.from_numpy(np.array(ref.xs))
    label = f"{case.cell}: torch {case.precision}"
    mixed = case.precision == "mixed"
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if mixed else contextlib.nullcontext

    def forward() -> Any:
        with torch.inference_mode(), autocast():
            return module(xs_t)[0]

    def step() -> Any:
        module.zero_grad(set_to_none=True)
        with autocast():
            out = module(xs_t)[0]
        loss = out.float().mean()
        loss.backward()
        return loss

    ys = forward().float().numpy()
    errors = {"torch dy": relative_error(ys, ref.ys)}
    if case.pass_ == "inference":
        call = forward
    else:
        step()
        # Our gradients in torch's layout. torch adds bias_ih and bias_hh where we have one b, so both get
        # b's gradient, except in the GRU's candidate block, where bias_hh is our b_hn (which to_torch sets).
        got = {k: v.grad.float().numpy() for k, v in module.named_parameters()}
        want = {k: v.detach().numpy().copy() for k, v in rj.interop.to_torch(net, ((ref.grads,),)).named_parameters()}
        shared = slice(None, 2 * ref.cell.hidden_size if case.cell == "gru" else None)
        want["bias_hh_l0"][shared] += want["bias_ih_l0"][shared]
        errors["torch dgrad"] = relative_error(got, want)
        if not mixed:
            assert_grads_close(label, got, want, cfg.grad_rtol)
        call = step
    if mixed:  # PyTorch's distance from float32 is reported, not checked: it is what autocast gives
        return call, errors
    assert_close(f"{label} outputs", ys, ref.ys, cfg.atol)
    return call, {}


def bench(case: Case, ref: Reference, cfg: Config) -> list[Row]:
    """Checks that all sides agree in one case, then times them; one row per Flax cell (float32), or one row."""
    ours, errors = ours_call(case, ref, cfg)
    calls = {"ours": ours}
    flax_cells = () if case.precision == "mixed" else FLAX_CELLS[case.cell][: None if cfg.flax_lstm_cell else 1]
    for flax_cell in flax_cells:
        calls[flax_cell.__name__] = flax_call(flax_cell(case.shape[3]), case, ref, cfg)
    if cfg.torch:
        calls["torch"], torch_errors = torch_call(case, ref, cfg)
        errors = {**errors, **torch_errors}
    t = time_interleaved(calls, cfg)
    if not flax_cells:
        return [Row(case, "", t["ours"], None, t.get("torch"), errors)]
    return [Row(case, fc.__name__, t["ours"], t[fc.__name__], t.get("torch"), errors) for fc in flax_cells]


def matmul_rates(cfg: Config) -> dict[str, float]:
    """This machine's matmul rate (GFLOP/s) for each library and precision: the fastest of a few square products
    of sides ``rate_size``, half and a quarter of it (which size a library runs best varies): ``jax float32``,
    ``jax mixed`` (bfloat16 inputs, float32 result), ``torch float32``, ``torch mixed`` (``torch.mm`` in
    bfloat16)."""
    sizes = sorted({max(cfg.rate_size // 4, 1), max(cfg.rate_size // 2, 1), cfg.rate_size})
    rates: dict[str, float] = {}
    for n in sizes:
        a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
        b = a.astype(jnp.bfloat16)
        f32 = jax.jit(jnp.dot)
        mixed = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
        calls = {
            "jax float32": lambda: jax.block_until_ready(f32(a, a)),
            "jax mixed": lambda: jax.block_until_ready(mixed(b, b)),
        }
        if cfg.torch:
            import torch

            at = torch.from_numpy(np.array(a))
            bt = at.to(torch.bfloat16)
            calls["torch float32"] = lambda: torch.mm(at, at)
            calls["torch mixed"] = lambda: torch.mm(bt, bt)
        for name, call in calls.items():
            call()
            best = min(_timed(call) for _ in range(3 if cfg.tiny else 7))
            rates[name] = max(rates.get(name, 0.0), 2 * n**3 / best / 1e9)
    return rates


def _timed(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def _peak(row: Row, timing: Timing | None, rates: dict[str, float]) -> str:
    """The fraction of this machine's matmul rate in the row's precision (the faster library's) that a side's
    matmuls reach, in percent."""
    rate = max((r for name, r in rates.items() if name.endswith(f" {row.case.precision}")), default=None)
    if timing is None or rate is None:
        return "n/a"
    return f"{100 * row.case.flops() / timing.median_s / 1e9 / rate:.0f}"


SHAPE_HEADER = ["batch", "time", "input", "hidden", "cell", "pass"]
"""The columns of :func:`_shape_cells`, first in both tables."""


def _shape_cells(case: Case) -> list[str]:
    return [*map(str, case.shape), case.cell, case.pass_]


def format_table(rows: Sequence[Row], rates: dict[str, float]) -> str:
    """The float32 table: throughput (sequences x steps / s) of each side, the ratios and their spread, and
    the share of the matmul rate."""
    header = [*SHAPE_HEADER, "flax cell", "ours", "flax", "torch", "ours/flax", "ours/torch", "ours/flax q1-q3",
              "ours/torch q1-q3", "ours % of matmul rate", "torch % of matmul rate"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---:"] * 4 + ["---"] * 3 + ["---:"] * 9) + " |"]
    for row in rows:
        ours, flax_, torch_ = (row.case.throughput(t) for t in (row.ours, row.flax, row.torch))
        lines.append("| " + " | ".join([
            *_shape_cells(row.case), row.flax_cell, f"{ours:,.0f}", f"{flax_:,.0f}",
            "n/a" if row.torch is None else f"{torch_:,.0f}", f"{ours / flax_:.2f}",
            "n/a" if row.torch is None else f"{ours / torch_:.2f}", ratio_quartiles(row.ours, row.flax),
            ratio_quartiles(row.ours, row.torch), _peak(row, row.ours, rates),
            _peak(row, row.torch, rates),
        ]) + " |")  # fmt: skip
    return "\n".join(lines)


def format_mixed_table(rows: Sequence[Row], float32: dict[Case, Row], rates: dict[str, float]) -> str:
    """The mixed-precision table: ours against PyTorch's autocast, each side's speed-up over its own float32
    (where that was measured in this run) and its distance from float32."""
    header = [*SHAPE_HEADER, "ours", "torch", "ours/torch", "ours/torch q1-q3", "ours % of matmul rate",
              "torch % of matmul rate", "ours / ours float32", "torch / torch float32", "ours dy", "torch dy",
              "ours dgrad", "torch dgrad"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---:"] * 4 + ["---"] * 2 + ["---:"] * 12) + " |"]
    for row in rows:
        ours, torch_ = row.case.throughput(row.ours), row.case.throughput(row.torch)
        base = float32.get(row.case._replace(precision="float32"))
        speedup = lambda a, b: "n/a" if a is None or b is None else f"{b.median_s / a.median_s:.2f}"  # noqa: E731
        error = lambda key: f"{row.errors[key]:.1e}" if key in row.errors else "n/a"  # noqa: E731
        lines.append("| " + " | ".join([
            *_shape_cells(row.case), f"{ours:,.0f}", "n/a" if row.torch is None else f"{torch_:,.0f}",
            "n/a" if row.torch is None else f"{ours / torch_:.2f}", ratio_quartiles(row.ours, row.torch),
            _peak(row, row.ours, rates), _peak(row, row.torch, rates),
            speedup(row.ours, base and base.ours), speedup(row.torch, base and base.torch),
            error("ours dy"), error("torch dy"), error("ours dgrad"), error("torch dgrad"),
        ]) + " |")  # fmt: skip
    return "\n".join(lines)


def format_timings(rows: Sequence[Row]) -> str:
    """Milliseconds per call of each side, to judge the noise behind the ratios."""
    lines = [
        "| batch | time | input | hidden | cell | pass | precision | side | median ms | min ms | max ms | repeats |",
        "| ---: | ---: | ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    seen = set()
    for row in rows:
        for side, t in (("ours", row.ours), (f"flax {row.flax_cell}", row.flax), ("torch", row.torch)):
            if t is None or (row.case, side) in seen:
                continue
            seen.add((row.case, side))
            lines.append(
                f"| {' | '.join(_shape_cells(row.case))} | {row.case.precision} | {side} | {1e3 * t.median_s:.1f} "
                f"| {1e3 * min(t.times):.1f} | {1e3 * max(t.times):.1f} | {t.repeats} |"
            )
    return "\n".join(lines)


def torch_threads(cfg: Config) -> int | None:
    """Sets PyTorch's intra-op threads (``cfg.torch_threads``, else the cores this process may use); returns them,
    or None without PyTorch."""
    if not cfg.torch:
        return None
    import torch

    threads = cfg.torch_threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    return threads


def environment() -> dict[str, str]:
    """rnnjax's run environment, plus PyTorch's version and threads."""
    env = rj.experiment.environment()
    try:
        import torch

        env["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        env["torch"] = "not installed"
    return env


def _check_choices(values: tuple[str, ...], allowed: tuple[str, ...], name: str) -> None:
    unknown = set(values) - set(allowed)
    if unknown or not values:
        raise ValueError(f"{name}: expected some of {allowed}, got {sorted(unknown) or list(values)}")


def main(cfg: Config) -> str:
    """Runs the benchmark, prints the tables, writes ``report.md`` and ``config.json``; returns the tables."""
    _check_choices(cfg.cells, tuple(FLAX_CELLS), "cells")
    _check_choices(cfg.passes, PASSES, "passes")
    _check_choices(cfg.precisions, PRECISIONS, "precisions")
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, shapes=TINY_SHAPES, repeats=1, min_repeats=1, rate_size=128)
    key = jax.random.key(cfg.seed)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    threads = torch_threads(cfg)
    rates = matmul_rates(cfg)
    rows = []
    for shape in cfg.shapes:
        for name in cfg.cells:
            ref = reference(tuple(shape), name, cfg, rj.experiment.key_for(key, f"{name}/{','.join(map(str, shape))}"))
            for pass_ in cfg.passes:
                for precision in cfg.precisions:
                    rows += bench(Case(tuple(shape), name, pass_, precision), ref, cfg)
            print(f"done {shape} {name} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    plain = [r for r in rows if r.case.precision == "float32"]
    mixed = [r for r in rows if r.case.precision == "mixed"]
    tables = []
    if plain:
        tables.append(format_table(plain, rates))
    if mixed:
        tables.append(format_mixed_table(mixed, {r.case: r for r in plain}, rates))
    printed = "\n\n".join(tables)
    print(printed)

    repeats = sorted({t.repeats for row in rows for t in (row.ours, row.flax, row.torch) if t is not None})
    rate_line = ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
    sections = [
        "Sequences x steps per second; ratios above 1 mean ours is faster. `train`: `jit(value_and_grad(mean of "
        "outputs))` over all params (torch: forward + `loss.backward()`); `inference`: the outputs alone (torch: "
        "under `inference_mode`). Same weights on all sides; in float32 the outputs agree within "
        f"{cfg.atol:g} and the gradients within {cfg.grad_rtol:g} (relative).",
        f"Median of {'/'.join(map(str, repeats))} repeats after a warm-up, the sides interleaved; `q1-q3` are the "
        "quartiles of the per-round ratios. Our input projection: "
        + {None: "rnnjax's default for this backend", True: "hoisted before the loop", False: "inside the loop"}[
            cfg.hoist
        ]
        + f". Our implementation: impl={cfg.impl!r}. PyTorch's threads: {threads or 'n/a'}.",
        f"Matmul rate of this machine in this run (GFLOP/s, the fastest square product up to {cfg.rate_size}): "
        f"{rate_line}. `% of matmul rate` is a side's matmul flops per second against the faster library's rate in "
        "the row's precision.",
    ]
    if plain:
        sections += ["", "## float32", "", tables[0]]
    if mixed:
        sections += [
            "", "## Mixed precision: bfloat16 matmuls, float32 accumulation and params", "",
            "Ours: `matmul_dtype=jnp.bfloat16` (rnnjax.precision). PyTorch: `torch.autocast('cpu', "
            "dtype=torch.bfloat16)` around the forward pass. `dy` (the outputs) and `dgrad` "
            "(the worst gradient) are each side's largest difference from our float32 computation, relative to its "
            f"largest entry (ours must stay below {cfg.mixed_rtol:g}; PyTorch's is reported as autocast gives it). "
            "`/ float32` is each side's speed-up over its own float32 "
            "row of this run.", "", tables[-1],
        ]  # fmt: skip
    sections += ["", "## Time per call", "", format_timings(rows)]
    with (run_dir / "metrics.jsonl").open("w") as f:
        for row in rows:
            sides = {"ours": row.ours, "flax": row.flax, "torch": row.torch}
            f.write(json.dumps({"shape": row.case.shape, "cell": row.case.cell, "pass": row.case.pass_,
                                "precision": row.case.precision, "flax_cell": row.flax_cell,
                                **{f"{k}_s": None if t is None else list(t.times) for k, t in sides.items()},
                                "errors": row.errors}) + "\n")  # fmt: skip
        f.write(json.dumps({"matmul_gflops": rates}) + "\n")
    rj.experiment.write_report(run_dir, "RNN throughput, training and inference, float32 and mixed precision",
                               "\n".join(sections), seconds=elapsed, env=environment())  # fmt: skip
    return printed


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
