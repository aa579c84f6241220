"""experiments/music.py: next-step piano-roll prediction of Bach chorales, in its tiny configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnjax as rj


def test_the_baselines_by_hand(load_script):
    music = load_script("experiments", "music")
    # One pitch: off, on, on, off. Before (silence first): off, off, on, on.
    train = [np.array([[0], [1], [1], [0]], np.uint8)]
    fit = music.fit_baselines(train)
    assert fit["freq"][0] == pytest.approx((2 + 1) / (4 + 2))
    assert fit["on_on"][0] == pytest.approx((1 + 1) / (2 + 2))  # on after on: once in two
    assert fit["on_off"][0] == pytest.approx((1 + 1) / (2 + 2))  # on after off: once in two
    scores = music.baseline_nll(fit, train)
    assert scores["independent Bernoulli"] == pytest.approx(-(2 * np.log(0.5) + 2 * np.log(0.5)) / 4)
    assert scores["per-pitch Markov chain"] == pytest.approx(np.log(2))
    # A held note: on for four steps, off for four. Persistence pays.
    held = [np.array([[1]] * 4 + [[0]] * 4, np.uint8)]
    fit = music.fit_baselines(held)
    assert (fit["on_on"][0], fit["on_off"][0]) == pytest.approx((4 / 6, 2 / 6))
    scores = music.baseline_nll(fit, held)
    assert scores["independent Bernoulli"] == pytest.approx(np.log(2))
    assert scores["per-pitch Markov chain"] == pytest.approx((2 * np.log(3) + 6 * np.log(3 / 2)) / 8)


def test_tiny_run(load_script, tmp_path):
    music = load_script("experiments", "music")
    out = music.main(music.Config(tiny=True, progress=False, root=str(tmp_path)))
    run_dir = tmp_path / "music"
    assert out["run_dir"] == run_dir
    for name in ("config.json", "metrics.jsonl", "loss_curves.png", "generated.png", "original.png",
                 "generated.mid", "report.md"):  # fmt: skip
        assert (run_dir / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["cell"] for r in records} == {"rnn", "lstm", "gru"}
    report = (run_dir / "report.md").read_text()
    (headline,) = rj.experiment.headlines_in(report)
    assert headline["best baseline"] in ("independent Bernoulli", "per-pitch Markov chain")
    assert "![generated](generated.png)" in report and out["table"] in report
    results = {r["name"]: r for r in out["results"]}
    # The untrained networks are scored as independent Bernoullis near p = 1/2: about 46 log 2 nats a step.
    for cell in ("rnn", "lstm", "gru"):
        assert 10 < results[cell]["test"] < 60
    # The baselines are recomputed from the same split.
    data = rj.data.chorales.load(limit=4)
    fit = music.fit_baselines(data.part("train"))
    for name, score in music.baseline_nll(fit, data.part("test")).items():
        assert results[name]["test"] == pytest.approx(score)
    generated = out["generated"]
    assert generated.shape == (4 + 8, rj.data.chorales.NUM_PITCHES)
    assert np.array_equal(generated[:4], data.rolls[int(data.parts["test"][0])][:4])  # primed with the real start
    assert set(np.unique(generated)) <= {0, 1}
