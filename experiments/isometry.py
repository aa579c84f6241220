"""Dynamical isometry of the tanh RNN at initialisation, and the dimension of its chaotic attractor.

(a) The singular values of the end-to-end Jacobian ``da_T/da_0`` of a tanh RNN ``a_t = tanh(W a_{t-1} + U x_t +
    b)`` at initialisation, for T in {1, 10, 30, 100}, under five initialisations: Gaussian W at
    ``sigma_w = 1`` and at a larger ``sigma_w`` (chaotic), orthogonal W at ``sigma_w = 1``, and orthogonal and
    Gaussian W at a point ``(sigma_w, sigma_b)`` of the critical line ``chi = 1`` (``rnnjax.analysis.isometry``).
    Beside the measured moments of ``sigma^2`` stand their mean-field predictions: the mean ``chi^T`` (Chen,
    Pennington & Schoenholz 2018) and the normalised variance ``T (mu_2/mu_1^2 - 1 - s_1)`` (Pennington,
    Schoenholz & Ganguli 2017). Each sequence starts on the stationary state: ``a_0`` drawn as
    ``tanh(sqrt(q*) z)`` and run ``burn_in`` steps; inputs ``x_t ~ N(0, I)``; float64, so that an SVD resolves
    singular values down to ~1e-16 of the largest.
(b) The autonomous tanh RNN ``a_t = tanh(W a_{t-1})``, ``W ~ N(0, g^2 / n)``, for gains g in its chaotic regime
    (``g > 1`` in discrete time): its Lyapunov exponents (QR method, ``rj.analysis.lyapunov_spectrum``), the
    Kaplan-Yorke dimension of its attractor and the participation ratio of its states, as fractions of n
    (Engelken, Wolf & Abbott 2020), with the mean-field largest exponent ``log(chi) / 2`` beside the measured.

Nothing is trained. It writes ``runs/<name>/`` under the current directory: ``config.json``, ``metrics.jsonl``,
the figures and ``report.md``. The default run took 94 s of wall time on 2 shared CPU cores at a load average of
12 (31 s of CPU time, 0.9 GB of memory): well under the 5 minutes of the budget on a quiet machine.

Run::

    python experiments/isometry.py                           # the defaults
    python experiments/isometry.py --hidden-size 256 --times 1 10 100 300
    python experiments/isometry.py --tiny                    # seconds: a smoke test
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import rnnjax as rj
from rnnjax import analysis
from rnnjax.analysis import dimension, isometry
from rnnjax.plots import isometry as isoplots


@dataclasses.dataclass(frozen=True)
class Config:
    """Singular values of da_T/da_0 at initialisation against mean field; dimension of the chaotic attractor."""

    hidden_size: int = 128
    """n: units of the tanh RNN (both parts)."""
    input_size: int = 16
    """Features of the inputs x_t ~ N(0, I) in part (a)."""
    batch: int = 8
    """Sequences (initial states and inputs) per initialisation in part (a); their spectra are pooled."""
    times: tuple[int, ...] = (1, 10, 30, 100)
    """The T's of da_T/da_0."""
    burn_in: int = 100
    """Steps run from a_0 = tanh(sqrt(q*) z) before the measured window, so that it starts on the stationary state."""
    q_stars: tuple[float, ...] = (0.01, 0.05)
    """Fixed points q* of the critical initialisations, for each W: sigma_w^2 = 1 / E[tanh'(sqrt(q*) z)^2], the
    slack q* - sigma_w^2 E[tanh(sqrt(q*) z)^2] (1.3e-6 at q* = 0.01, 1.3e-4 at 0.05) carried by the inputs
    (sigma_u^2 = slack, sigma_b = 0): fresh at every step, as the mean field's bias is at every layer."""
    biased_q_star: float | None = 0.05
    """One more critical orthogonal initialisation at this q* (None: none) whose slack goes to the bias
    (sigma_b^2 = slack - sigma_u^2): the same b at every step, which the mean field does not describe."""
    sigma_u: float = 0.001
    """Scale of the input weights, U_ij ~ N(0, sigma_u^2 / input_size), of the initialisations off the critical
    line and of the biased one."""
    large_sigma_w: float = 2.0
    """The larger sigma_w of the Gaussian W (chaotic: chi > 1)."""
    float64: bool = True
    """Part (a) in float64 (an SVD resolves singular values down to eps * sigma_max of its dtype)."""
    gains: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0)
    """Part (b): gains g of the autonomous network, W ~ N(0, g^2 / n) (the same W, scaled)."""
    lyapunov_steps: int = 1000
    """Part (b): steps of each trajectory."""
    lyapunov_warmup: int = 200
    """Part (b): steps left out of the Lyapunov average and of the participation ratio."""
    exponents: int = 64
    """Part (b): how many of the largest Lyapunov exponents are measured (the Kaplan-Yorke dimension needs one
    more than its integer part; the table says where that was not enough)."""
    dimension_batch: int = 2
    """Part (b): trajectories per gain (random initial states); their dimensions are averaged."""
    seed: int = 0
    """One seed for weights, initial states and inputs."""
    name: str = "isometry"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar."""
    tiny: bool = False
    """Smoke test: 16 units, T up to 6, two gains (seconds); overrides those fields."""


TINY = dict(hidden_size=16, input_size=4, batch=2, times=(1, 3, 6), burn_in=5, gains=(1.5, 3.0), lyapunov_steps=60,
            lyapunov_warmup=20, exponents=12, dimension_batch=1)  # fmt: skip


def critical_name(ensemble: str, q_star: float, biased: bool = False) -> str:
    return f"critical {ensemble}, q*={q_star:g}" + (", bias" if biased else "")


def initialisations(cfg: Config) -> dict[str, tuple[str, float, float, float]]:
    """``{name: (ensemble, sigma_w, sigma_b, sigma_u)}`` of part (a)."""
    su = cfg.sigma_u
    inits = {
        "gaussian, sigma_w=1": ("gaussian", 1.0, 0.0, su),
        f"gaussian, sigma_w={cfg.large_sigma_w:g}": ("gaussian", cfg.large_sigma_w, 0.0, su),
        "orthogonal, sigma_w=1": ("orthogonal", 1.0, 0.0, su),
    }
    for ensemble in ("orthogonal", "gaussian"):
        for q in cfg.q_stars:
            sigma_w, slack = isometry.critical_point(q)  # sigma_b of the line without inputs: sqrt(slack)
            inits[critical_name(ensemble, q)] = (ensemble, sigma_w, 0.0, slack)
    if cfg.biased_q_star is not None:
        q = cfg.biased_q_star
        inits[critical_name("orthogonal", q, biased=True)] = ("orthogonal", *isometry.critical_point(q, su), su)
    return inits


@functools.partial(jax.jit, static_argnums=(0, 5))
def measure_spectra(cell: rj.Cell, params: Any, a0: jax.Array, burn_xs: jax.Array, xs: jax.Array,
                    times: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Singular values of da_T/da_0 from the state after ``burn_xs``, and the measured variance of the
    pre-activations ``h_t = W a_(t-1) + U x_t + b`` over the window (the mean field's q*)."""
    carry = analysis.trajectory(cell, params, burn_xs, a0)[:, -1] if burn_xs.shape[1] else a0
    singular = isometry.end_to_end_singular_values(cell, params, xs, times, carry)
    states = analysis.trajectory(cell, params, xs, carry)
    pre = states[:, :-1] @ params.W.T + xs @ params.U.T + params.b
    return singular, jnp.mean(pre**2)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5))
def measure_dimension(cell: rj.Cell, params: Any, a0: jax.Array, steps: int, warmup: int, k: int) -> dict[str, Any]:
    """Lyapunov exponents, Kaplan-Yorke dimension and participation ratio of the autonomous network from ``a0``."""
    xs = jnp.zeros((a0.shape[0], steps, 1), a0.dtype)
    exponents = analysis.lyapunov_spectrum(cell, params, xs, a0, k=k, warmup=warmup)
    states = analysis.trajectory(cell, params, xs, a0)[:, 1 + warmup :]
    return {"exponents": exponents, "ky": dimension.kaplan_yorke_dimension(exponents),
            "pr": dimension.participation_ratio(states)}  # fmt: skip


def spectrum_stats(singular: np.ndarray, dtype: Any) -> dict[str, Any]:
    """Moments and spread of one T's pooled spectrum ``(batch, n)``; ``floor``: singular values below
    ``n * eps * sigma_max`` of their matrix are rounding (their logs then understate the spread)."""
    n = singular.shape[-1]
    m1, nvar = (float(v) for v in isometry.squared_moments(jnp.asarray(singular), axis=(0, 1)))
    floor = n * np.finfo(dtype).eps * singular.max(-1, keepdims=True)
    with np.errstate(divide="ignore"):
        logs = np.log(singular)
    return {"mean_sq": m1, "nvar": nvar, "std_log": float(np.std(logs)), "below_floor": int(np.sum(singular < floor)),
            "within_2": float(np.mean(np.abs(logs) <= np.log(2.0))), "max": float(singular.max()),
            "min": float(singular.min()), "floor": float(floor.max())}  # fmt: skip


def part_a(cfg: Config, key: jax.Array, bar: tqdm) -> dict[str, dict[str, Any]]:
    """Spectra and moments per initialisation (all see the same inputs and the same draws of a_0)."""
    dtype = jnp.float64 if cfg.float64 else jnp.float32
    T_max = max(cfg.times)
    k_x, k_z = jax.random.split(jax.random.fold_in(key, 0))
    xs = jax.random.normal(k_x, (cfg.batch, cfg.burn_in + T_max, cfg.input_size), dtype)
    z = jax.random.normal(k_z, (cfg.batch, cfg.hidden_size), dtype)
    out = {}
    for name, (ensemble, sigma_w, sigma_b, sigma_u) in initialisations(cfg).items():
        mf = isometry.mean_field(sigma_w, sigma_b, sigma_u)
        cell, params = isometry.mean_field_init(
            rj.experiment.key_for(key, name), cfg.hidden_size, cfg.input_size, sigma_w=sigma_w, sigma_b=sigma_b,
            sigma_u=sigma_u, ensemble=ensemble, dtype=dtype,
        )  # fmt: skip
        a0 = jnp.tanh(jnp.sqrt(jnp.asarray(mf.q_star, dtype)) * z)
        singular, q = jax.device_get(measure_spectra(cell, params, a0, xs[:, : cfg.burn_in], xs[:, cfg.burn_in :],
                                                     tuple(cfg.times)))  # fmt: skip
        mean, nvar = isometry.predicted_moments(mf, cfg.times, ensemble)
        stats = {T: spectrum_stats(np.asarray(singular[:, i]), dtype) for i, T in enumerate(cfg.times)}
        radius = float(np.abs(analysis.eigenvalues(params.W)[0]))
        spectra = {T: np.asarray(singular[:, i]) for i, T in enumerate(cfg.times)}
        out[name] = {"ensemble": ensemble, "sigma_w": sigma_w, "sigma_b": sigma_b, "sigma_u": sigma_u, "mf": mf,
                     "q": float(q),
                     "radius": radius, "singular": spectra, "stats": stats, "pred_mean": mean,
                     "pred_nvar": nvar}  # fmt: skip
        bar.update()
    return out


def part_b(cfg: Config, key: jax.Array, bar: tqdm) -> dict[float, dict[str, Any]]:
    """Lyapunov spectrum, Kaplan-Yorke dimension and participation ratio of the autonomous network per gain."""
    n = cfg.hidden_size
    k = min(cfg.exponents, n)
    a0 = jnp.tanh(jax.random.normal(jax.random.fold_in(key, 1), (cfg.dimension_batch, n)))
    out = {}
    for g in cfg.gains:  # one key for every gain: the same W, scaled
        cell, params = isometry.mean_field_init(rj.experiment.key_for(key, "autonomous"), n, 1, sigma_w=g)
        m = jax.device_get(measure_dimension(cell, params, a0, cfg.lyapunov_steps, cfg.lyapunov_warmup, k))
        ky = np.asarray(m["ky"])
        exponents = np.asarray(m["exponents"])
        out[g] = {"largest": float(exponents[:, 0].mean()), "positive": float(np.sum(exponents > 0, -1).mean()),
                  "ky": float(ky.mean()), "ky_capped": bool(np.any(ky >= k - 1)), "pr": float(np.mean(m["pr"])),
                  "mf_largest": 0.5 * float(np.log(isometry.mean_field(g).chi)), "k": k}  # fmt: skip
        bar.update()
    return out


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def spectra_table(cfg: Config, a: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, r in a.items():
        for T in cfg.times:
            s, i = r["stats"][T], cfg.times.index(T)
            bound = ">= " if s["below_floor"] else ""
            floor = " (floor)" if bound else ""
            rows.append([name, T, f"{_fmt(s['mean_sq'])} / {_fmt(r['pred_mean'][i])}",
                         f"{_fmt(s['nvar'])} / {_fmt(r['pred_nvar'][i])}", f"{bound}{s['std_log']:.3g}",
                         f"{s['within_2']:.2f}", _fmt(s["max"]), _fmt(s["min"]) + floor])  # fmt: skip
    return rj.experiment.markdown_table(
        ["initialisation", "T", "mean sigma^2: ours / chi^T", "Var(sigma^2)/mean^2: ours / mean field", "std log sigma",
         "fraction in [1/2, 2]", "sigma_max", "sigma_min"], rows)  # fmt: skip


def inits_table(a: dict[str, dict[str, Any]]) -> str:
    rows = [[name, r["ensemble"], f"{r['sigma_w']:.4f}", f"{r['radius']:.4f}", f"{r['sigma_b']:.4g}",
             f"{r['sigma_u']:.4g}", f"{r['mf'].q_star:.4g}", f"{r['q']:.4g}", f"{r['mf'].chi:.4f}",
             f"{r['mf'].mu_2 / r['mf'].mu_1 ** 2 - 1:.3g}"] for name, r in a.items()]  # fmt: skip
    return rj.experiment.markdown_table(
        ["initialisation", "W", "sigma_w", "spectral radius of W", "sigma_b", "sigma_u", "q* (mean field)",
         "q (measured)",
         "chi", "mu_2/mu_1^2 - 1"], rows)  # fmt: skip


def dimension_table(cfg: Config, b: dict[float, dict[str, Any]]) -> str:
    n = cfg.hidden_size
    rows = [[g, f"{r['largest']:.4f} / {r['mf_largest']:.4f}", f"{r['positive']:.1f}",
             ("> " if r["ky_capped"] else "") + f"{r['ky']:.2f}", f"{r['ky'] / n:.3f}", f"{r['pr']:.2f}",
             f"{r['pr'] / n:.3f}"] for g, r in b.items()]  # fmt: skip
    return rj.experiment.markdown_table(
        ["g", "largest exponent: ours / log(chi)/2", "positive exponents", "Kaplan-Yorke D", "D / n",
         "participation ratio", "PR / n"], rows)  # fmt: skip


def classics(cfg: Config, a: dict[str, dict[str, Any]], b: dict[float, dict[str, Any]]) -> list[rj.experiment.Classic]:
    """The published results beside this run's; ``agrees`` by the rules stated in each row's note."""
    T, n = max(cfg.times), cfg.hidden_size
    q_lo = min(cfg.q_stars)
    orth = {q: a[critical_name("orthogonal", q)] for q in cfg.q_stars}
    gauss = a[critical_name("gaussian", q_lo)]
    nv = {q: r["stats"][T]["nvar"] for q, r in orth.items()}
    nv_p = {q: r["pred_nvar"][-1] for q, r in orth.items()}
    g_nv, g_nv_p = gauss["stats"][T]["nvar"], gauss["pred_nvar"][-1]
    concentrated = nv[q_lo] < 0.1 * g_nv and orth[q_lo]["stats"][T]["within_2"] > gauss["stats"][T]["within_2"]
    theory = all(abs(np.log(nv[q] / nv_p[q])) < np.log(1.5) for q in cfg.q_stars)
    off = a["orthogonal, sigma_w=1"]
    off_mean, off_pred = off["stats"][T]["mean_sq"], off["pred_mean"][-1]
    on_mean = {q: r["stats"][T]["mean_sq"] for q, r in orth.items()}
    chi_T = all(abs(np.log(m)) < np.log(1.5) for m in on_mean.values()) and abs(np.log(off_mean / off_pred)) < np.log(
        1.5
    )
    gains = list(b)
    ky = [b[g]["ky"] / n for g in gains]
    peak = int(np.argmax(ky))
    rising = peak > 0 and all(ky[i] < ky[i + 1] for i in range(peak))
    small = max(ky) < 0.5
    biased_note = ""
    if cfg.biased_q_star is not None:
        r = a[critical_name("orthogonal", cfg.biased_q_star, biased=True)]
        biased_note = (f"; with the slack in a static bias instead (q* = {cfg.biased_q_star:g}) the orthogonal mean "
                       f"is {r['stats'][T]['mean_sq']:.3g} at q = {r['q']:.3g}")  # fmt: skip
    within = ", ".join(f"{orth[q]['stats'][T]['within_2']:.0%} (q* = {q:g})" for q in cfg.q_stars)
    return [
        rj.experiment.Classic(
            result="at chi = 1 orthogonal W keeps the Jacobian spectrum concentrated, Gaussian W broadens it with T",
            source="Pennington, Schoenholz & Ganguli 2017, Sec. 2.5",
            published="at chi = 1 the variance of the squared singular values is L(mu_2/mu_1^2 - 1 - s_1): s_1 = -1 "
            "(Gaussian) grows at least like L; s_1 = 0 (orthogonal) vanishes as q* -> 0",
            ours=f"T = {T}: Var(sigma^2)/mean^2 = "
            + ", ".join(f"{nv[q]:.3g} (theory {nv_p[q]:.3g}, q* = {q:g})" for q in cfg.q_stars)
            + f" orthogonal vs {g_nv:.3g} (theory {g_nv_p:.3g}) Gaussian at q* = {q_lo:g}; sigma in [1/2, 2]: "
            f"{within} orthogonal vs {gauss['stats'][T]['within_2']:.0%} Gaussian",
            agrees="yes" if concentrated and theory else "partly" if concentrated else "no",
            note=f"yes when every orthogonal spread is within 1.5x of its theory and 10x below the Gaussian's. One W "
            f"at every step, n = {n}: the Gaussian W's spectral radius is {gauss['radius']:.3g} (sigma_w "
            f"{gauss['sigma_w']:.3g}) and its state sits at q = {gauss['q']:.3g} (q* = {q_lo:g}), off the mean field",
        ),  # fmt: skip
        rj.experiment.Classic(
            result="on the critical line the mean squared singular value stays at 1 and the vanilla RNN with "
            "orthogonal W reaches dynamical isometry; off it, it decays as chi^T",
            source="Chen, Pennington & Schoenholz 2018, abstract and their vanilla-RNN analysis",
            published="mean squared singular value chi^T; a closed-form critical initialisation achieves dynamical "
            "isometry in vanilla RNNs",
            ours=f"T = {T}: mean sigma^2 = "
            + ", ".join(f"{m:.3g} (q* = {q:g})" for q, m in on_mean.items())
            + f" critical orthogonal (chi^T = 1); {off_mean:.3g} orthogonal sigma_w = 1 (chi^T = {off_pred:.3g}); "
            f"{gauss['stats'][T]['mean_sq']:.3g} critical Gaussian, q* = {q_lo:g} (chi^T = 1)",
            agrees="yes" if chi_T else "no",
            note="yes when every input-driven orthogonal mean is within 1.5x of chi^T. The critical Gaussian RNN's "
            f"mean is {gauss['stats'][T]['mean_sq']:.2g} x chi^T at n = {n}: its state sits at q = {gauss['q']:.3g}, "
            f"not q* = {q_lo:g}" + biased_note,
        ),  # fmt: skip
        rj.experiment.Classic(
            result="the attractor of a chaotic RNN has a dimension far below n, growing with g near the onset of chaos",
            source="Engelken, Wolf & Abbott 2020, abstract",
            published="attractor dimensions much smaller than the number of phase-space dimensions; the dimension "
            "increases with coupling strength near the onset of chaos, decreases far from it",
            ours="Kaplan-Yorke D/n = " + ", ".join(f"{v:.3f} (g = {g:g})" for g, v in zip(gains, ky, strict=True)),
            agrees="yes" if small and rising and 0 < peak < len(gains) - 1 else "partly" if small and rising else "no",
            note="yes when D/n < 0.5 everywhere and rises to a peak inside the range of g. Discrete time, "
            f"a_t = tanh(W a_(t-1)), n = {n}, "
            f"{cfg.lyapunov_steps} steps; the paper's main figures are of the continuous-time rate network",
        ),
    ]


def main(cfg: Config) -> dict[str, Any]:
    """Runs (a) and (b), writes the run folder and returns the tables."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    key = jax.random.key(cfg.seed)
    bar = tqdm(total=len(initialisations(cfg)) + len(cfg.gains), desc="isometry", disable=not cfg.progress)
    with jax.enable_x64(cfg.float64):
        a = part_a(cfg, key, bar)
    b = part_b(cfg, key, bar)
    bar.close()
    with (run_dir / "metrics.jsonl").open("w") as f:
        for name, r in a.items():
            for i, T in enumerate(cfg.times):
                f.write(json.dumps({"part": "isometry", "init": name, "T": T, **r["stats"][T],
                                    "pred_mean_sq": float(r["pred_mean"][i]), "pred_nvar": float(r["pred_nvar"][i]),
                                    "q_star": r["mf"].q_star, "q": r["q"], "chi": r["mf"].chi}) + "\n")  # fmt: skip
        for g, r in b.items():
            f.write(json.dumps({"part": "dimension", "gain": g, **r}) + "\n")
    figures = write_figures(cfg, run_dir, a, b)
    tables = {"inits": inits_table(a), "spectra": spectra_table(cfg, a), "dimension": dimension_table(cfg, b)}
    rows = classics(cfg, a, b)
    write_report(cfg, run_dir, tables, figures, rows, time.perf_counter() - start)
    print(*tables.values(), sep="\n\n")
    return {"run_dir": run_dir, "tables": tables, "isometry": a, "dimension": b, "classics": rows}


def write_figures(
    cfg: Config, run_dir: Any, a: dict[str, dict[str, Any]], b: dict[float, dict[str, Any]]
) -> dict[str, str]:
    times = np.asarray(cfg.times)
    out = {}
    out["histograms"] = isoplots.log_singular_value_histograms(
        {name: r["singular"] for name, r in a.items()}, run_dir / "singular_values.png",
        floors={name: {T: r["stats"][T]["floor"] for T in cfg.times} for name, r in a.items()},
        title=f"singular values of da_T/da_0 at initialisation (n = {cfg.hidden_size}; dotted: float64 resolution)",
    ).name  # fmt: skip
    out["mean"] = isoplots.against_time(
        times, {name: [r["stats"][T]["mean_sq"] for T in cfg.times] for name, r in a.items()},
        run_dir / "mean_sq_vs_T.png", predicted={name: r["pred_mean"] for name, r in a.items()},
        ylabel="mean sigma^2 of da_T/da_0", title="the mean squared singular value against chi^T (dashed)", hline=1.0,
    ).name  # fmt: skip
    out["spread"] = isoplots.against_time(
        times, {name: [r["stats"][T]["nvar"] for T in cfg.times] for name, r in a.items()},
        run_dir / "spread_vs_T.png", predicted={name: r["pred_nvar"] for name, r in a.items()},
        ylabel="Var(sigma^2) / mean(sigma^2)^2",
        title="spread of the squared singular values (dashed: free probability)",
    ).name  # fmt: skip
    out["log_spread"] = isoplots.against_time(
        times, {name: [r["stats"][T]["std_log"] for T in cfg.times] for name, r in a.items()},
        run_dir / "log_spread_vs_T.png", ylabel="std of log sigma (a lower bound once values reach the float floor)",
        title="spread of log sigma against T",
    ).name  # fmt: skip
    gains = np.asarray(cfg.gains)
    n = cfg.hidden_size
    out["dimension"] = rj.plots.lines(
        gains, {"Kaplan-Yorke D / n": [b[g]["ky"] / n for g in cfg.gains], "participation ratio / n":
                [b[g]["pr"] / n for g in cfg.gains]},
        run_dir / "dimension_vs_gain.png", xlabel="gain g", ylabel="dimension / n",
        title=f"autonomous tanh RNN, n = {n}: the dimension of its activity",
    ).name  # fmt: skip
    return out


def write_report(cfg: Config, run_dir: Any, tables: dict[str, str], figures: dict[str, str],
                 rows: list[rj.experiment.Classic], seconds: float) -> None:  # fmt: skip
    biased = (
        ""
        if cfg.biased_q_star is None
        else (f"; the one marked bias puts it in ``b`` instead, the same at every step (q* = {cfg.biased_q_star:g})")
    )
    body = f"""## (a) Singular values of da_T/da_0 at initialisation

A tanh RNN of n = {cfg.hidden_size} units, ``a_t = tanh(W a_(t-1) + U x_t + b)``, with ``U_ij ~ N(0, sigma_u^2 /
{cfg.input_size})``, ``b_i ~ N(0, sigma_b^2)``, inputs ``x_t ~ N(0, I)``. The critical initialisations sit on
``chi = 1`` at q* = {", ".join(f"{q:g}" for q in cfg.q_stars)} (``rnnjax.analysis.isometry.critical_point``), the
slack of the line carried by the inputs (fresh at every step, like the bias of a feed-forward layer){biased}.
Each of {cfg.batch} sequences starts from ``a_0 = tanh(sqrt(q*) z)`` run for {cfg.burn_in} steps; the spectra of
the {cfg.batch} products are pooled. q (measured) is the mean square of the pre-activations over the window, to set
beside the mean field's q*.

{tables["inits"]}

Mean field beside ours: ``chi^T`` for the mean of ``sigma^2``, ``T (mu_2/mu_1^2 - 1 - s_1)`` (``s_1 = -1``
Gaussian, 0 orthogonal) for its normalised variance. "std log sigma" is marked ``>=`` and sigma_min "(floor)"
where some singular values fell below ``n eps sigma_max`` (float64 rounding): the true spread is larger there.

{tables["spectra"]}

![singular values]({figures["histograms"]})

![mean]({figures["mean"]}) ![spread]({figures["spread"]})

![log spread]({figures["log_spread"]})

How to read it: an orthogonal W keeps the spread of the spectrum at the free-probability value ``T (mu_2/mu_1^2 -
1)``, small when q* is small (the spread of ``tanh'`` at q*), and its mean at ``chi^T``: at 1 on the critical
line, decaying off it (``sigma_w = 1`` with q* > 0 has ``chi < 1``). A Gaussian W broadens the spectrum at every
step whatever its ``sigma_w`` (the Marchenko-Pastur spread of ``WW^T`` compounds). Its eigenvalues also reach
beyond the circle of radius ``sigma_w`` at this n (the spectral radius in the first table): near ``sigma_w = 1``
those modes grow until tanh saturates them, the state leaves the mean-field q* (q measured) and the mean of
``sigma^2`` falls below ``chi^T``. The RNN reuses one W (and one b) at every step; the theory treats each step's
as fresh: a static bias gives the state a static part the mean field does not describe (the row marked bias).

## (b) Dimension of the chaotic attractor of the autonomous tanh RNN

``a_t = tanh(W a_(t-1))``, ``W ~ N(0, g^2 / n)`` (the same W, scaled), n = {cfg.hidden_size}, {cfg.dimension_batch}
trajectories of {cfg.lyapunov_steps} steps from random states, {cfg.lyapunov_warmup} steps of warm-up; the
{min(cfg.exponents, cfg.hidden_size)} largest Lyapunov exponents by the QR method. The Kaplan-Yorke dimension ``D = k +
sum_(i<=k) l_i / |l_(k+1)|`` and the participation ratio ``tr(C)^2 / tr(C^2)`` of the states' covariance
(``rnnjax.analysis.dimension``); ``log(chi)/2`` is the mean-field largest exponent.

{tables["dimension"]}

![dimension]({figures["dimension"]})
"""
    rj.experiment.write_report(run_dir, "Dynamical isometry at initialisation and the dimension of chaos", body,
                               seconds=seconds, classics=rows)  # fmt: skip


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
