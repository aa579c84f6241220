"""The benchmarks run in their tiny configuration (seconds); the full runs are for people."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    """A script under ``benchmarks/`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_rnn_speed_tiny_prints_a_table_with_ratios_for_each_cell(tmp_path, capsys):
    pytest.importorskip("torch")
    rnn_speed = load("rnn_speed")
    cfg = rnn_speed.parse_config(["--tiny", "--out-dir", str(tmp_path)])

    table = rnn_speed.main(cfg)

    assert table in capsys.readouterr().out
    assert table in (tmp_path / "report.md").read_text()
    header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    rows = [dict(zip(header, row, strict=True)) for row in rows]
    assert {(r["cell"], r["flax cell"]) for r in rows} == {
        ("lstm", "OptimizedLSTMCell"), ("lstm", "LSTMCell"), ("gru", "GRUCell"), ("rnn", "SimpleCell"),
    }  # fmt: skip
    for row in rows:
        assert float(row["ours/flax"]) > 0 and float(row["ours/torch"]) > 0
