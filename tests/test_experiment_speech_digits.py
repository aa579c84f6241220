"""experiments/speech_digits.py in its tiny configuration, and its pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnjax as rj


def test_tiny_run(load_script, tmp_path):
    module = load_script("experiments", "speech_digits")
    out = module.main(module.Config(tiny=True, progress=False, root=str(tmp_path)))
    run_dir = out["run_dir"]
    assert run_dir == tmp_path / "speech_digits"
    for name in ("config.json", "metrics.jsonl", "report.md", "learning_curves.png", "accuracy.png", "confusion.png"):
        assert (run_dir / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == {"rnn", "lstm", "gru", "bilstm"}
    for r in out["results"]:  # the reported accuracy is that of the final weights, as logged at the last step
        last = [x for x in records if x["model"] == r["model"] and "eval/accuracy" in x][-1]
        assert last["step"] == 4
        assert r["accuracy"] == pytest.approx(last["eval/accuracy"], abs=1e-6)

    report = (run_dir / "report.md").read_text()
    for figure in ("learning_curves.png", "accuracy.png", "confusion.png"):
        assert f"]({figure})" in report
    (headline,) = rj.experiment.headlines_in(report)
    assert headline["best baseline"] == "logreg_mean_std"
    models = {r["model"]: r["accuracy"] for r in out["results"]}
    assert headline["best model"] == max(models, key=models.get)
    assert ("No network beats" in report) != out["headlines"][0].beats_baseline
    # 10 classes: chance is 0.1; the time-averaged MFCCs of 200 recordings already say much more.
    assert out["baselines"]["logreg_mean_std"] > 0.25
    assert "test recordings of speakers" in report


def test_summary_features_ignore_padding(load_script):
    module = load_script("experiments", "speech_digits")
    xs = np.zeros((1, 5, 2), np.float32)
    xs[0, :3] = [[1, 0], [2, 0], [3, 6]]
    d = rj.data.spoken_digits.Digits(xs, np.array([3], np.int32), np.array([0]), np.array([0]))
    f = module.summary_features(d)
    np.testing.assert_allclose(f[0], [2, 2, np.std([1, 2, 3]), np.std([0, 0, 6])], rtol=1e-6)


def test_models(load_script):
    module = load_script("experiments", "speech_digits")
    assert module.make_model("bilstm", 4).rnn.output_size == 8
    assert module.make_model("rnn", 4).rnn.step_cell.hidden_size == 4
    with pytest.raises(ValueError, match="models"):
        module.make_model("cnn", 4)
