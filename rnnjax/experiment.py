"""What every experiment script shares: a CLI from its config dataclass, the run folder and its report.

A script is ``main(cfg)`` over a frozen dataclass whose fields each carry a docstring::

    @dataclasses.dataclass(frozen=True)
    class Config:
        length: int = 100
        \"\"\"Steps per sequence.\"\"\"

    if __name__ == "__main__":
        rj.experiment.cli(main, Config)     # --length 200 --tiny ... (tyro; --help lists them)

and writes ``runs/<name>/`` under the current directory (or ``$RNNJAX_RUNS``, or an explicit root):
``config.json`` (the config and the environment), ``metrics.jsonl``, figures, and ``report.md`` (results,
the wall time, the environment, the git commit, the command, the config). A loop over named things (cells)
draws each one's key from its name with :func:`key_for`, so a result does not depend on its neighbours.

The reports are also read back here: :func:`tables_in`, :func:`report_facts` and the marker blocks of
:func:`replace_block` let ``docs/reproduce.py`` copy a report's tables into the README verbatim.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
import tyro

__all__ = [
    "Classic",
    "Headline",
    "Trained",
    "block",
    "classics_in",
    "cli",
    "environment",
    "git_commit",
    "headlines_in",
    "key_for",
    "markdown_table",
    "merge_metrics",
    "parse_config",
    "replace_block",
    "report_facts",
    "runs_root",
    "start_run",
    "table_cells",
    "tables_in",
    "train_model",
    "write_report",
]


def parse_config(cls: type, argv: Sequence[str] | None = None) -> Any:
    """A config of type ``cls`` from the command line, built by `tyro <https://brentyi.github.io/tyro/>`_.

    One ``--flag`` per field (``--train-steps 800``, ``--cells rnn gru``, ``--tiny``/``--no-tiny``,
    ``--tbptt None``), with the docstring under each field as its help; nested dataclass fields become
    ``--model.hidden-size``-style groups.

    Args:
        cls: a frozen dataclass with defaults for every field.
        argv: the arguments (default: ``sys.argv[1:]``).
    """
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"cls: expected a dataclass config, got {cls!r}")
    return tyro.cli(cls, args=argv)


def cli(main: Callable[[Any], Any], cls: type, argv: Sequence[str] | None = None) -> Any:
    """What a script runs under ``if __name__ == "__main__"``: ``main(parse_config(cls, argv))``.

    A data set whose package is missing ends the run with one line that says what to install (and exit
    status 1), not a traceback.
    """
    from rnnjax.data.packages import MissingDataPackage

    cfg = parse_config(cls, argv)
    try:
        return main(cfg)
    except MissingDataPackage as e:
        raise SystemExit(f"error: {e}") from None


def git_commit(path: str | Path | None = None) -> str:
    """The commit of the repository around ``path`` (default: the current directory), with ``+dirty`` when
    its working tree has changes; ``unknown`` outside git or without git."""
    cwd = Path.cwd() if path is None else Path(path)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    """The CPU's model name, as far as the system tells."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """Versions, the device and the commit: what a reader needs to trust or repeat a figure."""
    import flax
    import optax

    device = jax.devices()[0]
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "device": f"{device.platform}: {getattr(device, 'device_kind', str(device))}",
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "git_commit": git_commit(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def runs_root() -> Path:
    """Where run folders go: ``$RNNJAX_RUNS`` if set, else ``runs/`` under the current directory (never
    inside the installed package)."""
    return Path(os.environ.get("RNNJAX_RUNS") or Path.cwd() / "runs")


def key_for(key: jax.Array, name: str) -> jax.Array:
    """``key`` folded with a stable hash of ``name`` (CRC-32, the same in every process, unlike ``hash``):
    the key of one named member of a loop, whatever else runs beside it."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()))


def start_run(name: str, cfg: Any, root: str | Path | None = None) -> Path:
    """Creates ``root/name/`` (root: :func:`runs_root`) and writes ``config.json``: the config and
    the environment."""
    run_dir = Path(root or runs_root()) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": dataclasses.asdict(cfg), "environment": environment()}
    (run_dir / "config.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return run_dir


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats get 4 significant digits."""

    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Headline:
    """One line of an experiment's verdict: its best model against its best baseline on one task.

    ``docs/reproduce.py`` gathers the headlines of every report into the README's results table.
    """

    task: str
    """What was measured on (``"Shakespeare, held-out plays"``)."""
    metric: str
    """The score's name with its direction (``"bits/char (lower is better)"``)."""
    model: str
    """The best of the models."""
    score: float
    baseline: str
    """The best of the baselines."""
    baseline_score: float
    lower_is_better: bool = True
    note: str = ""
    """What the reader should know about the line, e.g. why the model does not beat the baseline."""

    @classmethod
    def best(cls, task: str, metric: str, models: dict[str, float], baselines: dict[str, float],
             lower_is_better: bool = True, note: str = "") -> Headline:  # fmt: skip
        """The headline of ``{name: score}`` dicts: the best of each."""
        if not models or not baselines:
            raise ValueError(f"models, baselines: expected at least one score each, got {models} and {baselines}")
        pick = min if lower_is_better else max
        model, baseline = pick(models, key=models.get), pick(baselines, key=baselines.get)
        return cls(task, metric, model, float(models[model]), baseline, float(baselines[baseline]), lower_is_better,
                   note)  # fmt: skip

    @property
    def beats_baseline(self) -> bool:
        return self.score < self.baseline_score if self.lower_is_better else self.score > self.baseline_score


HEADLINE_COLUMNS = ("task", "metric", "best model", "score", "best baseline", "baseline score", "beats baseline",
                    "note")  # fmt: skip


def _headline_table(headlines: Sequence[Headline]) -> str:
    rows = [[h.task, h.metric, h.model, h.score, h.baseline, h.baseline_score, "yes" if h.beats_baseline else "no",
             h.note.replace("|", "/").replace("\n", " ")] for h in headlines]  # fmt: skip
    return markdown_table(HEADLINE_COLUMNS, rows)


def headlines_in(report: str) -> list[dict[str, str]]:
    """The rows of a ``report.md``'s ``## Headline`` table (``{column: cell}``; see :class:`Headline`)."""
    tables = tables_in(_section(report, "Headline"))
    if not tables:
        return []
    header, _, *rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in tables[0].splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]


@dataclasses.dataclass(frozen=True)
class Classic:
    """One classic result reproduced: what the source reports beside what this run measured.

    ``docs/reproduce.py`` gathers the classics of every report into the README's classic-results table,
    with the command and the run's wall time.
    """

    result: str
    """What the source showed, in a few words (``"copy task T = 100: LSTM stays at the memoryless baseline"``)."""
    source: str
    """Who, where (``"Arjovsky, Shah & Bengio 2016, fig. 1"``)."""
    published: str
    """The source's figure or number (``"cross-entropy 0.17 = baseline after 2,000 steps"``)."""
    ours: str
    """This run's figure, computed from the run (``"0.1695 (baseline 0.1733)"``)."""
    agrees: str
    """``"yes"``, ``"partly"`` or ``"no"``: whether ours shows what the source showed."""
    note: str = ""
    """Why ours differs where it does (budget, data, model size), or what to read into the agreement."""

    def __post_init__(self) -> None:
        if self.agrees not in ("yes", "partly", "no"):
            raise ValueError(f"agrees: expected 'yes', 'partly' or 'no', got {self.agrees!r}")


CLASSIC_COLUMNS = ("result", "source", "published", "ours", "agrees", "note")


def _classic_table(classics: Sequence[Classic]) -> str:
    rows = [[str(getattr(c, name)).replace("|", "/").replace("\n", " ") for name in CLASSIC_COLUMNS] for c in classics]
    return markdown_table(CLASSIC_COLUMNS, rows)


def classics_in(report: str) -> list[dict[str, str]]:
    """The rows of a ``report.md``'s ``## Classic results`` table (``{column: cell}``; see :class:`Classic`)."""
    tables = tables_in(_section(report, "Classic results"))
    if not tables:
        return []
    header, _, *rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in tables[0].splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def write_report(
    run_dir: str | Path,
    title: str,
    body: str,
    *,
    seconds: float,
    env: dict[str, Any] | None = None,
    headlines: Sequence[Headline] = (),
    classics: Sequence[Classic] = (),
) -> Path:
    """``report.md``: the title, the ``## Headline`` table (when there are ``headlines``), the ``## Classic
    results`` table (when there are ``classics``), the body (results), then the environment with the run's
    wall time (``seconds``), and the config from ``config.json`` (:func:`start_run`) when there is one.

    ``env`` replaces :func:`environment` (a benchmark adds its own entries)."""
    run_dir = Path(run_dir)
    env = {**(environment() if env is None else env), "wall_time_s": f"{seconds:.1f}"}
    lines = [f"# {title}", ""]
    if headlines:
        lines += ["## Headline", "", _headline_table(headlines), ""]
    if classics:
        lines += ["## Classic results", "", _classic_table(classics), ""]
    if headlines or classics:
        lines += ["## Results", ""]
    lines += [body.strip(), "", "## Environment", ""]
    lines += [f"- {k}: `{v}`" for k, v in env.items()]
    config = run_dir / "config.json"
    if config.exists():
        fields = json.loads(config.read_text())["config"].items()
        text = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in fields)  # one line per field
        lines += ["", "## Config", "", "```json", "{", text, "}", "```"]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {run_dir} ({seconds:.0f} s)", file=sys.stderr)
    return path


class Trained(NamedTuple):
    """One model's training, as :func:`train_model` returns it."""

    name: str
    params: Any
    history: list[dict[str, Any]]
    seconds: float

    def curve(self, metric: str = "loss") -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one logged metric (``"loss"``, ``"eval/accuracy"``, ...)."""
        from rnnjax.train import history_array

        return history_array(self.history, metric)

    def last(self, metric: str) -> float:
        """The last logged value of ``metric``."""
        return float(self.curve(metric)[1][-1])


def train_model(
    name: str,
    params: Any,
    loss_fn: Callable,
    tx: optax.GradientTransformation,
    data: Callable[[int], Any],
    steps: int,
    *,
    key: jax.Array,
    run_dir: str | Path,
    eval_fn: Callable[[Any], dict[str, Any]] | None = None,
    eval_every: int = 0,
    progress: bool = True,
    config: Any = None,
    model: Any = None,
    probe: dict[str, Any] | None = None,
    monitor: Callable[[Any], dict[str, Any]] | None = None,
    monitor_every: int = 0,
) -> Trained:
    """Trains one named model of an experiment with :func:`rnnjax.train.fit`, logging to ``run_dir/name/``.

    Args:
        name: the model's name (its log folder, its progress bar).
        params: its initial parameters.
        loss_fn: ``loss_fn(params, batch, key) -> (loss, metrics)`` (see :func:`rnnjax.train.make_train_step`).
        tx: the Optax optimiser.
        data: ``data(step) -> batch``.
        steps: training steps.
        key: the model's key (e.g. :func:`key_for` of its name); step ``s`` uses ``fold_in(key, s)``.
        run_dir: the experiment's run folder.
        eval_fn, eval_every: as in :func:`rnnjax.train.fit`.
        progress: show a progress bar.
        config: the experiment's config (a dataclass), logged with the run.
        model, probe: the model and a few of its inputs, saved for ``python -m rnnjax.analyse`` (see
            :func:`rnnjax.train.fit`).
        monitor, monitor_every: metrics of the params every N steps, as in :func:`rnnjax.train.fit` (e.g.
            :func:`rnnjax.analysis.lyapunov_monitor`).

    Returns:
        the trained parameters, the history and the wall time of the training.
    """
    from rnnjax import train

    start = time.perf_counter()
    state, history = train.fit(
        train.TrainState.create(params, tx), train.make_train_step(loss_fn, tx), data, steps, key=key,
        run_dir=Path(run_dir) / name, eval_fn=eval_fn, eval_every=eval_every, progress=progress, description=name,
        config=dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config, overwrite=True,
        model=model, probe=probe, monitor=monitor, monitor_every=monitor_every,
    )  # fmt: skip
    return Trained(name, state.params, history, time.perf_counter() - start)


def merge_metrics(run_dir: str | Path, names: Sequence[str], key: str = "model") -> Path:
    """Writes ``run_dir/metrics.jsonl``: the ``metrics.jsonl`` of every ``run_dir/<name>/`` (as
    :func:`train_model` writes them), each record with ``{key: name}`` first."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    with path.open("w") as f:
        for name in names:
            for line in (run_dir / name / "metrics.jsonl").read_text().splitlines():
                f.write(json.dumps({key: name, **json.loads(line)}) + "\n")
    return path


def tables_in(markdown: str) -> list[str]:
    """The markdown tables of a text, in order: each a run of lines that start with ``|``."""
    tables, current = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current))
            current = []
    return tables


def table_cells(table: str) -> dict[str, dict[str, str]]:
    """A markdown table as ``{first column: {header: cell}}`` (the first column names the rows)."""
    header, _, *rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def report_facts(report: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The environment (``{key: value}``, the wall time included) and the config of a ``report.md``."""
    env = dict(re.findall(r"^- ([\w.]+): `(.*)`$", _section(report, "Environment"), flags=re.M))
    config = re.search(r"```json\n(.*?)\n```", _section(report, "Config"), flags=re.S)
    return env, json.loads(config.group(1)) if config else {}


def _section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next heading of that level (empty if there is none)."""
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    return found.group(1) if found else ""


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- results:{name}:begin -->", f"<!-- results:{name}:end -->"


def block(text: str, name: str) -> str:
    """What stands between ``<!-- results:name:begin -->`` and ``<!-- results:name:end -->`` in ``text``."""
    begin, end = _markers(name)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"text: expected one {begin} and one {end}, got {text.count(begin)} and {text.count(end)}")
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with the block ``name`` (see :func:`block`) replaced by ``content``."""
    block(text, name)  # one of each marker, or a ValueError
    begin, end = _markers(name)
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{content.strip()}\n{end}{rest.split(end, 1)[1]}"
