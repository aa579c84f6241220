"""What every experiment script shares: a CLI from its config dataclass, the run folder and its report.

A script is ``main(cfg)`` over a frozen dataclass whose fields each carry a docstring::

    @dataclasses.dataclass(frozen=True)
    class Config:
        length: int = 100
        \"\"\"Steps per sequence.\"\"\"

    if __name__ == "__main__":
        main(rj.experiment.parse_config(Config))     # --length 200 --tiny ... (tyro; --help lists them)

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
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import tyro

__all__ = [
    "block",
    "environment",
    "git_commit",
    "key_for",
    "markdown_table",
    "parse_config",
    "replace_block",
    "report_facts",
    "runs_root",
    "start_run",
    "table_cells",
    "tables_in",
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


def write_report(
    run_dir: str | Path, title: str, body: str, *, seconds: float, env: dict[str, Any] | None = None
) -> Path:
    """``report.md``: the title, the body (results), then the environment with the run's wall time
    (``seconds``), and the config from ``config.json`` (:func:`start_run`) when there is one.

    ``env`` replaces :func:`environment` (a benchmark adds its own entries)."""
    run_dir = Path(run_dir)
    env = {**(environment() if env is None else env), "wall_time_s": f"{seconds:.1f}"}
    lines = [f"# {title}", "", body.strip(), "", "## Environment", ""]
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
