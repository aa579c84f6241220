"""experiments/flip_flop.py in its tiny configuration: the run folder, the table, the Classic rows, the saved models."""

from __future__ import annotations

import json

import numpy as np

import rnnjax as rj


def test_tiny_run(load_script, tmp_path):
    mod = load_script("experiments", "flip_flop")
    assert mod.Config.cells == ("rnn", "gru", "lstm")
    cells = ("lstm",)  # the (h, c) carry; a carry of one array (rnn, gru) runs the same code with one leaf
    out = mod.main(mod.Config(tiny=True, progress=False, root=str(tmp_path), cells=cells))
    run_dir = tmp_path / "flip_flop"
    assert out["run_dir"] == run_dir
    report = (run_dir / "report.md").read_text()
    for name in ("config.json", "metrics.jsonl", "loss_curves.png", "report.md"):
        assert (run_dir / name).stat().st_size > 0, name
    for cell in cells:
        for figure in (f"fixed_points_{cell}.png", f"trials_{cell}.png"):
            assert (run_dir / figure).stat().st_size > 0 and f"]({figure})" in report
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for cell in cells:
        assert [r["step"] for r in records if r["cell"] == cell] == list(range(1, 7))

    # The table's counts add up, and say what the search found.
    rows = {r["cell"]: r for r in out["results"]}
    for cell, r in rows.items():
        assert r["stable"] + r["saddles"] + r["more unstable"] == r["fixed points"] == sum(r["by_unstable_dims"])
        assert 0 <= r["memories"] <= min(r["stable"], 8) and r["converged"] <= r["starts"] == 32
        assert r["fixed points"] >= 1  # at init every cell here holds a fixed point near 0, and 6 steps keep one
        assert 0 <= r["bits_kept"] <= 1 and r["attractor_memories"] <= r["attractors"] <= 32
        assert f"| {cell} | {r['final_mse']:.4g} | {r['fixed points']} | {r['stable']} | {r['saddles']} |" in report

    # One Classic row per cell, computed from the run.
    classics = rj.experiment.classics_in(report)
    assert [c["result"].rsplit("(", 1)[1].rstrip(")") for c in classics] == list(cells)
    for c, cell in zip(classics, cells, strict=True):
        r = rows[cell]
        assert f"{r['stable']} stable" in c["ours"] and f"{r['saddles']} saddles" in c["ours"]
        assert c["agrees"] == ("yes" if r["stable"] == r["memories"] == 8 and r["saddles"] else
                               "partly" if r["stable"] and r["saddles"] else "no")  # fmt: skip
        assert "Sussillo & Barak 2013" in c["source"]

    # Every trained model is rebuilt from its folder, its probe runs through it.
    for cell in cells:
        run = rj.runs.load_run(run_dir / cell)
        assert isinstance(run.model, rj.models.ManyToMany) and run.model.rnn.step_cell.name == cell
        assert np.asarray(run.model.apply(run.params, **run.probe)).shape == (8, 16, 3)


def test_product_counts_and_cli(load_script):
    mod = load_script("experiments", "flip_flop")
    assert mod.product_counts(3) == {0: 8, 1: 12, 2: 6, 3: 1}
    assert mod.product_counts(1) == {0: 2, 1: 1}
    cfg = rj.experiment.parse_config(mod.Config, ["--cells", "lstm", "--hidden-size", "64", "--no-progress"])
    assert (cfg.cells, cfg.hidden_size, cfg.progress) == (("lstm",), 64, False)
