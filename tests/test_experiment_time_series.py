"""experiments/time_series.py in its tiny configuration: the run folder, the report and values that could be wrong."""

import json

import numpy as np
import pytest

import rnnjax as rj


def test_tiny_run(load_script, tmp_path):
    module = load_script("experiments", "time_series")
    out = module.main(module.Config(tiny=True, progress=False, root=str(tmp_path)))
    run_dir = out["run_dir"]
    assert run_dir == tmp_path / "time_series"
    for f in ["config.json", "metrics.jsonl", "report.md", "loss_curves.png"]:
        assert (run_dir / f).exists(), f
    for name in rj.data.series.NAMES:
        assert (run_dir / f"forecast_{name}.png").stat().st_size > 0
        assert (run_dir / f"rmse_{name}.png").stat().st_size > 0

    report = (run_dir / "report.md").read_text()
    assert "![forecast co2](forecast_co2.png)" in report and out["table"] in report
    heads = rj.experiment.headlines_in(report)
    assert [h["task"].split(",")[0] for h in heads] == list(rj.data.series.NAMES)
    for h, headline in zip(heads, out["headlines"], strict=True):
        assert h["best model"] in ("LSTM", "GRU")
        assert float(h["baseline score"]) == pytest.approx(headline.baseline_score, rel=1e-3)
        assert (h["beats baseline"] == "yes") == headline.beats_baseline
        assert headline.beats_baseline or h["note"]  # a loss is explained
    models = {json.loads(line)["model"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()}
    assert models == {f"{s}-{c}-0" for s in rj.data.series.NAMES for c in ("lstm", "gru")}

    for name in rj.data.series.NAMES:
        scores = out["results"][name]
        horizon = rj.data.series.load(name).horizon
        s = rj.data.series.load(name, test_size=horizon + module.TINY["origins"] - 1)
        assert len(s.origins) == 2
        # the baselines' scores against a computation by hand on the same origins
        errors = [s.values[o : o + horizon] - s.values[o - 1] for o in s.origins]
        rmse_h = np.sqrt(np.mean(np.square(errors), 0))
        np.testing.assert_allclose(scores["persistence"]["rmse_h"], rmse_h)
        assert scores["persistence"]["rmse"] == pytest.approx(rmse_h.mean())
        errors = [s.values[o : o + horizon] - s.values[o - s.period : o - s.period + horizon] for o in s.origins]
        assert scores[f"seasonal naive (m={s.period})"]["mae"] == pytest.approx(np.abs(errors).mean())
        assert module.sarima_name(name) in scores
        for forecaster, sc in scores.items():
            assert len(sc["rmse_h"]) == horizon and np.all(np.isfinite(sc["rmse_h"])), (name, forecaster)
            assert sc["mae"] <= sc["rmse"] + 1e-9  # MAE_h <= RMSE_h at every h
        for m in ("LSTM", "GRU"):
            # near persistence after 3 steps, on the original scale (a forgotten inverse scaling or exp would put
            # the forecasts near 0, off by the level: ~370 ppm of CO2, ~400 thousand passengers)
            assert scores[m]["rmse"] < 3 * scores["persistence"]["rmse"]
            assert scores[m]["rmse"] != scores["persistence"]["rmse"]  # the network's output is used


def test_transform_roundtrip_and_features(load_script):
    module = load_script("experiments", "time_series")
    y = np.array([112.0, 118.0, 132.0])
    np.testing.assert_allclose(module.untransform("air_passengers", module.transform("air_passengers", y)), y)
    np.testing.assert_array_equal(module.transform("co2", y), y)
    f = module.features(np.array([[1.0, 2.0, 4.0]]))
    assert f.shape == (1, 3, 1) and f.dtype == np.float32
    np.testing.assert_array_equal(f[0, :, 0], [-3.0, -2.0, 0.0])
    assert module.buckets(12) == {"h=1": 0, "h=6": 5, "h=12": 11}
    assert module.sarima_name("air_passengers") == "SARIMA(1,1,1)(0,1,1)12 on log"
    assert module.sarima_name("sunspots") == "AR(9)"
