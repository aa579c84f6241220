"""experiments/sequential_images.py in its tiny configuration: the run folder, the headlines, the scores."""

from __future__ import annotations

import json

import numpy as np

import rnnjax as rj

NAMES = {f"{d}/{m}" for d in ("sklearn", "mnist5k") for m in ("rnn", "lstm", "gru", "mlp")}


def _losses(metrics, name: str) -> list[float]:
    return [r["loss"] for r in map(json.loads, metrics.read_text().splitlines()) if r["model"] == name]


def test_tiny_run(load_script, tmp_path):
    mod = load_script("experiments", "sequential_images")
    out = mod.main(mod.Config(tiny=True, progress=False, root=str(tmp_path)))
    run_dir = tmp_path / "sequential_images"
    assert out["run_dir"] == run_dir

    # The run folder: figures linked from the report, every model's steps in one log.
    report = (run_dir / "report.md").read_text()
    for figure in ("loss_sklearn", "accuracy_sklearn", "loss_mnist5k", "accuracy_mnist5k", "confusion_mnist5k"):
        assert (run_dir / f"{figure}.png").stat().st_size > 0 and f"]({figure}.png)" in report
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == NAMES
    assert len(records) == len(NAMES) * 6  # tiny: 6 steps a model, evaluations inside step records
    assert json.loads((run_dir / "config.json").read_text())["config"]["max_train"] == 200

    # The headlines name the best of each side, as the table's numbers say.
    rows = {(r["dataset"], r["model"]): r for r in out["results"]}
    assert len(rows) == 2 * 5
    headlines = rj.experiment.headlines_in(report)
    assert [h["task"].split()[0] for h in headlines] == ["sklearn", "mnist5k"]
    for h, data in zip(headlines, ("sklearn", "mnist5k"), strict=True):
        recurrent = {m: rows[data, m]["test_accuracy"] for m in ("rnn", "lstm", "gru")}
        pixels = {m: rows[data, m]["test_accuracy"] for m in ("mlp", "logistic regression")}
        assert h["best model"] == max(recurrent, key=recurrent.get)
        assert h["best baseline"] == max(pixels, key=pixels.get)
        assert (h["beats baseline"] == "yes") == (max(recurrent.values()) > max(pixels.values()))
        assert (h["note"] == "") == (h["beats baseline"] == "yes")  # a loss is explained
    assert "| sklearn | logistic regression |" in out["table"]

    # Real scores: logistic regression on 200 training images already reads digits far above chance (0.1),
    # unless the pixels, the labels or the split were scrambled.
    for r in rows.values():
        assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["validation_accuracy"] <= 1.0
    assert rows["sklearn", "logistic regression"]["test_accuracy"] > 0.85
    assert rows["mnist5k", "logistic regression"]["test_accuracy"] > 0.7

    # Seeds follow names: the GRU trained alone on sklearn logs the same losses as beside the others.
    solo = tmp_path / "solo"
    mod.main(mod.Config(tiny=True, progress=False, root=str(solo), datasets=("sklearn",), cells=("gru",)))
    alone = _losses(solo / "sequential_images" / "metrics.jsonl", "sklearn/gru")
    assert len(alone) == 6
    np.testing.assert_allclose(alone, _losses(run_dir / "metrics.jsonl", "sklearn/gru"), rtol=1e-6)
