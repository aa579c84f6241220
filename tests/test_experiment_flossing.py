"""experiments/flossing.py in its tiny configuration: the run folder, the report's tables, the classics, the
logged exponents and the saved models."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import rnnjax as rj


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny run shared by the tests (the load_script fixture is per test)."""
    path = Path(__file__).resolve().parents[1] / "experiments" / "flossing.py"
    spec = importlib.util.spec_from_file_location("experiments.flossing", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    root = tmp_path_factory.mktemp("runs")
    cfg = rj.experiment.parse_config(module.Config, ["--tiny", "--root", str(root), "--no-progress"])
    return module, module.main(cfg)


def test_tiny_run_writes_the_report_figures_and_one_log(tiny_run):
    module, out = tiny_run
    run_dir = out["run_dir"]
    names = [r["name"] for r in out["results"]]
    assert names == ["plain_seed0", "preflossed+during_seed0"]
    assert (run_dir / "lyapunov_and_loss.png").stat().st_size > 1000
    assert (run_dir / "flossing.png").stat().st_size > 1000
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["run"] for r in records} == set(names)
    report = (run_dir / "report.md").read_text()
    assert out["table"] in report and "wall_time_s" in report
    for r in out["results"]:
        assert f"| {r['name']} | {r['accuracy']:.4g} |" in report


def test_the_classics_are_computed_from_the_run(tiny_run):
    _, out = tiny_run
    classics = rj.experiment.classics_in((out["run_dir"] / "report.md").read_text())
    assert [c["agrees"] in ("yes", "partly", "no") for c in classics] == [True, True]
    flossing, task = classics
    assert "flossing pushes the 2 largest" in flossing["result"] and f"{out['worst_after']:.3f}" in flossing["ours"]
    plain = out["arms"]["plain"]
    assert f"plain {plain['learned']}/{plain['runs']} learned (mean accuracy {plain['accuracy']:.3f})" in task["ours"]


def test_every_run_logs_its_exponents_and_the_flossed_arm_its_flossing_term(tiny_run):
    module, out = tiny_run
    tiny = module.TINY
    plain, during = out["results"]
    for r in out["results"]:
        monitored = [rec["step"] for rec in r["history"] if "lyapunov/1" in rec]
        assert monitored == [0, 3, 6] and "lyapunov/2" in r["history"][0]
    # Both arms start from the seed's weights: pre-flossing changed the flossed arm's exponents.
    assert plain["exponents_start"] != during["exponents_start"]
    assert during["flossed"].exponents.shape == (tiny["floss_steps"] + 1, tiny["k"])
    floss_terms = {rec["step"]: rec["floss"] for rec in during["history"] if "floss" in rec}
    assert floss_terms[1] > 0 and floss_terms[3] > 0  # steps 0 and 2 (0-based) floss, until step 4
    assert floss_terms[2] == floss_terms[4] == floss_terms[5] == 0.0
    assert all("floss" not in rec for rec in plain["history"])


def test_every_trained_model_is_rebuilt_by_load_run(tiny_run):
    _, out = tiny_run
    runs = [rj.runs.load_run(out["run_dir"] / r["name"]) for r in out["results"]]
    model, xs = runs[0].model, runs[0].probe["xs"]
    spectrum = jax.jit(lambda p: rj.analysis.lyapunov_spectrum(model.rnn, p.rnn, xs, k=2, warmup=5).mean(0))
    for run, r in zip(runs, out["results"], strict=True):
        logits = run.model.apply(run.params, **run.probe)
        assert logits.shape == (*xs.shape[:2], 1) and np.isfinite(logits).all()
        # The last monitored exponents are those of the saved params, recomputed by the full-Jacobian QR method.
        np.testing.assert_allclose(spectrum(run.params), r["exponents_end"], atol=1e-4)


def test_a_run_follows_its_seed_not_the_arms_beside_it(tiny_run, tmp_path):
    module, out = tiny_run
    sizes = {**module.TINY, "arms": ("plain",)}  # the tiny run, with the plain arm alone
    alone = module.main(dataclasses.replace(module.Config(), **sizes, root=str(tmp_path), progress=False))

    (plain,) = alone["results"]
    assert plain["history"] == out["results"][0]["history"]
