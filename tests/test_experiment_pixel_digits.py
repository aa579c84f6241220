"""experiments/pixel_digits.py: the tiny run (files, table, headline, Classic rows, load_run), the pixel
sequences against a loop over the blocks, the verdicts of the Classic rows, and the figures' checks."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.plots.pixels import accuracy_beside_published, pixel_sequence

CELLS = ("rnn", "irnn", "lstm", "gru")


def _losses(metrics, name: str) -> list[float]:
    return [r["loss"] for r in map(json.loads, metrics.read_text().splitlines()) if r["model"] == name]


def test_tiny_run(load_script, tmp_path):
    mod = load_script("experiments", "pixel_digits")
    assert mod.Config.cells == CELLS and mod.Config.hidden_size == 100 and mod.Config.pool == 1
    cfg = mod.Config(tiny=True, progress=False, root=str(tmp_path))
    out = mod.main(cfg)
    run_dir = tmp_path / "pixel_digits"
    assert out["run_dir"] == run_dir

    # The run folder: figures linked from the report, every cell's 4 steps in one log.
    report = (run_dir / "report.md").read_text()
    for figure in ("loss", "accuracy", "sequence"):
        assert (run_dir / f"{figure}.png").stat().st_size > 0 and f"]({figure}.png)" in report
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for cell in CELLS:
        assert [r["step"] for r in records if r["model"] == cell] == [1, 2, 3, 4], cell
    assert json.loads((run_dir / "config.json").read_text())["config"]["pool"] == 4

    # The table holds the returned numbers; the baselines read digits (logistic regression far above chance).
    rows, base = out["results"], out["baselines"]
    cells = rj.experiment.table_cells(rj.experiment.tables_in(out["table"])[0])
    assert set(cells) == {*CELLS, "chance", "logistic regression"}
    for cell in CELLS:
        assert "diverged" not in rows[cell]
        assert float(cells[cell]["test accuracy"]) == pytest.approx(rows[cell]["test_accuracy"], rel=1e-3)
        assert float(cells[cell]["learning rate"]) == (1e-4 if cell == "irnn" else 1e-3)
    assert base["chance"] == pytest.approx(0.1)  # the stratified test part: 100 of each digit
    assert base["logistic regression"] > 0.4
    assert "32 images, 0.5 epochs of the 64 training digits" in report

    # The headline names the best cell and the best baseline, as the table says.
    (headline,) = rj.experiment.headlines_in(report)
    scores = {c: rows[c]["test_accuracy"] for c in CELLS}
    assert headline["best model"] == max(scores, key=scores.get)
    assert headline["best baseline"] == "logistic regression" and headline["beats baseline"] == "no"
    assert "test images behind" in headline["note"]

    # The Classic rows: the paper's numbers beside ours, the verdicts from ours.
    irnn_row, order_row = rj.experiment.classics_in(report)
    assert irnn_row["source"] == order_row["source"] == "Le, Jaitly & Hinton 2015, sec. 4.2, fig. 3"
    assert "T = 49" in irnn_row["result"] and "97%" in irnn_row["published"]
    assert f"irnn {rows['irnn']['test_accuracy']:.3f} on 1,000 test digits" in irnn_row["ours"]
    assert irnn_row["agrees"] == "no"  # 4 steps: at most twice chance
    assert "64 training digits and 4 steps of 8" in irnn_row["note"]
    pairs = [("irnn", "lstm"), ("lstm", "rnn"), ("irnn", "rnn")]
    held = sum(scores[a] > scores[b] for a, b in pairs)
    assert order_row["agrees"] == {3: "yes", 0: "no"}.get(held, "partly")
    ranked = sorted(CELLS, key=lambda c: -scores[c])
    assert order_row["ours"] == " > ".join(f"{c} {scores[c]:.3f}" for c in ranked)

    # Every cell's folder is a run that rj.runs.load_run rebuilds: its params give the reported test predictions
    # (on the probe: the first 8 test digits), and the reported accuracy is theirs.
    data, perm = mod.prepare(dataclasses.replace(cfg, **mod.TINY))
    assert perm is None
    x_test, y_test = data["test"]
    assert x_test.shape == (1000, 49, 1)
    blank = mod.trailing_blanks(data["train"][0])
    assert f"last non-zero pixel comes a median of {np.median(blank):g} steps (from {blank.min()} to " in report
    assert f"last ink lies a median of {np.median(blank):g} steps before" in order_row["note"]
    for cell in CELLS:
        run = rj.runs.load_run(run_dir / cell)
        assert run.step == 4 and run.config["steps"] == 4 and run.model.rnn.impl == "auto"
        np.testing.assert_array_equal(run.probe["xs"], x_test[:8])
        reported = rows[cell]["test_predictions"]
        np.testing.assert_array_equal(np.asarray(run.model.apply(run.params, **run.probe)).argmax(-1), reported[:8])
        assert rows[cell]["test_accuracy"] == np.mean(reported == y_test)


@pytest.mark.slow
def test_seeds_follow_names(load_script, tmp_path):
    """The IRNN trained alone logs the same losses as beside the others (a second tiny run: slow when loaded)."""
    mod = load_script("experiments", "pixel_digits")
    for root, cells in (("all", ("rnn", "irnn")), ("solo", ("irnn",))):
        mod.main(mod.Config(tiny=True, progress=False, root=str(tmp_path / root), cells=cells))
    alone = _losses(tmp_path / "solo" / "pixel_digits" / "metrics.jsonl", "irnn")
    assert len(alone) == 4
    np.testing.assert_allclose(alone, _losses(tmp_path / "all" / "pixel_digits" / "metrics.jsonl", "irnn"), rtol=1e-6)


def test_pixel_sequences_read_block_means_in_scanline_order(load_script):
    mod = load_script("experiments", "pixel_digits")
    images = np.random.default_rng(0).random((3, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(mod.pixel_sequences(images), images.reshape(3, 36, 1))
    pooled = mod.pixel_sequences(images, pool=2)
    expected = [[images[n, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2].mean() for r in range(3) for c in range(3)]
                for n in range(3)]  # fmt: skip
    np.testing.assert_allclose(pooled[..., 0], expected, rtol=1e-6)
    perm = np.random.default_rng(1).permutation(9)
    permuted = mod.pixel_sequences(images, pool=2, permutation=perm)
    np.testing.assert_array_equal(permuted[:, :, 0], pooled[:, perm, 0])
    np.testing.assert_array_equal(permuted[:, np.argsort(perm)], pooled)  # how the figure shows the picture
    with pytest.raises(ValueError, match="images: expected"):
        mod.pixel_sequences(images[0])
    with pytest.raises(ValueError, match="pool: expected a positive divisor of the side 6"):
        mod.pixel_sequences(images, pool=4)
    with pytest.raises(ValueError, match="permutation: expected a permutation of range"):
        mod.pixel_sequences(images, pool=2, permutation=np.zeros(9, int))


def test_trailing_blanks_count_the_steps_after_the_last_ink(load_script):
    mod = load_script("experiments", "pixel_digits")
    xs = np.zeros((4, 6, 1), np.float32)
    xs[0, 5], xs[1, 2], xs[1, 0], xs[3, 0] = 0.5, 1.0, 0.2, 0.1  # last ink at steps 5, 2, none, 0
    np.testing.assert_array_equal(mod.trailing_blanks(xs), [0, 3, 6, 5])
    with pytest.raises(ValueError, match="xs: expected"):
        mod.trailing_blanks(xs[..., 0])


def test_prepare_uses_the_split_and_one_fixed_permutation(load_script):
    mod = load_script("experiments", "pixel_digits")
    cfg = mod.Config(pool=4, permuted=True)
    data, perm = mod.prepare(cfg)
    plain, _ = mod.prepare(dataclasses.replace(cfg, permuted=False))
    assert {k: len(v[1]) for k, v in data.items()} == {"train": 3500, "validation": 500, "test": 1000}
    assert sorted(perm) == list(range(49)) and not np.array_equal(perm, np.arange(49))
    for part in data:
        np.testing.assert_array_equal(data[part][0], plain[part][0][:, perm])
        np.testing.assert_array_equal(data[part][1], plain[part][1])
    np.testing.assert_array_equal(mod.prepare(cfg)[1], perm)  # fixed by the seed


def test_cells_have_the_papers_settings(load_script):
    mod = load_script("experiments", "pixel_digits")
    cfg = mod.Config()
    irnn = mod.make_cell(cfg, "irnn")
    params = irnn.init(jax.random.key(0), 1)
    np.testing.assert_array_equal(params.W, jnp.eye(100))
    assert float(jnp.abs(params.b).max()) == 0.0 and 3e-4 < float(jnp.std(params.U)) < 3e-3
    assert dict(irnn.options)["activation"] == "relu"
    assert dict(mod.make_cell(cfg, "rnn").options)["activation"] == "tanh"
    assert dict(mod.make_cell(cfg, "lstm").options)["forget_bias"] == 1.0
    assert mod.make_cell(cfg, "mingru") is rj.cells.make("mingru", 100)
    assert (mod.learning_rate(cfg, "irnn"), mod.learning_rate(cfg, "lstm")) == (1e-4, 1e-3)
    with pytest.raises(ValueError, match="cells: expected names among"):
        mod.main(mod.Config(cells=("uRNN",), progress=False, root="/nonexistent"))


def test_classic_verdicts_follow_the_numbers(load_script):
    mod = load_script("experiments", "pixel_digits")
    data = {"train": (np.ones((3500, 784, 1)), None), "test": (None, np.zeros(1000))}
    base = {"chance": 0.1, "logistic regression": 0.9}

    def rows(**acc):
        return {c: {"diverged": "step 3: loss = nan"} if a is None else {"test_accuracy": a} for c, a in acc.items()}

    def verdicts(cfg, **acc):
        return [(c.agrees, c.published) for c in mod.classics(cfg, rows(**acc), base, data)]

    plain, permuted = mod.Config(), mod.Config(permuted=True)
    (irnn, order) = verdicts(plain, rnn=0.3, irnn=0.95, lstm=0.6, gru=0.9)
    assert irnn == ("yes", "IRNN 97% test accuracy ('3% test error', sec. 4.2), 100 units")
    assert order == ("yes", "irnn 97%, lstm 65%, rnn 35% (the LSTM's read off fig. 3)")
    (_, order) = mod.classics(plain, rows(rnn=0.3, irnn=0.95, lstm=0.6), base, data)
    assert "(the closest, lstm > rnn, by 0.300: 300 of 1,000 test digits, one seed)" in order.note
    assert [v for v, _ in verdicts(plain, rnn=0.3, irnn=0.5, lstm=0.6)] == ["partly", "partly"]
    assert [v for v, _ in verdicts(plain, rnn=0.7, irnn=0.15, lstm=0.6)] == ["no", "no"]
    assert [v for v, _ in verdicts(plain, rnn=0.2, irnn=None, lstm=0.6)] == ["no", "yes"]  # lstm > rnn: 1 of 1
    (irnn, order) = verdicts(permuted, rnn=0.3, irnn=0.78, lstm=0.6)
    assert irnn[0] == "yes" and "82%" in irnn[1] and order == ("yes", "irnn 82%, rnn 35%")
    assert mod.classics(plain, rows(gru=0.9), base, data) == []  # nothing of the paper's ran


def test_figures_check_their_inputs(tmp_path):
    path = accuracy_beside_published({"irnn": (np.array([1, 2]), np.array([0.2, 0.4]))}, tmp_path / "a.png",
                                     published={"irnn": 0.97, "lstm": 0.65}, baselines={"chance": 0.1})  # fmt: skip
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="published, baselines: expected accuracies in"):
        accuracy_beside_published({}, tmp_path / "b.png", published={"irnn": 97.0})
    with pytest.raises(ValueError, match=r"curves\['irnn'\]: expected steps and values of one length"):
        accuracy_beside_published({"irnn": (np.arange(3), np.zeros(2))}, tmp_path / "b.png")
    assert pixel_sequence(np.eye(4), np.eye(4).reshape(16, 1), tmp_path / "s.png").stat().st_size > 0
    with pytest.raises(ValueError, match="image: expected a"):
        pixel_sequence(np.zeros(16), np.zeros(16), tmp_path / "s.png")
    with pytest.raises(ValueError, match="sequence: expected"):
        pixel_sequence(np.eye(4), np.zeros((16, 2)), tmp_path / "s.png")
