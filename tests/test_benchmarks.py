"""The benchmarks run in their tiny configuration (seconds); the full runs are for people."""

from __future__ import annotations

import json

import pytest

import rnnjax as rj


def test_rnn_speed_tiny_prints_a_table_with_ratios_for_each_cell(tmp_path, capsys, load_script):
    pytest.importorskip("torch")
    rnn_speed = load_script("benchmarks", "rnn_speed")
    cfg = rj.experiment.parse_config(rnn_speed.Config, ["--tiny", "--root", str(tmp_path)])

    printed = rnn_speed.main(cfg)

    assert printed in capsys.readouterr().out
    report = (tmp_path / "rnn_speed" / "report.md").read_text()
    plain, mixed = rj.experiment.tables_in(printed)
    assert plain in report and mixed in report and "wall_time_s" in report and "torch" in report
    records = [json.loads(line) for line in (tmp_path / "rnn_speed" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 8 + 6 + 1  # float32 rows (the LSTM twice), mixed rows, the matmul rates
    assert set(records[-1]["matmul_gflops"]) == {"jax float32", "jax mixed", "torch float32", "torch mixed"}
    rows = _rows(plain)
    assert {(r["cell"], r["flax cell"], r["pass"]) for r in rows} == {
        (c, f, p) for c, f in [("lstm", "OptimizedLSTMCell"), ("lstm", "LSTMCell"), ("gru", "GRUCell"),
                               ("rnn", "SimpleCell")] for p in ("train", "inference")
    }  # fmt: skip
    for row in rows:
        assert float(row["ours/flax"]) > 0 and float(row["ours/torch"]) > 0
        assert float(row["ours % of matmul rate"]) >= 0
        quartiles = [float(q) for q in row["ours/torch q1-q3"].split("-")]  # one repeat: one ratio
        assert quartiles == sorted(quartiles) and quartiles[0] > 0
    rows = _rows(mixed)
    passes = ("train", "inference")
    assert {(r["cell"], r["pass"]) for r in rows} == {(c, p) for c in ("lstm", "gru", "rnn") for p in passes}
    for row in rows:
        errors = ["ours dy", "torch dy"] + (["ours dgrad", "torch dgrad"] if row["pass"] == "train" else [])
        assert all(float(row[e]) > 0 for e in errors), row  # rounded
        assert all(float(row[e]) < cfg.mixed_rtol for e in errors if e.startswith("ours")), row  # near float32
        assert float(row["ours / ours float32"]) > 0


def _rows(table):
    header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_rnn_speed_refuses_what_it_does_not_measure(load_script, tmp_path):
    rnn_speed = load_script("benchmarks", "rnn_speed")
    for argv, match in [(["--cells", "lstm", "indrnn"], "cells: expected some of"),
                        (["--passes", "backward"], "passes: expected some of"),
                        (["--precisions", "bfloat16"], "precisions: expected some of")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            rnn_speed.main(rj.experiment.parse_config(rnn_speed.Config, [*argv, "--root", str(tmp_path)]))


def test_jacobian_speed_tiny_prints_a_table_against_both_floors(tmp_path, capsys, load_script):
    jacobian_speed = load_script("benchmarks", "jacobian_speed")
    cfg = rj.experiment.parse_config(jacobian_speed.Config, ["--tiny", "--root", str(tmp_path)])

    table = jacobian_speed.main(cfg)

    assert table in capsys.readouterr().out
    report = (tmp_path / "jacobian_speed" / "report.md").read_text()
    assert table in report and "extrapolated" in report
    header, rule, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    assert header == ["computes", "by", "s", "floor", "floor s", "s/floor"]
    assert set(rule) == {"---"} and len(rows) == 5
    rows = [dict(zip(header, row, strict=True)) for row in rows]
    assert [row["floor"] for row in rows] == ["matmul"] * 3 + ["QR"] * 2
    assert rows[2]["by"] == "jax.jacrev per k (3 of 9 k, extrapolated)"
    assert rows[3]["computes"] == "4 Lyapunov exponents"
    for row in rows:
        assert float(row["s"]) > 0 and float(row["floor s"]) > 0, row
        assert float(row["s/floor"]) == pytest.approx(float(row["s"]) / float(row["floor s"]), rel=5e-3), row
    assert len({row["floor s"] for row in rows[:3]}) == 1 and len({row["floor s"] for row in rows[3:]}) == 1
    record = json.loads((tmp_path / "jacobian_speed" / "metrics.jsonl").read_text())
    assert max(record["check_error"].values()) < cfg.rtol and record["lyapunov_error"] < 1e-4


def test_rnn_speed_tiny_times_the_reference_scan_on_request(tmp_path, load_script):
    rnn_speed = load_script("benchmarks", "rnn_speed")
    argv = ["--tiny", "--no-torch", "--no-flax-lstm-cell", "--cells", "lstm", "--impl", "scan", "--precisions",
            "float32"]  # fmt: skip
    cfg = rj.experiment.parse_config(rnn_speed.Config, [*argv, "--root", str(tmp_path)])

    table = rnn_speed.main(cfg)

    report = (tmp_path / "rnn_speed" / "report.md").read_text()
    assert "Our implementation: impl='scan'." in report and table in report


def test_fit_overhead_tiny_reports_the_three_sides_and_their_ratios(tmp_path, capsys, load_script):
    fit_overhead = load_script("benchmarks", "fit_overhead")
    cfg = rj.experiment.parse_config(fit_overhead.Config, ["--tiny", "--root", str(tmp_path)])

    out = fit_overhead.main(cfg)

    assert out["ratio"] == pytest.approx(out["rj.train.fit"] / out["bare jitted loop"])
    monitored = "fit + Lyapunov monitor (k = 2, every 6)"
    assert out["monitor_ratio"] == pytest.approx(out[monitored] / out["rj.train.fit"])
    printed = capsys.readouterr().out
    assert out["ratio"] > 0 and f"fit / bare: {out['ratio']:.3f}" in printed
    assert out["monitor_ratio"] > 0 and f"fit with the Lyapunov monitor / fit: {out['monitor_ratio']:.3f}" in printed
    report = (tmp_path / "fit_overhead" / "report.md").read_text()
    assert f"fit / bare: **{out['ratio']:.3f}**" in report and "log_every=10" in report
    assert f"fit with the Lyapunov monitor / fit: **{out['monitor_ratio']:.3f}**" in report and monitored in report
    assert 0 < out["parts_ratio"] <= 1 and f"leaves fit at **{out['parts_ratio']:.3f}** of its speed" in report


def test_cell_speed_tiny_times_every_cell_under_each_implementation_it_declares(tmp_path, capsys, load_script):
    cell_speed = load_script("benchmarks", "cell_speed")
    cfg = rj.experiment.parse_config(cell_speed.Config, ["--tiny", "--root", str(tmp_path)])

    tables = cell_speed.main(cfg)

    assert tables in capsys.readouterr().out
    report = (tmp_path / "cell_speed" / "report.md").read_text()
    assert "wall_time_s" in report and "expected to win" in report
    assert all(table in report for table in rj.experiment.tables_in(tables))

    def rows_of(table: str) -> list[dict[str, str]]:
        header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
        return [dict(zip(header, row, strict=True)) for row in rows]

    first, second = map(rows_of, rj.experiment.tables_in(tables))
    declared = {
        (name, impl)
        for name, factory in rj.cells.CELLS.items()
        for impl, has in (("scan", True), ("fused", factory(4).spec.parts), ("associative", factory(4).spec.linear))
        if has is not None
    }
    assert {(r["cell"], r["impl"]) for r in first} == declared
    for row in first:
        assert float(row["scan/this"]) > 0 and float(row["lstm auto/this"]) > 0 and float(row["ms"]) > 0
        assert float(row["max abs dy"]) < cfg.atol and float(row["max rel dgrad"]) < cfg.grad_rtol
        if row["impl"] == "scan":
            assert row["scan/this"] == "1.00"
    assert [r["lstm auto/this"] for r in first if r["cell"] == "lstm" and r["auto"] == "yes"] == ["1.00"]
    linear = [name for name, factory in rj.cells.CELLS.items() if factory(4).spec.linear is not None]
    assert [(r["cell"], r["T"], r["pass"]) for r in second] == [
        (name, "16", p) for name in linear for p in ("forward + backward", "forward")
    ]
    assert all(float(r["scan/associative"]) > 0 for r in second)
    lines = (tmp_path / "cell_speed" / "metrics.jsonl").read_text().count("\n")
    assert lines == len(first) + 2 * len(second)


def test_long_sequences_tiny_measures_each_remat_in_its_own_process(tmp_path, capsys, load_script):
    long_sequences = load_script("benchmarks", "long_sequences")
    cfg = rj.experiment.parse_config(long_sequences.Config, ["--tiny", "--root", str(tmp_path)])

    table = long_sequences.main(cfg)

    assert table in capsys.readouterr().out
    assert len(table.splitlines()[2:]) == 3  # a row per remat
    results = json.loads((tmp_path / "long_sequences" / "results.json").read_text())
    for r in results:
        assert r["temp_bytes"] > 0 and r["max_rss_bytes"] > 0 and len(r["times"]) == 1
    offs = {(r["T"], r["loss"]): r["temp_bytes"] for r in results if r["remat"] == "off"}
    chunked = {(r["T"], r["loss"]): r["temp_bytes"] for r in results if r["remat"] == "sqrt(T)"}
    assert all(chunked[k] < offs[k] for k in offs)  # checkpointing over time holds less, even at T = 60
