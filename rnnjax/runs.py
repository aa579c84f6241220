"""A training run's folder read back whole: the model's definition, a probe batch, the trained params.

``fit(..., run_dir=d, model=model, probe=probe)`` writes, beside ``metrics.jsonl`` and ``checkpoints/``:

- ``model.json``: the model's definition (:func:`rnnjax.models.to_config`) and the arguments of its ``init``
  after the key, so its params can be rebuilt in shape without the script that made them;
- ``probe.npz``: a few inputs of the model, keyword arguments of ``model.apply`` (``{"xs": ..., "lengths": ...}``
  for a ``ManyToOne``), the inputs that an analysis of the trained network drives it with.

::

    run = rj.runs.load_run("runs/adding_problem/lstm")   # model, params (the latest checkpoint), probe, config
    logits = run.model.apply(run.params, **run.probe)

Nothing here needs the optimiser: the params are read out of the saved training state by their names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from rnnjax import runlog
from rnnjax.checkpoint import CheckpointError, Checkpoints
from rnnjax.checks import describe
from rnnjax.models.definition import from_config, init_args, to_config

__all__ = ["DEFINITION", "PROBE", "Run", "check_probe", "find_runs", "load_run", "save_definition"]

DEFINITION = "model.json"
PROBE = "probe.npz"


class Run(NamedTuple):
    """One trained model, read back from its run folder by :func:`load_run`."""

    run_dir: Path
    model: Any
    params: Any
    probe: dict[str, np.ndarray]
    config: dict[str, Any]
    """The config saved beside the checkpoint (``fit(config=...)``)."""
    step: int
    """The step of the checkpoint the params come from."""


def check_probe(model: Any, params: Any, probe: Any) -> dict[str, np.ndarray]:
    """``probe`` as numpy arrays, checked by tracing ``model.apply(params, **probe)`` (nothing is computed).

    Raises:
        ValueError: not a dict of arrays, or ``model.apply`` does not take them.
    """
    if not isinstance(probe, dict) or not probe or not all(isinstance(k, str) for k in probe):
        raise ValueError(
            f"probe: expected a dict of model.apply's inputs by name ({{'xs': xs}}), got {describe(probe)}"
        )
    arrays = {k: np.asarray(v) for k, v in probe.items() if v is not None}
    try:
        jax.eval_shape(lambda p, kw: model.apply(p, **kw), params, arrays)
    except Exception as e:  # the model's own error names what is wrong
        raise ValueError(f"probe: {type(model).__name__}.apply(params, **probe) fails: {type(e).__name__}: {e}") from e
    return arrays


def save_definition(run_dir: str | Path, model: Any, params: Any, probe: dict[str, Any] | None = None) -> None:
    """Writes ``model.json`` (and ``probe.npz`` when given) into ``run_dir``; see the module docstring.

    Raises:
        ValueError: ``model`` cannot be saved (:func:`~rnnjax.models.to_config`), ``params`` are not its
            params, or ``probe`` is not an input it takes.
    """
    run_dir = Path(run_dir)
    config = to_config(model)
    args = init_args(model, params)
    arrays = None if probe is None else check_probe(model, params, probe)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"model": config, "init_args": list(args), "probe": None if arrays is None else PROBE}
    (run_dir / DEFINITION).write_text(json.dumps(record, indent=2) + "\n")
    if arrays is not None:
        np.savez(run_dir / PROBE, **arrays)
    elif (run_dir / PROBE).exists():
        (run_dir / PROBE).unlink()  # an earlier run's probe would not fit this model


def _leaf_at(tree: Any, path: tuple[Any, ...], where: str) -> Any:
    node = tree
    for key in path:
        name = getattr(key, "name", getattr(key, "key", getattr(key, "idx", None)))
        try:
            node = node[name] if isinstance(node, dict) else node[int(name)]
        except (KeyError, IndexError, TypeError, ValueError):
            raise CheckpointError(f"{where}: the checkpoint has no params{jax.tree_util.keystr(path)}") from None
    return node


def restore_params(checkpoints: Checkpoints, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any], int]:
    """The params of the training state saved at ``step`` (default: the latest), in the structure of
    ``like``, without the optimiser's state; with the saved config and the step.

    Raises:
        CheckpointError: no checkpoint, or one whose params differ from ``like`` in names or shapes.
    """
    steps = checkpoints.steps
    if not steps:
        raise CheckpointError(f"no checkpoint in {checkpoints.directory}: the run saved none (did fit finish?)")
    step = steps[-1] if step is None else step
    raw, config = checkpoints.restore_raw(step)
    if not isinstance(raw, dict) or "params" not in raw:
        raise CheckpointError(f"{checkpoints.directory / str(step)}: expected a training state with params")
    where = str(checkpoints.directory / str(step))
    paths, tree = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, leaf in paths:
        value = np.asarray(_leaf_at(raw["params"], path, where))
        if value.shape != leaf.shape:
            raise CheckpointError(
                f"{where}: params{jax.tree_util.keystr(path)} has shape {value.shape}, the model's has {leaf.shape}"
            )
        leaves.append(jax.numpy.asarray(value, leaf.dtype))
    return jax.tree.unflatten(tree, leaves), config, step


def _why_none(run_dir: Path) -> str:
    """Why a run has no checkpoint, as its log tells: it diverged before the first save, or it never finished."""
    path = run_dir / "metrics.jsonl"
    diverged = [r for r in runlog.read_log(path) if "diverged" in r] if path.is_file() else []
    if diverged:
        return f" (it diverged at step {diverged[-1]['step']}: {diverged[-1]['diverged']}, before its first save)"
    return " (did fit finish?)"


def load_run(run_dir: str | Path, step: int | None = None) -> Run:
    """The model, trained params, probe and config of a run folder written by ``fit(model=...)``.

    Raises:
        FileNotFoundError: no ``model.json`` there (list the runs under a folder with :func:`find_runs`), or
            no ``probe.npz`` where it names one.
        ValueError: a ``model.json`` that is not a definition ``fit`` wrote (not JSON, an unknown cell), or a
            probe that is not an input of the model; the message names the file.
        CheckpointError: no checkpoint, or params that do not fit the saved definition.
    """
    run_dir = Path(run_dir)
    path = run_dir / DEFINITION
    if not path.is_file():
        found = find_runs(run_dir) if run_dir.is_dir() else []
        hint = f"; the runs under it: {[str(p) for p in found]}" if found else ""
        raise FileNotFoundError(f"{path}: no model definition (fit writes it when given model=){hint}")
    try:
        record = json.loads(path.read_text())
        model = from_config(record["model"])
        args = record["init_args"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        raise ValueError(f"{path}: not a model definition fit wrote ({what})") from e
    like = jax.eval_shape(lambda: model.init(jax.random.key(0), *args))
    if not (run_dir / "checkpoints").is_dir():  # Checkpoints would create the folder: a reader writes nothing
        raise CheckpointError(f"no checkpoint in {run_dir / 'checkpoints'}: the run saved none{_why_none(run_dir)}")
    with Checkpoints(run_dir / "checkpoints") as checkpoints:
        if not checkpoints.steps:
            raise CheckpointError(f"no checkpoint in {checkpoints.directory}: the run saved none{_why_none(run_dir)}")
        params, config, step = restore_params(checkpoints, like, step)
    probe = {}
    if record.get("probe"):
        where = run_dir / record["probe"]
        if not where.is_file():
            raise FileNotFoundError(f"{where}: {DEFINITION} names this probe, but the file is missing")
        with np.load(where, allow_pickle=False) as f:
            probe = {k: f[k] for k in f.files}
        try:
            probe = check_probe(model, params, probe)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from e
    return Run(run_dir, model, params, probe, config, step)


def find_runs(root: str | Path) -> list[Path]:
    """Every folder at or under ``root`` that holds a ``model.json``, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(DEFINITION))
