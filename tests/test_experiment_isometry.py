"""experiments/isometry.py in its tiny configuration: the run folder, the tables, the Classic rows, and values
that could be wrong (bounds the spectra must obey, predictions recomputed, dimensions in range)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnjax as rj
from rnnjax.analysis import isometry


def test_tiny_run(load_script, tmp_path):
    module = load_script("experiments", "isometry")
    out = module.main(module.Config(tiny=True, progress=False, root=str(tmp_path)))
    cfg = module.dataclasses.replace(module.Config(), **module.TINY)
    run_dir = out["run_dir"]
    assert run_dir == tmp_path / "isometry"
    for name in ("config.json", "metrics.jsonl", "report.md", "singular_values.png", "mean_sq_vs_T.png",
                 "spread_vs_T.png", "log_spread_vs_T.png", "dimension_vs_gain.png"):  # fmt: skip
        assert (run_dir / name).stat().st_size > 0, name
    assert not (run_dir / "model.json").exists()  # nothing is trained

    inits = module.initialisations(cfg)
    assert len(inits) == 3 + 2 * len(cfg.q_stars) + 1  # and one critical init with a static bias
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == len(inits) * len(cfg.times) + len(cfg.gains)
    for r in records:
        if r["part"] != "isometry":
            continue
        ensemble, sigma_w, sigma_b, sigma_u = inits[r["init"]]
        mf = isometry.mean_field(sigma_w, sigma_b, sigma_u)
        mean, nvar = isometry.predicted_moments(mf, [r["T"]], ensemble)
        assert r["pred_mean_sq"] == pytest.approx(mean[0]) and r["pred_nvar"] == pytest.approx(nvar[0])
        # ||J_t|| <= sigma_max(W) max |tanh'| <= sigma_max(W): the product's singular values are bounded
        if ensemble == "orthogonal":
            assert r["max"] <= sigma_w ** r["T"] * (1 + 1e-9)
        assert 0 <= r["min"] <= r["max"] and 0 <= r["within_2"] <= 1 and r["mean_sq"] <= r["max"] ** 2
        if r["init"].startswith("critical"):
            assert r["chi"] == pytest.approx(1.0, abs=1e-9)
    for T in cfg.times:  # orthogonal sigma_w = 1: every step contracts, every singular value is at most 1
        assert out["isometry"]["orthogonal, sigma_w=1"]["stats"][T]["max"] <= 1 + 1e-9

    report = (run_dir / "report.md").read_text()
    for table in out["tables"].values():
        assert table in report
    for name in inits:
        assert f"| {name} |" in report
    classics = rj.experiment.classics_in(report)
    assert [c["source"].split(",")[0] for c in classics] == ["Pennington", "Chen", "Engelken"]
    for row, classic in zip(classics, out["classics"], strict=True):
        assert row["agrees"] in ("yes", "partly", "no") and row["agrees"] == classic.agrees
        assert row["ours"] == classic.ours.replace("|", "/")
    T = max(cfg.times)
    q = min(cfg.q_stars)
    orth = out["isometry"][module.critical_name("orthogonal", q)]["stats"][T]
    assert f"{orth['nvar']:.3g}" in classics[0]["ours"]  # ours is computed from the run
    env, config = rj.experiment.report_facts(report)
    assert float(env["wall_time_s"]) > 0 and config["tiny"]

    n = cfg.hidden_size
    for g, r in out["dimension"].items():
        assert 0 <= r["ky"] <= n and 1 <= r["pr"] <= n
        assert r["mf_largest"] == pytest.approx(0.5 * np.log(isometry.mean_field(g).chi))
        assert f"| {g:g} |" in out["tables"]["dimension"]
