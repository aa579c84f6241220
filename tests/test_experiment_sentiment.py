"""experiments/sentiment.py in its tiny configuration, and its pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnjax as rj


def test_tiny_run(load_script, tmp_path):
    module = load_script("experiments", "sentiment")
    out = module.main(module.Config(tiny=True, progress=False, root=str(tmp_path)))
    run_dir = out["run_dir"]
    assert run_dir == tmp_path / "sentiment"
    for name in ("config.json", "metrics.jsonl", "report.md", "learning_curves.png", "accuracy.png", "confusion.png"):
        assert (run_dir / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == {"lstm", "gru", "bilstm"}
    for r in out["results"]:  # the reported accuracy is that of the final weights, as logged at the last step
        last = [x for x in records if x["model"] == r["model"] and "eval/accuracy" in x][-1]
        assert last["step"] == 4
        assert r["accuracy"] == pytest.approx(last["eval/accuracy"], abs=1e-6)

    report = (run_dir / "report.md").read_text()
    for figure in ("learning_curves.png", "accuracy.png", "confusion.png"):
        assert f"]({figure})" in report
    (headline,) = rj.experiment.headlines_in(report)
    assert headline["metric"] == "accuracy (higher is better)"
    assert headline["best baseline"] == "tfidf_logreg"  # beats the majority class, even on 600 snippets
    models = {r["model"]: r["accuracy"] for r in out["results"]}
    assert headline["best model"] == max(models, key=models.get)
    assert ("No network beats" in report) != out["headlines"][0].beats_baseline
    assert "tfidf_logreg" in out["table"] and "bilstm" in out["table"]

    test = rj.data.rotten_tomatoes.load()["test"]
    assert out["baselines"]["majority"] == pytest.approx(np.mean(test.label == 1))  # fresh is the majority
    assert out["baselines"]["majority"] < out["baselines"]["tfidf_logreg"] < 0.9


def test_models(load_script):
    module = load_script("experiments", "sentiment")
    cfg = module.Config(hidden_size=4, embed_dim=3)
    model = module.make_model("bilstm", cfg, 10)
    assert model.rnn.bidirectional and model.rnn.output_size == 8 and model.vocab_size == 10
    assert not module.make_model("gru", cfg, 10).rnn.bidirectional
    with pytest.raises(ValueError, match="models"):
        module.make_model("transformer", cfg, 10)
