"""experiments/music.py: next-step piano-roll prediction of Bach chorales, in its tiny configuration."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj


def test_bernoulli_nll_against_the_definition(load_script):
    music = load_script("experiments", "music")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    targets = (rng.random((2, 3, 5)) < 0.4).astype(np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    per_step = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum(-1)
    expected = (per_step * mask).sum() / mask.sum()
    got = music.bernoulli_nll(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # A confident right answer costs little, a confident wrong one a lot.
    big = jnp.full((1, 1, 2), 20.0)
    assert float(music.bernoulli_nll(big, jnp.ones((1, 1, 2)), jnp.ones((1, 1)))) < 1e-6
    assert float(music.bernoulli_nll(big, jnp.zeros((1, 1, 2)), jnp.ones((1, 1)))) == pytest.approx(40.0, rel=1e-4)


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


def test_midi_round_trip(load_script, tmp_path):
    music = load_script("experiments", "music")
    roll = np.zeros((8, 3), np.uint8)
    roll[0:4, 0] = 1  # a half note on pitch 60
    roll[2:3, 2] = 1  # an eighth on pitch 62, starting on beat 2
    path = music.write_midi(roll, tmp_path / "x.mid", steps_per_quarter=2, lowest_pitch=60)
    import music21

    notes = sorted((float(n.offset), n.pitch.midi, float(n.quarterLength))
                   for n in music21.converter.parse(str(path)).flatten().notes)  # fmt: skip
    assert notes == [(0.0, 60, 2.0), (1.0, 62, 0.5)]


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
