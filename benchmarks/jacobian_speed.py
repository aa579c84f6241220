"""Time of all ``da_T/da_k`` and of the Lyapunov spectrum, against their matmul and QR floors.

For one random sequence (batch 1) of T steps through a cell of H units (state size n: H for the RNN and
the GRU, 2H for the LSTM), every product ``da_T/da_k = J_T ... J_{k+1}``, k = 0..T, is computed three ways:

- pulled back: :func:`rnnjax.analysis.trajectory_products`, the n rows of ``da_T/da_{k+1}`` pulled back
  through step k+1 by its vector-Jacobian product: for the tanh RNN one n x n by n x n matmul a step;
- from step Jacobians: :func:`rnnjax.analysis.step_jacobians` then :func:`rnnjax.analysis.jacobian_products`,
  T Jacobians of one step (``jax.jacrev``: a matmul against the identity each) and T chained matmuls;
- direct: ``jax.jacrev`` of the map ``a_k -> a_T`` through the unrolled steps, anew for every k, as
  :func:`rnnjax.analysis.direct_products` does; it costs about T times more.

At the defaults the direct path would take minutes, so it is timed on ``direct_k`` evenly spaced values of
k (the same construction, vmapped over those k) and extrapolated linearly to all T + 1: every k costs the
same, since the masked scan of ``direct_products`` runs all T steps whatever k is. ``direct_products``
itself batches all T + 1 values of k in one vmap, whose cotangents, ``(T + 1) x n x n`` per step, leave the
caches: on 2 CPU cores at the defaults it took 286 s where 32 k extrapolate to 216 s, so the extrapolation
is a lower bound. ``--direct-k None`` times ``direct_products`` itself on every k.

The products' floor is the time of the T chained products alone, ``T * 2 * n^3`` flops, at this machine's
rate for a chain of n x n float32 matmuls in a ``lax.scan`` (the shape of the accumulation); the rate of one
large matmul is reported beside it.

The whole Lyapunov spectrum (n exponents, the QR method) of the same network along the same sequence is
computed two ways: :func:`rnnjax.analysis.lyapunov_spectrum` (the frame carried through n Jacobian-vector
products of each step) and ``lyapunov_from_jacobians(step_jacobians(...))``. Its floor is T chained QRs of
n x n matrices alone in a ``lax.scan`` (``Q <- qr(Q + B)``, the addition n^2), the part of the method that
no reformulation removes.

Before timing, every path (and the benchmark's own direct helper) is checked against ``direct_products`` or
``lyapunov_from_jacobians`` on a short sequence, so the table compares equal computations. Compilation is
excluded (ahead-of-time ``lower().compile()``); each time is the median over repeats after a warm-up round of
one call each, the calls taking turns so that load from other processes falls on all alike.

Run::

    python benchmarks/jacobian_speed.py                       # T = 1000, H = 256 (the README's table)
    python benchmarks/jacobian_speed.py --tiny                # T = 8, H = 4, one repeat (seconds)
    python benchmarks/jacobian_speed.py --cell lstm --length 500 --direct-k 16
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj
from rnnjax import analysis


@dataclasses.dataclass(frozen=True)
class Config:
    """Time all da_T/da_k, accumulated against direct per-k jacrev, and against the matmul floor."""

    cell: str = "rnn"
    """The cell, by name for ``rj.cells.make``: rnn (tanh), lstm, gru."""
    length: int = 1000
    """T: the products da_T/da_k are computed for k = 0..T."""
    hidden_size: int = 256
    """H: units of the cell."""
    input_size: int = 16
    """Features per step of the random (standard normal) inputs."""
    repeats: int = 5
    """Timed rounds (after a warm-up round) of one call each: accumulated, direct, the two matmuls; the median
    is reported."""
    direct_k: int | None = 32
    """Values of k, evenly spaced over 0..T, on which the direct path is timed and then extrapolated to all
    T + 1; None times direct_products on every k, in one call after the rounds (about T times the accumulated
    path: minutes)."""
    warmup: int = 100
    """Steps of the Lyapunov spectrum carried but not averaged (below T)."""
    check_length: int = 16
    """T of the check, before timing, that every path agrees with the reference (a quarter of it warm-up)."""
    rtol: float = 1e-4
    """Largest error of the check allowed: max |difference| / max |entry of the reference| (direct_products for
    the products, lyapunov_from_jacobians for the exponents)."""
    matmul_chain: int | None = None
    """Chained n x n matmuls in the scan that measures the matmul rate of the floor (None: T, as many as the
    products chain, so that the floor runs as long as what it bounds and meets the same load)."""
    qr_chain: int | None = None
    """Chained n x n QRs in the scan that measures the QR floor, scaled to T (None: T)."""
    peak_size: int = 2048
    """Size of the one large square matmul whose rate is reported beside the chain's."""
    tiny: bool = False
    """Smoke test: T = 8, H = 4, one repeat, 3 values of k, small matmuls (seconds)."""
    seed: int = 0
    """Seed of the weights and inputs."""
    name: str = "jacobian_speed"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""


TINY = dict(length=8, hidden_size=4, input_size=3, repeats=1, warmup=2, check_length=8, peak_size=64)


class Timing(NamedTuple):
    """Seconds per call: median, fastest and slowest of ``repeats`` timed calls, and the compile time."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int
    compile_s: float


class Compiled(NamedTuple):
    """A compiled computation bound to its arguments: ``call()`` runs it and waits for its output."""

    call: Callable[[], Any]
    compile_s: float


def compile_call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Compiled:
    """``jit(fn)`` compiled ahead of time for ``args``, so that no timed call includes compilation."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return Compiled(lambda: jax.block_until_ready(compiled(*args)), time.perf_counter() - t0)


def time_interleaved(
    calls: dict[str, Compiled], repeats: int, warmup: bool = True
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Times each call in rounds of one call each (after a warm-up round if ``warmup``), so that load from
    other processes falls on all of them alike; returns the timings and each call's first output."""
    first = {name: c.call() for name, c in calls.items()} if warmup else {}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, c in calls.items():
            t0 = time.perf_counter()
            out = c.call()
            times[name].append(time.perf_counter() - t0)
            first.setdefault(name, out)
            del out
    timings = {
        name: Timing(statistics.median(ts), min(ts), max(ts), repeats, calls[name].compile_s)
        for name, ts in times.items()
    }
    return timings, first


def pulled_products(cell: rj.Cell, params: Any, xs: jax.Array) -> jax.Array:
    """``da_T/da_k`` for k = 0..T by pulling rows back through each step: ``(batch, T + 1, n, n)``."""
    return analysis.trajectory_products(cell, params, xs)


def accumulated_products(cell: rj.Cell, params: Any, xs: jax.Array) -> jax.Array:
    """``da_T/da_k`` for k = 0..T by accumulating step Jacobians: ``(batch, T + 1, n, n)``."""
    return analysis.jacobian_products(analysis.step_jacobians(cell, params, xs))


def spectrum(cell: rj.Cell, params: Any, xs: jax.Array, warmup: int) -> jax.Array:
    """All n Lyapunov exponents ``(batch, n)`` by :func:`rnnjax.analysis.lyapunov_spectrum` (JVPs of the step)."""
    return analysis.lyapunov_spectrum(cell, params, xs, warmup=warmup)


def spectrum_from_jacobians(cell: rj.Cell, params: Any, xs: jax.Array, warmup: int) -> jax.Array:
    """All n Lyapunov exponents ``(batch, n)`` by the QR method on the materialised step Jacobians."""
    return analysis.lyapunov_from_jacobians(analysis.step_jacobians(cell, params, xs), warmup=warmup)


def direct_at(cell: rj.Cell, params: Any, xs: jax.Array, ks: jax.Array) -> jax.Array:
    """``da_T/da_k`` of the first sequence for the given k only, by ``jax.jacrev`` through the unrolled steps.

    The construction of :func:`rnnjax.analysis.direct_products` with t = T, vmapped over ``ks`` instead of
    all k: the scan runs every step and keeps a_k until step k + 1, so each k costs the same.

    Args:
        xs: ``(batch, T, features)``.
        ks: ``(m,)`` integers in 0..T.

    Returns:
        ``(m, n, n)``.
    """
    states = analysis.trajectory(cell, params, xs)[0]
    f = step_map(cell, params)
    x_seq = jnp.asarray(xs)[0]
    T = x_seq.shape[0]
    steps = jnp.arange(1, T + 1)

    def run_from(a_k: jax.Array, k: jax.Array) -> jax.Array:
        def body(a, inputs):
            s, x = inputs
            return jnp.where((s > k) & (s <= T), f(a, x), a), None

        return jax.lax.scan(body, a_k, (steps, x_seq))[0]

    return jax.vmap(lambda k: jax.jacrev(run_from)(states[k], k))(ks)


def step_map(cell: rj.Cell, params: Any) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``f(a, x) -> a'``: one step on the state vector of one example, ``a: (n,)``, ``x: (features,)``; the
    step of :func:`rnnjax.analysis.direct_products`, through the cell's public parts."""
    spec = cell.spec
    loop = spec.prepare(params)
    like = cell.initial_carry(params)

    def f(a: jax.Array, x: jax.Array) -> jax.Array:
        new, _ = spec.recur(loop, analysis.state_from_vector(a, like), spec.project(loop, x))
        return analysis.state_vector(new)

    return f


def evenly_spaced_k(T: int, count: int) -> np.ndarray:
    """``count`` distinct values of k spread evenly over 0..T, both ends included when count > 1."""
    return np.unique(np.linspace(0, T, count).round().astype(np.int32))


def relative_error(got: Any, want: Any) -> float:
    """``max |got - want| / max |want|``."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"shapes differ: {got.shape} against {want.shape}")
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), np.finfo(np.float32).tiny))


def per_k_error(got: np.ndarray, want: np.ndarray, floor: float = 1e-30) -> tuple[float, int]:
    """The largest :func:`relative_error` over k of ``(k, n, n)`` products, skipping those whose largest entry
    in ``want`` is below ``floor`` (vanished: float32 keeps no relative precision near underflow); and how
    many were skipped."""
    scale = np.max(np.abs(want), axis=(-2, -1))
    kept = [relative_error(g, w) for g, w, s in zip(got, want, scale, strict=True) if s >= floor]
    return max(kept, default=0.0), len(want) - len(kept)


def check_agreement(cell: rj.Cell, params: Any, xs: jax.Array, direct_k: int | None, rtol: float) -> dict[str, float]:
    """Every timed path against its reference on ``xs`` (a short sequence); raises if one differs."""
    T = xs.shape[1]
    warmup = T // 4
    run = lambda fn, *args: np.asarray(jax.jit(fn)(params, xs, *args))  # noqa: E731
    reference = run(lambda p, x: analysis.direct_products(cell, p, x, T))[0]
    ks = evenly_spaced_k(T, min(direct_k or T + 1, T + 1))
    exponents = run(lambda p, x: spectrum_from_jacobians(cell, p, x, warmup))
    errors = {
        "pulled": relative_error(run(lambda p, x: pulled_products(cell, p, x))[0], reference),
        "accumulated": relative_error(run(lambda p, x: accumulated_products(cell, p, x))[0], reference),
        "direct_at": relative_error(run(lambda p, x, k: direct_at(cell, p, x, k), jnp.asarray(ks)), reference[ks]),
        "lyapunov": relative_error(run(lambda p, x: spectrum(cell, p, x, warmup)), exponents),
    }
    for side, error in errors.items():
        if not error < rtol:
            raise AssertionError(f"{cell.name}, T = {T}: {side} against its reference: error {error:.3g} >= {rtol:g}")
    return errors


def matmul_chain(n: int, chain: int, key: jax.Array) -> Compiled:
    """``chain`` dependent n x n float32 matmuls in a ``lax.scan``, the shape of the accumulation.

    The factor is orthogonal, so the values neither vanish into subnormals nor overflow.
    """
    B = jnp.linalg.qr(jax.random.normal(key, (n, n), jnp.float32))[0]

    def run(a: jax.Array, B: jax.Array) -> jax.Array:
        return jax.lax.scan(lambda a, _: (a @ B, None), a, None, length=chain)[0]

    return compile_call(run, (B, B))


def qr_chain(n: int, chain: int, key: jax.Array) -> Compiled:
    """``chain`` dependent QRs of n x n float32 matrices in a ``lax.scan``: ``Q <- qr(Q + B)``, the QR method's
    factorisations with nothing else (the addition is n^2; B is a fixed normal matrix, so Q + B stays well
    conditioned)."""
    B = jax.random.normal(key, (n, n), jnp.float32)

    def run(Q: jax.Array, B: jax.Array) -> jax.Array:
        return jax.lax.scan(lambda Q, _: (jnp.linalg.qr(Q + B)[0], None), Q, None, length=chain)[0]

    return compile_call(run, (jnp.eye(n, dtype=jnp.float32), B))


def large_matmul(size: int, key: jax.Array) -> Compiled:
    """One ``size`` x ``size`` float32 matmul."""
    A = jax.random.normal(key, (size, size), jnp.float32)
    return compile_call(jnp.matmul, (A, A))


def main(cfg: Config) -> str:
    """Checks, times every path and the floors, prints the table, writes the run folder; returns the table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY, direct_k=None if cfg.direct_k is None else 3)
    chains = {field: cfg.length for field in ("matmul_chain", "qr_chain") if getattr(cfg, field) is None}
    cfg = dataclasses.replace(cfg, **chains)
    for field in ("length", "hidden_size", "input_size", "repeats", "check_length", "matmul_chain", "qr_chain"):
        if getattr(cfg, field) < 1:
            raise ValueError(f"{field}: expected a positive integer, got {getattr(cfg, field)}")
    if cfg.direct_k is not None and not 1 <= cfg.direct_k <= cfg.length + 1:
        raise ValueError(f"direct_k: expected None or 1..{cfg.length + 1} (T + 1), got {cfg.direct_k}")
    if not 0 <= cfg.warmup < cfg.length:
        raise ValueError(f"warmup: expected 0..{cfg.length - 1} (below the length), got {cfg.warmup}")
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    k_params, k_xs, k_check, k_chain, k_peak, k_qr = jax.random.split(jax.random.key(cfg.seed), 6)
    cell = rj.cells.make(cfg.cell, cfg.hidden_size)
    params = cell.init(k_params, cfg.input_size)
    xs = jax.random.normal(k_xs, (1, cfg.length, cfg.input_size), jnp.float32)
    T = cfg.length

    check_xs = jax.random.normal(k_check, (1, cfg.check_length, cfg.input_size), jnp.float32)
    check = check_agreement(cell, params, check_xs, cfg.direct_k, cfg.rtol)

    n = analysis.state_vector(cell.initial_carry(params)).shape[-1]
    calls = {
        "pulled": compile_call(lambda p, x: pulled_products(cell, p, x), (params, xs)),
        "accumulated": compile_call(lambda p, x: accumulated_products(cell, p, x), (params, xs)),
        "spectrum": compile_call(lambda p, x: spectrum(cell, p, x, cfg.warmup), (params, xs)),
        "spectrum_jac": compile_call(lambda p, x: spectrum_from_jacobians(cell, p, x, cfg.warmup), (params, xs)),
        "chain": matmul_chain(n, cfg.matmul_chain, k_chain),
        "qr": qr_chain(n, cfg.qr_chain, k_qr),
        "peak": large_matmul(cfg.peak_size, k_peak),
    }
    if cfg.direct_k is None:
        ks = np.arange(T + 1)
        fn = lambda p, x: analysis.direct_products(cell, p, x, T)[0]  # noqa: E731
        timings, first = time_interleaved(calls, cfg.repeats)
        # One call without a warm-up: each takes minutes, and the compilation is already excluded.
        late, late_first = time_interleaved({"direct": compile_call(fn, (params, xs))}, 1, warmup=False)
        timings, first = {**timings, **late}, {**first, **late_first}
    else:
        ks = evenly_spaced_k(T, cfg.direct_k)
        fn = lambda p, x, k: direct_at(cell, p, x, k)  # noqa: E731
        calls["direct"] = compile_call(fn, (params, xs, jnp.asarray(ks)))
        timings, first = time_interleaved(calls, cfg.repeats)
    products, direct_out = np.asarray(first["pulled"][0]), np.asarray(first["direct"])
    exponents = np.asarray(first["spectrum"][0])
    lyapunov_error = relative_error(exponents, np.asarray(first["spectrum_jac"][0]))
    del first
    full_error, vanished = per_k_error(products[ks], direct_out)
    del direct_out
    direct = timings["direct"]
    per_k_s = direct.median_s / len(ks)
    direct_s = per_k_s * (T + 1)

    rate = cfg.matmul_chain * 2 * n**3 / timings["chain"].median_s / 1e9
    peak = 2 * cfg.peak_size**3 / timings["peak"].median_s / 1e9
    floor_s = T * 2 * n**3 / (rate * 1e9)
    qr_floor_s = timings["qr"].median_s * T / cfg.qr_chain
    elapsed = time.perf_counter() - start

    timed_k = f"all {T + 1} k" if cfg.direct_k is None else f"{len(ks)} of {T + 1} k, extrapolated"
    headers = ["computes", "by", "s", "floor", "floor s", "s/floor"]
    rows = [
        ["all da_T/da_k", "trajectory_products (pulled back)", timings["pulled"].median_s, "matmul", floor_s,
         timings["pulled"].median_s / floor_s],
        ["all da_T/da_k", "step_jacobians + jacobian_products", timings["accumulated"].median_s, "matmul", floor_s,
         timings["accumulated"].median_s / floor_s],
        ["all da_T/da_k", f"jax.jacrev per k ({timed_k})", direct_s, "matmul", floor_s, direct_s / floor_s],
        [f"{n} Lyapunov exponents", "lyapunov_spectrum (JVPs)", timings["spectrum"].median_s, "QR", qr_floor_s,
         timings["spectrum"].median_s / qr_floor_s],
        [f"{n} Lyapunov exponents", "step_jacobians + lyapunov_from_jacobians", timings["spectrum_jac"].median_s,
         "QR", qr_floor_s, timings["spectrum_jac"].median_s / qr_floor_s],
    ]  # fmt: skip
    table = rj.experiment.markdown_table(headers, rows)
    print(table)

    timing_table = rj.experiment.markdown_table(
        ["call", "median s", "min s", "max s", "repeats", "compile s"],
        [[label, t.median_s, t.min_s, t.max_s, t.repeats, t.compile_s] for label, t in (
            ("trajectory_products (all k)", timings["pulled"]),
            ("step_jacobians + jacobian_products (all k)", timings["accumulated"]),
            (f"direct ({len(ks)} k)", direct),
            ("lyapunov_spectrum", timings["spectrum"]),
            ("step_jacobians + lyapunov_from_jacobians", timings["spectrum_jac"]),
            (f"{cfg.matmul_chain} chained {n} x {n} matmuls", timings["chain"]),
            (f"{cfg.qr_chain} chained {n} x {n} QRs", timings["qr"]),
            (f"one {cfg.peak_size} x {cfg.peak_size} matmul", timings["peak"]),
        )],
    )  # fmt: skip
    if cfg.direct_k is None:
        direct_text = (
            f"`direct_products` itself on all {T + 1} values of k, measured (no extrapolation), "
            "one call without a warm-up, after the rounds"
        )
    else:
        direct_text = (
            f"**extrapolated**: timed on {len(ks)} of the {T + 1} values of k, evenly spaced ({_list(ks)}), "
            f"{per_k_s:.4g} s per k, times {T + 1}; the construction of `direct_products` (vmapped over "
            "those k), whose masked scan runs all T steps for every k, so each k costs the same. "
            "`direct_products` itself batches all T + 1 values of k at once and can cost more per k (its "
            "cotangents of (T + 1) x n x n per step leave the caches), so take this as a lower bound; "
            "`--direct-k None` measures it"
        )
    rivals = "the other calls below" if cfg.direct_k is None else "the direct path and the other calls below"
    body = f"""All `da_T/da_k`, k = 0..T, and all {n} Lyapunov exponents of one random sequence (batch 1) through the
`{cfg.cell}` cell: T = {T}, H = {cfg.hidden_size}, state size n = {n}, float32, on {jax.devices()[0].platform}.

- pulled back: `jit` of `trajectory_products`, the n rows of `da_T/da_(k+1)` pulled back through step k + 1 by
  its vector-Jacobian product. It, {rivals} take turns, one call each per round, so that load from other
  processes falls on all alike; each time is the median of {timings["pulled"].repeats} rounds after a warm-up
  round.
- from step Jacobians: `jit` of `step_jacobians` (`jax.jacrev` of each step) then `jacobian_products`.
- direct: `jax.jacrev` of `a_k -> a_T` through the unrolled steps, anew for each k; {direct_text}.
- matmul floor: the T chained products alone, `T * 2 * n^3` = {T * 2 * n**3 / 1e9:.4g} GFLOP, at the rate of
  {cfg.matmul_chain} chained {n} x {n} matmuls in a `lax.scan` ({rate:.4g} GFLOP/s). One {cfg.peak_size} x
  {cfg.peak_size} matmul runs at {peak:.4g} GFLOP/s.
- Lyapunov exponents: `lyapunov_spectrum` (all n, warm-up {cfg.warmup} steps; the frame carried through n
  Jacobian-vector products of each step) and `lyapunov_from_jacobians` of `step_jacobians`.
- QR floor: {cfg.qr_chain} chained QRs of {n} x {n} matrices in a `lax.scan` (`Q <- qr(Q + B)`), times
  T / {cfg.qr_chain}: the QR method's T factorisations with nothing else.
- check before timing, T = {cfg.check_length}: against `direct_products`, the pulled-back products differ by
  {check["pulled"]:.3g}, those from step Jacobians by {check["accumulated"]:.3g} and the benchmark's direct helper by
  {check["direct_at"]:.3g}; `lyapunov_spectrum` differs from `lyapunov_from_jacobians` by {check["lyapunov"]:.3g} (max
  |difference| / max |entry|; all below {cfg.rtol:g}). At T = {T}, on the timed k, direct and pulled-back
  products differ by at most {full_error:.3g} per k (the same measure per k), leaving out the {vanished} of
  {len(ks)} k whose product has vanished below 1e-30 (float32 holds no relative precision near its underflow);
  the two spectra differ by {lyapunov_error:.3g}.

{table}

## Time per call

{timing_table}
"""
    rj.experiment.write_report(run_dir, "All da_T/da_k and the Lyapunov spectrum against their floors", body,
                               seconds=elapsed)  # fmt: skip
    record = {"T": T, "H": cfg.hidden_size, "n": n, "cell": cfg.cell,
              "pulled_s": timings["pulled"].median_s, "accumulated_s": timings["accumulated"].median_s,
              "direct_s": direct_s, "direct_k": ks.tolist(), "direct_extrapolated": cfg.direct_k is not None,
              "direct_timed_s": direct.median_s, "matmul_gflops": rate, "peak_gflops": peak, "floor_s": floor_s,
              "spectrum_s": timings["spectrum"].median_s, "spectrum_from_jacobians_s": timings["spectrum_jac"].median_s,
              "qr_floor_s": qr_floor_s, "check_error": check, "full_error": full_error, "vanished_k": vanished,
              "lyapunov_error": lyapunov_error, "elapsed_s": elapsed}  # fmt: skip
    (run_dir / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    return table


def _list(ks: np.ndarray, most: int = 8) -> str:
    """The values of k, abridged when there are many."""
    if len(ks) <= most:
        return ", ".join(map(str, ks))
    return ", ".join(map(str, ks[: most // 2])) + ", ..., " + ", ".join(map(str, ks[-(most // 2) :]))


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
