"""experiments/char_lm.py in its tiny configuration: the run folder, the report and values that could be wrong."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rnnjax as rj


def test_char_lm_tiny(load_script, tmp_path):
    """One tiny run (its JIT compilations are most of its time), checked part by part."""
    script = load_script("experiments", "char_lm")
    run = script, script.main(script.Config(tiny=True, progress=False, root=str(tmp_path)))
    check_run_folder_and_report(run)
    check_metrics_hold_every_cell_and_the_validation(run)
    check_baselines_score_the_held_out_rows(run)
    check_samples_and_continuation(run)


def check_run_folder_and_report(run):
    script, out = run
    run_dir = out["run_dir"]
    for name in ("config.json", "metrics.jsonl", "learning_curves.png", "report.md"):
        assert (run_dir / name).stat().st_size > 0, name
    report = (run_dir / "report.md").read_text()
    assert "![learning curves](learning_curves.png)" in report and out["table"] in report
    (headline,) = rj.experiment.headlines_in(report)
    cells = {r["cell"]: r for r in out["results"]}
    assert headline["best model"] in cells and headline["best baseline"] in out["baselines"]
    best = min(cells.values(), key=lambda r: r["test_bpc"])
    assert float(headline["score"]) == pytest.approx(best["test_bpc"], rel=1e-3)
    assert float(headline["baseline score"]) == pytest.approx(min(b["test"] for b in out["baselines"].values()), 1e-3)
    table = rj.experiment.table_cells(out["table"])
    assert set(table) == {"rnn", "lstm", "gru", "unigram", "Kneser-Ney 3-gram", "Kneser-Ney 5-gram"}


def check_metrics_hold_every_cell_and_the_validation(run):
    script, out = run
    records = [json.loads(line) for line in (out["run_dir"] / "metrics.jsonl").read_text().splitlines()]
    tiny = script.TINY
    for r in out["results"]:
        mine = [x for x in records if x["cell"] == r["cell"]]
        assert [x["step"] for x in mine if "loss" in x][-1] == tiny["steps"]
        evals = [x["eval/bpc"] for x in mine if "eval/bpc" in x]
        assert evals and evals[-1] == pytest.approx(r["valid_bpc"])
        steps, bpc = r["train"]
        assert len(bpc) == tiny["steps"]
        # an untrained model over 79 characters costs about log2(79) = 6.3 bits a character
        for value in (r["train_bpc"], r["valid_bpc"], r["test_bpc"]):
            assert abs(value - math.log2(79)) < 1.0


def check_baselines_score_the_held_out_rows(run):
    script, out = run
    base = out["baselines"]
    for part in ("valid", "test"):
        assert base["Kneser-Ney 5-gram"][part] < base["Kneser-Ney 3-gram"][part] < base["unigram"][part]
    # the unigram's score, computed independently from the same rows of the same split
    corpus = rj.data.shakespeare.corpus(0)
    tiny = script.TINY
    counts = np.bincount(corpus.train[: tiny["train_chars"]], minlength=79) + 1.0
    rows = script.held_out_rows(corpus.valid, tiny["eval_rows"], tiny["eval_len"])
    assert rows.shape == (tiny["eval_rows"], tiny["eval_len"] + 1)
    expected = -np.log2(counts[rows[:, 1:]] / counts.sum()).mean()
    assert base["unigram"]["valid"] == pytest.approx(expected)


def check_samples_and_continuation(run):
    script, out = run
    tiny = script.TINY
    chars = set(rj.data.shakespeare.vocab().chars)
    assert [t for t, _ in out["samples"]] == list(tiny["temperatures"])
    for _, text in out["samples"]:
        assert len(text) == tiny["sample_chars"] and set(text) <= chars
    prompt, continued, truth = out["continuation"]
    assert len(prompt) == tiny["prompt_chars"] and len(continued) == len(truth) == tiny["sample_chars"]
    test_text = rj.data.shakespeare.vocab().decode(rj.data.shakespeare.corpus(0).test)
    assert prompt + truth in test_text
