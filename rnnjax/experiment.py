"""What every experiment script shares: a CLI from its config dataclass, the run folder and its report.

A script is ``main(cfg)`` over a frozen dataclass whose fields each carry a docstring::

    @dataclasses.dataclass(frozen=True)
    class Config:
        length: int = 100
        \"\"\"Steps per sequence.\"\"\"

    if __name__ == "__main__":
        main(rj.experiment.parse_config(Config))     # --length 200 --no-tiny ...

and writes ``runs/<name>/``: ``config.json`` (the config and the environment), ``metrics.jsonl``,
figures, and ``report.md`` (results, environment, git commit, the command).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import os
import platform
import subprocess
import sys
import textwrap
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

ROOT = Path(__file__).resolve().parents[1]


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass, read from its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for stmt, nxt in zip(body, body[1:], strict=False):
        if isinstance(stmt, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[stmt.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true, false or none, got {text!r}")
    return text.lower() == "true"


def _parser_for(hint: Any) -> tuple[Any, dict[str, Any]]:
    """``(type, extra argparse kwargs)`` for a field's type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:  # X | None
        inner = next(a for a in args if a is not type(None))
        if inner is bool:
            inner = _boolean
        return (lambda s: None if s.lower() == "none" else inner(s)), {}
    if origin is tuple:
        item = args[0]
        if typing.get_origin(item) is tuple:  # tuple of tuples: "16,500,32,64 32,100,128,256"
            sub = typing.get_args(item)[0]
            return (lambda s: tuple(sub(v) for v in s.split(","))), {"nargs": "+"}
        return item, {"nargs": "+"}
    return hint, {}


def parse_config(cls: type, argv: Sequence[str] | None = None) -> Any:
    """A config of type ``cls`` from the command line: one ``--flag`` per field, help from its docstring."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(description=(cls.__doc__ or "").strip().split("\n")[0])
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        help_ = f"{docs.get(field.name, '')} (default: {field.default})".replace("%", "%%")
        hint = hints[field.name]
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default, help=help_)
            continue
        kind, extra = _parser_for(hint)
        parser.add_argument(flag, type=kind, default=field.default, help=help_, **extra)
    values = vars(parser.parse_args(argv))
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def git_commit() -> str:
    """The commit of the working tree, with ``+dirty`` when it has changes; ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
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
    """Where run folders go: ``$RNNJAX_RUNS`` if set, else ``runs/`` at the top of the project."""
    return Path(os.environ.get("RNNJAX_RUNS", ROOT / "runs"))


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


def write_report(run_dir: Path, title: str, body: str) -> Path:
    """``report.md``: the title, the body (results), then the environment and the command."""
    env = environment()
    lines = [f"# {title}", "", body.strip(), "", "## Environment", ""]
    lines += [f"- {k}: `{v}`" for k, v in env.items()]
    path = Path(run_dir) / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
