"""experiments/captioning.py: the caption coding, and the tiny run's folder, headlines and baselines."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

import rnnjax as rj
from rnnjax.data.digits import NAMES
from rnnjax.metrics import character_error_rate


def test_captions_encode_and_decode(load_script):
    mod = load_script("experiments", "captioning")
    assert mod.VOCAB.chars[:2] == "^$" and mod.MAX_LEN == 6  # "three", "seven", "eight" and the end marker
    targets, mask = mod.encode_captions(np.array([7, 1]))
    assert mod.VOCAB.decode(targets[0]) == "seven$" and mod.VOCAB.decode(targets[1]) == "one$$$"
    np.testing.assert_array_equal(mask.sum(1), [6, 4])  # the name and one end marker
    assert mod.decode_captions(targets) == ["seven", "one"]
    assert mod.decode_captions(mod.VOCAB.encode("tw$o$x")[None]) == ["tw"]  # up to the first end marker


def test_tiny_run(load_script, tmp_path):
    mod = load_script("experiments", "captioning")
    out = mod.main(mod.Config(tiny=True, progress=False, root=str(tmp_path)))
    run_dir = tmp_path / "captioning"
    assert out["run_dir"] == run_dir
    report = (run_dir / "report.md").read_text()
    for figure in ("loss_curves", "captions"):
        assert (run_dir / f"{figure}.png").stat().st_size > 0 and f"]({figure}.png)" in report
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert Counter(r["model"] for r in records) == {"lstm": 6, "gru": 6}

    parts = rj.data.digits.load_split("sklearn", seed=0)
    truth = [NAMES[c] for c in parts["test"].labels]
    rows = {r["model"]: r for r in out["results"]}
    assert set(rows) == {"lstm greedy", "lstm sampled", "gru greedy", "gru sampled", mod.CONSTANT, mod.CLASSIFIER}

    # The constant baseline: the most frequent training name, scored by hand.
    common = Counter(parts["train"].labels.tolist()).most_common(1)[0][0]
    assert out["captions"][mod.CONSTANT] == [NAMES[common]] * len(truth)
    assert rows[mod.CONSTANT]["exact_match"] == np.mean(parts["test"].labels == common)
    # The lookup baseline spells a good classifier's answers: its exact match is that classifier's accuracy.
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        clf = LogisticRegression(max_iter=500).fit(parts["train"].flat(), parts["train"].labels)
    accuracy = clf.score(parts["test"].flat(), parts["test"].labels)
    assert rows[mod.CLASSIFIER]["exact_match"] == accuracy > 0.9 and rows[mod.CLASSIFIER]["cer"] < 0.1
    assert set(out["captions"][mod.CLASSIFIER]) <= set(NAMES)

    # Decoded captions: at most MAX_LEN characters of the vocabulary, scored as the metrics module says.
    for cell in ("lstm", "gru"):
        for how in ("greedy", "sampled"):
            captions = out["captions"][cell][how]
            assert len(captions) == len(truth) and all(len(c) <= mod.MAX_LEN for c in captions)
            assert set("".join(captions)) <= set(mod.VOCAB.chars) - {"$"}
            score = rows[f"{cell} {how}"]
            assert score["cer"] == character_error_rate(captions, truth)

    headlines = rj.experiment.headlines_in(report)
    assert [h["metric"].split(" (")[0] for h in headlines] == ["character error rate", "exact match"]
    best_cer = min(rows[f"{c} {h}"]["cer"] for c in ("lstm", "gru") for h in ("greedy", "sampled"))
    assert float(headlines[0]["score"]) == float(f"{best_cer:.4g}")
    assert headlines[0]["best baseline"] == mod.CLASSIFIER and headlines[1]["best baseline"] == mod.CLASSIFIER
