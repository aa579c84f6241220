"""The benchmarks run in their tiny configuration (seconds); the full runs are for people."""

from __future__ import annotations

import pytest

import rnnjax as rj


def test_rnn_speed_tiny_prints_a_table_with_ratios_for_each_cell(tmp_path, capsys, load_script):
    pytest.importorskip("torch")
    rnn_speed = load_script("benchmarks", "rnn_speed")
    cfg = rj.experiment.parse_config(rnn_speed.Config, ["--tiny", "--out-dir", str(tmp_path)])

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
