"""Regenerates every table and figure of the README: one command.

It runs the default experiments (``experiments/gradient_flow.py``, ``experiments/adding_problem.py``), the
benchmarks (``benchmarks/rnn_speed.py``, ``benchmarks/cell_speed.py``, ``benchmarks/jacobian_speed.py``), the
applications and the classic results (long-range benchmarks and dynamics studies), each ``main(Config())`` with its
defaults, into ``runs/<name>/``; copies each ``report.md`` to
``docs/results/<name>.md`` (image links pointed at the copies) and its figures to ``docs/figures/<name>/``; then
rewrites the README's result blocks, between ``<!-- results:<name>:begin -->`` and ``<!-- results:<name>:end -->``,
from those committed reports: the tables verbatim, the wall time and every number in the prose read from them.

Run from the top of the repository::

    python docs/reproduce.py                                   # everything (minutes)
    python docs/reproduce.py --only gradient_flow adding_problem
    python docs/reproduce.py --from-reports                    # rerun nothing: README from docs/results/
    python docs/reproduce.py --tiny --root /tmp/r --results-dir /tmp/r/results --figures-dir /tmp/r/figures \\
        --readme /tmp/r/README.md                              # the test: tiny configs, nothing in the repo
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import rnnjax as rj

REPO = Path(__file__).resolve().parents[1]
APPLICATIONS = {
    "char_lm": "Character language model (Shakespeare)",
    "sentiment": "Sentiment (Rotten Tomatoes)",
    "time_series": "Time-series forecasting",
    "sequential_images": "Sequential images (digits, MNIST-5k)",
    "captioning": "One-to-many captioning (digits)",
    "translation": "Encoder-decoder translation (number words)",
    "music": "Music (Bach chorales)",
    "speech_digits": "Speech (spoken digits)",
}
"""The applications on real data, by script name, with their title in the README's results table; together
they make one README block, ``applications``, written from the headlines of their reports."""
CLASSICS = {
    "copy_task": ("Copy task", "sweep.png"),
    "temporal_order": ("Temporal order", "success.png"),
    "adding_problem": ("Adding problem", "sweep.png"),
    "pixel_digits": ("Pixel-by-pixel digits", "accuracy.png"),
    "flip_flop": ("3-bit flip-flop", "fixed_points_lstm.png"),
    "flossing": ("Gradient flossing", "lyapunov_and_loss.png"),
    "isometry": ("Dynamical isometry", "singular_values.png"),
}
"""The long-range benchmarks and the dynamics studies, by script name, with their title and the figure the README
shows; together they make one README block, ``classics``, written from the Classic results of their reports."""
SCRIPTS = {
    "gradient_flow": "experiments",
    "adding_problem": "experiments",
    "rnn_speed": "benchmarks",
    "jacobian_speed": "benchmarks",
    "cell_speed": "benchmarks",
    **dict.fromkeys(APPLICATIONS, "experiments"),
    **dict.fromkeys(CLASSICS, "experiments"),
}
"""Each run of the README, by name, and the folder of its script (``<folder>/<name>.py``)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Rerun the README's experiments and benchmarks, keep their reports and figures, rewrite the README."""

    only: tuple[str, ...] = tuple(SCRIPTS)
    """The runs to redo and the README blocks to rewrite: gradient_flow, adding_problem, rnn_speed,
    jacobian_speed, cell_speed, the applications (char_lm, sentiment, time_series, sequential_images, captioning,
    translation, music, speech_digits; any of them rewrites the one applications block) and the classic results
    (copy_task, temporal_order, adding_problem, pixel_digits, flip_flop, flossing, isometry; any of them rewrites
    the one classics block)."""
    from_reports: bool = False
    """Run nothing: rewrite the README's blocks from the reports already in results_dir."""
    tiny: bool = False
    """Run every script with --tiny (seconds; for the tests, with the folders below in a tmp dir)."""
    root: str | None = None
    """Where the runs go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    results_dir: str = str(REPO / "docs" / "results")
    """Where the reports are kept: <results_dir>/<name>.md."""
    figures_dir: str = str(REPO / "docs" / "figures")
    """Where the figures are kept: <figures_dir>/<name>/*.png."""
    readme: str = str(REPO / "README.md")
    """The README whose blocks are rewritten."""


def load_script(name: str) -> ModuleType:
    """``<folder>/<name>.py`` of this repository as a module."""
    spec = importlib.util.spec_from_file_location(f"{SCRIPTS[name]}.{name}", REPO / SCRIPTS[name] / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def run(name: str, cfg: Config) -> Path:
    """Runs one script with its defaults (or --tiny) and returns its run folder."""
    module = load_script(name)
    module.main(module.Config(tiny=cfg.tiny, root=cfg.root))
    return Path(cfg.root or rj.experiment.runs_root()) / name


KEPT = ("png", "mid")
"""The kinds of file a report links to that are kept beside its figures (figures, generated MIDI)."""


def keep(name: str, run_dir: Path, cfg: Config) -> None:
    """Copies the run's report to ``<results_dir>/<name>.md`` and its figures (and MIDI files) to
    ``<figures_dir>/<name>/``."""
    figures = Path(cfg.figures_dir) / name
    results = Path(cfg.results_dir)
    kept = sorted(p for kind in KEPT for p in run_dir.glob(f"*.{kind}"))
    if kept or figures.exists():
        figures.mkdir(parents=True, exist_ok=True)
        for old in (p for kind in KEPT for p in figures.glob(f"*.{kind}")):  # what the run no longer draws goes
            old.unlink()
        for path in kept:
            shutil.copyfile(path, figures / path.name)
    results.mkdir(parents=True, exist_ok=True)
    link = Path(os.path.relpath(figures, results)).as_posix()
    kinds = "|".join(KEPT)
    report = re.sub(rf"\]\(([\w.-]+\.(?:{kinds}))\)", rf"]({link}/\1)", (run_dir / "report.md").read_text())
    (results / f"{name}.md").write_text(report)


def rewrite_readme(names: tuple[str, ...], cfg: Config) -> None:
    """Rewrites the README's block of each name from ``<results_dir>/<name>.md``."""
    readme = Path(cfg.readme)
    text = readme.read_text()
    blocks = [n for n in names if n in RENDERERS]
    blocks += ["applications"] * any(n in APPLICATIONS for n in names) + ["classics"] * any(
        n in CLASSICS for n in names
    )
    for name in blocks:
        text = rj.experiment.replace_block(text, name, render(name, cfg))
    readme.write_text(text)
    print(f"rewrote {', '.join(blocks)} in {readme}", file=sys.stderr)


def render(name: str, cfg: Config) -> str:
    """The README block of one run (or of all the applications), from the kept reports."""
    readme_dir = Path(cfg.readme).parent
    if name == "applications":
        return _wrap(render_applications(cfg, readme_dir))
    if name == "classics":
        return _wrap(render_classics(cfg, readme_dir))
    report = Path(cfg.results_dir) / f"{name}.md"
    links = Links(
        report=Path(os.path.relpath(report, readme_dir)).as_posix(),
        figures=Path(os.path.relpath(Path(cfg.figures_dir) / name, readme_dir)).as_posix(),
    )
    return _wrap(RENDERERS[name](report.read_text(), links))


@dataclasses.dataclass(frozen=True)
class Links:
    """Paths relative to the README: the kept report and the folder of the kept figures."""

    report: str
    figures: str


def _ran(env: dict[str, str], links: Links, command: str) -> str:
    """``python <command>``, took N s on C CPU cores (model), and its report: the run, from its report."""
    device = "" if env["device"].startswith("cpu") else f", on {env['device']}"
    return (
        f"`python {command}`, took {float(env['wall_time_s']):.0f} s on {env['cpu_count']} CPU cores "
        f"({env['cpu']}){device}; its report is [{links.report}]({links.report})"
    )


def _unbroken(text: str) -> str:
    """Spaces inside `code` made unbreakable (NUL) for the wrapping, which turns them back."""
    return re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)


def _wrap(markdown: str, width: int = 110) -> str:
    """Paragraphs and list items wrapped at ``width``; tables, images and markers left as they are."""
    out = []
    for par in markdown.split("\n"):
        if par.startswith(("|", "!", "<!--")) or len(par) <= width:
            out.append(par)
            continue
        bullet = par.startswith("- ")
        out.append(textwrap.fill(_unbroken(par), width, subsequent_indent="  " if bullet else "",
                                 break_long_words=False, break_on_hyphens=False).replace("\0", " "))  # fmt: skip
    return "\n".join(out)


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


CELL_NAMES = {"rnn": "the tanh RNN", "irnn": "the IRNN", "lstm": "the LSTM", "lstm_fb0": "the LSTM with forget bias 0",
              "lstm_fb1": "the LSTM with forget bias 1", "gru": "the GRU", "mingru": "the minGRU",
              "lru": "the LRU", "indrnn": "the IndRNN"}  # fmt: skip


def _value(cell: str) -> float:
    """The number of a table cell: ``1.8 (bound 1.96)`` -> 1.8, ``overflow`` -> inf."""
    head = cell.split()[0]
    return math.inf if head == "overflow" else float(head)


def _bound(cell: str) -> float:
    return float(re.search(r"bound ([^)]+)\)", cell).group(1))


def _crossing(gains: list[str], row: dict[str, str]) -> str:
    """Where the largest exponent of one row of the gain table (``exponent / rate`` cells) reaches 0."""
    values = [_value(row[f"g = {g}"]) for g in gains]
    up = next((i for i, v in enumerate(values) if v >= 0), None)
    if up is None:
        return f"not up to gain {gains[-1]}"
    if values[up] == 0:
        return f"at gain {gains[up]}"
    return f"below gain {gains[0]}" if up == 0 else f"between gains {gains[up - 1]} and {gains[up]}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def render_gradient_flow(report: str, links: Links) -> str:
    env, c = rj.experiment.report_facts(report)
    init, gains, trained = rj.experiment.tables_in(report)[:3]
    at_init, by_gain, after = (rj.experiment.table_cells(t) for t in (init, gains, trained))
    unit = 1.0 if 1.0 in c["gains"] else c["gains"][len(c["gains"]) // 2]
    far = max(lag for lag in c["lags"] if lag <= c["length"])
    t_far = max(lag for lag in c["lags"] if lag <= c["train_length"])
    kept = _join([f"{CELL_NAMES[n]} {at_init[n][f'lag {far}'].split()[0]}" for n in c["cells"]
                  if at_init[n][f"lag {far}"] != "n/a"])  # fmt: skip
    lines = [f"Its default run, {_ran(env, links, 'experiments/gradient_flow.py')}, and the figures below are "
             f"copies in `{links.figures}/`.", "",
             f"At initialisation (gain {unit:g}, W ~ N(0, {unit**2:g}/h) per gate, T = {c['length']}): "
             f"`||da_T/da_(T-lag)||` (largest singular value, median of {c['batch']} sequences), with Pascanu's "
             "bound `sigma_max(W)^lag` beside the single-matrix cells:", "", init, "",
             f"![norms at initialisation]({links.figures}/norms_at_init.png)", "",
             "The largest Lyapunov exponent / the fitted rate, per step, against the gain:", "", gains, "",
             f"![Lyapunov exponent against the gain]({links.figures}/lyapunov_vs_gain.png)", "",
             f"After {c['train_steps']} steps of Adam on the adding problem (T = {c['train_length']}; always "
             "predicting 1 scores an MSE of 0.167):", "", trained, ""]  # fmt: skip
    for figure, alt in (("norms_trained", "norms after training"), ("gradient_reach", "how far back the gradient "
                        "reaches"), ("lstm_gates", "the trained LSTM's gates"), ("cliff", "the cliff")):  # fmt: skip
        lines.append(f"![{alt}]({links.figures}/{figure}.png)")
    lines += ["", "How to read them:", "",
              "- **Norm against lag.** On a log scale a straight line is exponential decay (vanishing) or growth "
              "(exploding), and its slope is the \"fitted rate\" per step: `exp(rate * 50)` is what survives 50 "
              f"steps. At gain {unit:g} the part of the gradient that survives {far} steps is: {kept}."]  # fmt: skip
    if "rnn" in at_init:
        rnn = at_init["rnn"]
        norm, bound = _value(rnn[f"lag {far}"]), _bound(rnn[f"lag {far}"])
        holds = all(_value(v) <= _bound(v) * (1 + 1e-3) for k, v in rnn.items() if k.startswith("lag"))
        lines[-1] += (
            f" For the tanh RNN the dashed bound `sigma_max(W)^lag` {'holds' if holds else 'fails'} but is loose "
            f"by {math.log10(bound / norm):.0f} orders of magnitude at lag {far}: here `sigma_max(W)` is "
            f"{_bound(rnn['lag 1']):.3g}" + (", and the saturating tanh, not `W`, does the vanishing." if norm < 1
                                            else ".")
        )  # fmt: skip
    gain_heads = [f"{g}" for g in c["gains"]]
    diffs = [abs(_value(v) - float(v.split(" / ")[1])) for row in by_gain.values() for k, v in row.items()
             if k.startswith("g = ") and " / " in v and not v.startswith("overflow")]  # fmt: skip
    crossings = [f"{_crossing(gain_heads, by_gain[n])} for {CELL_NAMES[n]}" for n in ("rnn", "irnn") if n in by_gain]
    lines.append(
        "- **Lyapunov exponents.** The largest exponent is the long-run growth rate of the same products: it lies "
        f"within {max(diffs):.2g} per step of the fitted rate in the table. It crosses 0 where the network turns "
        "from ordered (perturbations and gradients die out) to chaotic (they grow)"
        + (f": {_join(crossings)}." if crossings else ".")
    )
    gated = [n for n in c["cells"] if n.startswith(("lstm", "gru"))]
    plain = [n for n in c["cells"] if n in ("rnn", "irnn")]

    def mse(n: str) -> str:
        side = "below" if float(after[n]["adding MSE"]) < 1 / 6 else "above"
        return f"{after[n]['adding MSE']} ({side} the baseline)"

    text = f"- **After training** ({c['train_steps']} steps, T = {c['train_length']})"
    if gated:
        rates = [float(after[n]["fitted rate"]) for n in gated]
        norms = [_value(after[n][f"lag {t_far}"]) for n in gated]
        text += (f" the gated cells' fitted rates lie between {min(rates):.4f} and {max(rates):.4f} per step, their "
                 f"lag-{t_far} norms between {min(norms):.3g} and {max(norms):.3g}, and they score an MSE of "
                 + _join([f"{after[n]['adding MSE']} ({n})" for n in gated]) + ".")  # fmt: skip
    if plain:
        text += (f" {_upper(_join([CELL_NAMES[n] for n in plain]))}, trained on the same batches, decay at "
                 f"{_join([after[n]['fitted rate'] for n in plain])} per step (a gradient from step {t_far} arrives "
                 f"shrunk to {_join([after[n][f'lag {t_far}'].split()[0] for n in plain])}) and score an MSE of "
                 f"{_join([mse(n) for n in plain])}.")  # fmt: skip
    linear = [n for n in c["cells"] if n in ("mingru", "lru")]
    if linear:
        fit, rates = [f"{after[n]['adding MSE']} ({n})" for n in linear], [after[n]["fitted rate"] for n in linear]
        text += (" The cells linear in their state, trained alike, end with fitted rates of "
                 f"{_join(rates)} per step and an MSE of {_join(fit)}.")  # fmt: skip
    lines.append(text)
    tables = rj.experiment.tables_in(report)
    if linear and len(tables) > 3:  # (d): the measured spectra of the linear cells against their closed form
        header, _, *rows = [[v.strip() for v in line.strip("|").split("|")] for line in tables[3].splitlines()]
        rows = [dict(zip(header, r, strict=True)) for r in rows]
        steps = (c["lyapunov_steps"], 4 * c["lyapunov_steps"])
        within = [max(float(r[f"max abs difference, {t} steps"]) for r in rows) for t in steps]
        sums = max(float(r[f"difference of the sums, {t} steps"]) for r in rows for t in steps)
        lines.append(
            f"- **Diagonal Jacobians.** For {_join([CELL_NAMES[n] for n in linear])}, the Lyapunov spectrum measured "
            f"by the QR method meets each unit's mean of `log |a_t|`, sorted, within {within[0]:.2g} over {steps[0]} "
            f"steps and {within[1]:.2g} over {steps[1]}, at initialisation and after training; the sums of the "
            f"spectra within {sums:.2g}."
        )  # fmt: skip
    return "\n".join(lines)


def render_adding_problem(report: str, links: Links) -> str:
    env, c = rj.experiment.report_facts(report)
    sweep = rj.experiment.tables_in(report.split("## Results", 1)[1])[0]
    rows = rj.experiment.table_cells(sweep)
    how = "full BPTT" if c["tbptt"] is None else f"truncated BPTT, k = {c['tbptt']}"
    optimizer = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSProp"}.get(
        c["optimizer"], c["optimizer"]
    )
    own = "".join(f", {CELL_NAMES.get(n, n)} at {lr:g}" for n, lr in c["learning_rates"])
    per_length = c["steps"] * len(c["lengths"]) if len(c["steps"]) == 1 else c["steps"]  # one for all, or one a T
    steps = _join([f"{n} at T = {t}" for n, t in zip(per_length, c["lengths"], strict=True)])
    lengths = _join([str(t) for t in c["lengths"]])
    cells = _join([CELL_NAMES.get(n, n) for n in c["cells"]])
    lines = [f"Its default run trains {cells} ({c['hidden_size']} units, {optimizer} {c['learning_rate']:g}{own}, "
             f"clipping at {c['clip_norm']:g}, batches of {c['batch_size']}, {how}; training steps {steps}) at "
             f"T = {lengths}. The run, {_ran(env, links, 'experiments/adding_problem.py')}, with a table per T "
             "and the loss curves. A cell beats the baseline at a T when its final MSE is below 1/6 less three "
             "standard errors of the evaluation set's mean.", "",
             sweep, "", f"![final MSE against T]({links.figures}/sweep.png)", ""]  # fmt: skip
    longest = [f"{CELL_NAMES.get(n, n)} {r['longest T below the baseline']}" for n, r in rows.items()]
    lines.append(f"Longest T at which each cell beats the baseline in this run: {_join(longest)}.")
    return "\n".join(lines)


def render_rnn_speed(report: str, links: Links) -> str:
    env, _ = rj.experiment.report_facts(report)
    plain, mixed = rj.experiment.tables_in(report)[:2]
    rounds = re.search(r"Median of ([\d/]+) repeats", report).group(1)
    rates = re.search(r"Matmul rate of this machine in this run \(GFLOP/s[^)]*\): ([^.]*)\.", report).group(1)
    rows, mixed_rows = _table_rows(plain), _table_rows(mixed)

    def spread(column: str, rows: list[dict[str, str]], pass_: str) -> str:
        got = [r for r in rows if r[column] != "n/a" and r["pass"] == pass_]
        if not got:
            return f"{column} ({pass_}): n/a"
        lo, hi = (f(got, key=lambda r: float(r[column])) for f in (min, max))

        def at(r: dict[str, str]) -> str:
            against = f" against {r['flax cell']}" if column == "ours/flax" else ""
            return f"{r['cell']}{against}, batch {r['batch']}, hidden {r['hidden']}"

        return f"{column} in {pass_} from {lo[column]} ({at(lo)}) to {hi[column]} ({at(hi)})"

    lines = [spread(c, rows, p) for p in ("train", "inference") for c in ("ours/flax", "ours/torch")]
    mixed_lines = [spread("ours/torch", mixed_rows, p) for p in ("train", "inference")]
    return "\n".join([
        f"Sequences x steps per second (ratios above 1: rnnjax is faster), the median of {rounds} rounds, with the "
        "quartiles of the per-round ratios beside it. The run, "
        f"{_ran(env, links, 'benchmarks/rnn_speed.py')}, with each side's fastest and slowest call. These are "
        "measurements on a shared machine, and they move between runs: compare the sides within one run. The matmul "
        f"rate measured in the same run (GFLOP/s): {rates}; `% of matmul rate` is against the faster library's.",
        "", "float32:", "", plain, "", f"In this run {_join(lines)}.", "",
        "Mixed precision, float32 params and element-wise work with bfloat16 matmuls accumulating in float32: ours "
        "`matmul_dtype=jnp.bfloat16`, PyTorch `torch.autocast('cpu', dtype=torch.bfloat16)` (Flax has no such "
        "mode). `dy`, `dgrad`: the largest difference from our float32 outputs and gradients, relative to the "
        "largest entry; `/ float32`: the speed-up over the same side's float32 row.",
        "", mixed, "", f"In this run {_join(mixed_lines)}.",
    ])  # fmt: skip


def _table_rows(table: str) -> list[dict[str, str]]:
    """A markdown table's rows as ``{header: cell}``, in order."""
    header, _, *rows = [[v.strip() for v in line.strip("|").split("|")] for line in table.splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def render_jacobian_speed(report: str, links: Links) -> str:
    env, c = rj.experiment.report_facts(report)
    table = rj.experiment.tables_in(report)[0]
    cell = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}.get(c["cell"], c["cell"])
    ran = _ran(env, links, "benchmarks/jacobian_speed.py")
    return "\n".join([
        f"`benchmarks/jacobian_speed.py` computes all `da_T/da_k` for T = {c['length']} and a {c['hidden_size']}-unit "
        f"{cell} three ways (pulling the rows back through each step, from the step Jacobians, and a fresh "
        "`jax.jacrev` through the unrolled steps for every k) against the matmul floor `T * 2 * n^3` flops, and its "
        "whole Lyapunov spectrum two ways against the QR floor, T QRs of n x n matrices alone, each floor at this "
        f"machine's rate measured in the same run. The run, {ran}.",
        "", table,
    ])  # fmt: skip


def render_cell_speed(report: str, links: Links) -> str:
    env, _ = rj.experiment.report_facts(report)
    cells, long = rj.experiment.tables_in(report)[:2]
    shape = re.search(r"## Every cell: (.*)", report).group(1)
    header, _, *body = [[v.strip() for v in line.strip("|").split("|")] for line in long.splitlines()]
    ratios = [float(dict(zip(header, r, strict=True))["scan/associative"]) for r in body]
    return "\n".join([
        f"`benchmarks/cell_speed.py` times every cell in the registry under each implementation it declares "
        f"(forward + backward, {shape}), against its own sequential scan (`scan/this`) and the LSTM's default "
        f"(`lstm auto/this`; above 1: this row is faster), after checking that they agree. The run, "
        f"{_ran(env, links, 'benchmarks/cell_speed.py')}.", "", cells, "",
        "The linear cells' parallel scan against their loop on long sequences (below 1: the parallel form is "
        f"slower; here from {min(ratios):.2g} to {max(ratios):.2g}). On two CPU cores nothing uses its `O(log T)` "
        "depth and it does more work, so `impl='auto'` runs the loop on the CPU; on a GPU it is expected to win "
        "(not measured here):", "", long,
    ])  # fmt: skip


def render_applications(cfg: Config, readme_dir: Path) -> str:
    """One table of every application's headlines (its best model against its best baseline), with the run's
    command, wall time and report, and the notes the runs gave."""
    rows, notes, cpus, seen = [], [], set(), set()
    for name, title in APPLICATIONS.items():
        path = Path(cfg.results_dir) / f"{name}.md"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no kept report of {name}; run python docs/reproduce.py --only {name}")
        report = path.read_text()
        env, _ = rj.experiment.report_facts(report)
        cpus.add(f"{env['cpu_count']} CPU cores ({env['cpu']})")
        link = Path(os.path.relpath(path, readme_dir)).as_posix()
        for i, h in enumerate(rj.experiment.headlines_in(report)):
            first = i == 0
            rows.append([f"[{title}]({link})" if first else "", f"`python experiments/{name}.py`" if first else "",
                         h["task"], h["metric"], f"{h['best model']} {h['score']}",
                         f"{h['best baseline']} {h['baseline score']}", h["beats baseline"],
                         f"{float(env['wall_time_s']):.0f} s" if first else ""])  # fmt: skip
            if h.get("note") and f"{title}: {h['note']}" not in seen:  # one note for the rows it explains
                seen.add(f"{title}: {h['note']}")
                notes.append(f"- {title}, {h['task']}: {h['note']}")
    table = rj.experiment.markdown_table(
        ["experiment", "command", "task", "metric", "ours (best model)", "best baseline", "beats it", "wall time"], rows
    )
    lines = [f"The default runs on {_join(sorted(cpus))}; each row is the run's best model against its best "
             "baseline, both measured on the same split in the same run (the report links to every model and "
             "baseline, the figures and the config).", "", table]  # fmt: skip
    return "\n".join([*lines, "", *notes] if notes else lines)


def render_classics(cfg: Config, readme_dir: Path) -> str:
    """One table of every Classic result of the long-range and dynamics runs (the source's figure beside ours), with
    the run's command and wall time, the notes below it and each run's main figure."""
    rows, notes, figures, cpus, missing = [], [], [], set(), []
    for name, (title, figure) in CLASSICS.items():
        path = Path(cfg.results_dir) / f"{name}.md"
        if not path.exists():  # said below the table: a run not kept yet is named, never left out silently
            missing.append(f"`python experiments/{name}.py`")
            continue
        report = path.read_text()
        env, _ = rj.experiment.report_facts(report)
        cpus.add(f"{env['cpu_count']} CPU cores ({env['cpu']})")
        link = Path(os.path.relpath(path, readme_dir)).as_posix()
        classics = rj.experiment.classics_in(report)
        if not classics:
            raise ValueError(f"{path}: no Classic results table")
        for i, c in enumerate(classics):
            first = i == 0
            rows.append([f"[{title}]({link})" if first else "", c["result"], c["source"], c["published"], c["ours"],
                         c["agrees"], f"`python experiments/{name}.py`" if first else "",
                         f"{float(env['wall_time_s']):.0f} s" if first else ""])  # fmt: skip
            if c.get("note"):
                notes.append(f"- {_upper(c['result'])}: {c['note']}")
        picture = Path(os.path.relpath(Path(cfg.figures_dir) / name / figure, readme_dir)).as_posix()
        figures.append(f"![{title}]({picture})")
    table = rj.experiment.markdown_table(
        ["run", "result", "source", "published", "ours", "agrees", "command", "wall time"], rows
    )
    lines = [f"The default runs on {_join(sorted(cpus))}, each in its own process; `ours` is computed by the run "
             "and `agrees` says whether it shows what the source showed (the notes say where and why it differs).",
             "", table, "", *notes, "", *figures]  # fmt: skip
    if missing:
        lines += ["", f"No kept report yet (not in this table): {_join(missing)}."]
    return "\n".join(lines)


RENDERERS: dict[str, Callable[[str, Links], str]] = {
    "gradient_flow": render_gradient_flow,
    "adding_problem": render_adding_problem,
    "rnn_speed": render_rnn_speed,
    "jacobian_speed": render_jacobian_speed,
    "cell_speed": render_cell_speed,
}


def main(cfg: Config) -> None:
    """Reruns ``cfg.only`` (unless ``from_reports``), keeps their reports and figures, rewrites the README."""
    unknown = [n for n in cfg.only if n not in SCRIPTS]
    if unknown or not cfg.only:
        raise ValueError(f"only: expected some of {tuple(SCRIPTS)}, got {list(cfg.only)}")
    if not cfg.from_reports:
        for name in cfg.only:
            keep(name, run(name, cfg), cfg)
    rewrite_readme(cfg.only, cfg)


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
