"""experiments/translation.py: English -> French number words with Seq2Seq, in its tiny configuration."""

from __future__ import annotations

import json

import pytest

import rnnjax as rj
from rnnjax.metrics import character_error_rate, exact_match


def test_the_length_baseline_is_the_positional_majority(load_script):
    script = load_script("experiments", "translation")
    src = [["a"], ["b"], ["c"], ["a", "b"], ["b", "c"], ["c", "a"]]
    tgt = [["x"], ["x"], ["y", "z"], ["p", "q"], ["p", "r"], ["s", "r"]]
    table = script.length_baseline(src, tgt)
    assert table == {1: ["x"], 2: ["p", "r"]}  # length 1 -> the common length 1; length 2: p (2 of 3), r (2 of 3)
    assert script.predict_length(table, [["a"], ["q", "q"], ["q"] * 5]) == [["x"], ["p", "r"], ["p", "r"]]


def test_tiny_run_writes_its_folder_and_scores_match_an_independent_computation(load_script, tmp_path):
    script = load_script("experiments", "translation")
    out, root = script.main(script.Config(tiny=True, progress=False, root=str(tmp_path))), tmp_path
    run_dir = root / "translation"
    assert out["run_dir"] == run_dir
    for name in ("config.json", "metrics.jsonl", "loss_curves.png", "cer_by_digits.png", "report.md"):
        assert (run_dir / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == {"gru_uni", "gru_bi"}
    assert any("eval/loss" in r for r in records)
    report = (run_dir / "report.md").read_text()
    headlines = rj.experiment.headlines_in(report)
    assert [h["metric"] for h in headlines] == ["character error rate (lower is better)",
                                                "exact match (higher is better)"]  # fmt: skip
    assert headlines[0]["best baseline"].startswith(("copy", "length"))
    assert "![loss curves](loss_curves.png)" in report and "![CER by digits](cer_by_digits.png)" in report
    assert out["table"] in report and "| gru_bi, beam | model |" in report

    data = rj.data.number_words.load(300, 0)
    targets = data.text["fr"]["test"]
    results = {r["name"]: r for r in out["results"]}
    assert set(results) == {"gru_uni, greedy", "gru_uni, beam", "gru_bi, greedy", "gru_bi, beam",
                            "copy (output = input)", "length (majority target of that source length)"}  # fmt: skip
    copy = results["copy (output = input)"]
    assert copy["cer"] == pytest.approx(character_error_rate(data.text["en"]["test"], targets))
    assert copy["cer"] > 0.5  # English is far from French
    for name, texts in {**out["predictions"], **out["baselines"]}.items():
        assert len(texts) == len(targets)
        assert results[name]["exact_match"] == pytest.approx(exact_match(texts, targets))
        assert results[name]["cer"] == pytest.approx(character_error_rate(texts, targets))
    best = out["headlines"][0]
    assert best.score == min(r["cer"] for r in out["results"] if r["kind"] == "model")
