"""Checkpoints through orbax's ``CheckpointManager``: the training state and its config, side by side.

::

    with Checkpoints(run_dir / "checkpoints", keep=3) as ckpt:
        ckpt.save(step, state, config)                  # state: any pytree (e.g. a TrainState)
        state, config = ckpt.restore(state)             # the latest; ``state`` gives the structure

A directory without checkpoints, or one that cannot be read, raises an error that says so; nothing
ever falls back to a fresh start silently. A save that was killed midway leaves only an orbax
temporary folder (``<step>.orbax-checkpoint-tmp``), which is never listed or restored;
:meth:`Checkpoints.remove_unfinished` deletes such folders.
"""

from __future__ import annotations

import numbers
import shutil
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from rnnjax.checks import check_finite_tree, check_positive_int, describe

__all__ = ["CheckpointError", "Checkpoints"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the state it should restore."""


def _check_step(step: Any) -> int:
    """``step`` as an int >= 0: a Python or numpy int, or a 0-d integer array such as ``state.step``."""
    if hasattr(step, "dtype") and jnp.ndim(step) == 0 and jnp.issubdtype(step.dtype, jnp.integer):
        step = int(step)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step: expected an int >= 0, got {describe(step)}")
    return int(step)


class Checkpoints:
    """Saves and restores ``(state, config)`` pairs by step, keeping the last ``keep``.

    Args:
        directory: where the step folders go (created here if missing).
        keep: how many of the newest checkpoints to keep (an int >= 1); older ones are deleted.
    """

    def __init__(self, directory: str | Path, keep: int = 3):
        keep = check_positive_int(keep, "keep")
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    @property
    def steps(self) -> list[int]:
        """The steps saved (finished saves only), oldest first."""
        return sorted(self._manager.all_steps())

    @property
    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def unfinished(self) -> list[Path]:
        """The temporary folders of saves that never finished (killed midway), e.g. ``7.orbax-checkpoint-tmp``."""
        if not self.directory.exists():
            return []
        return sorted(p for p in self.directory.iterdir() if ocp.utils.TMP_DIR_SUFFIX in p.name)

    def remove_unfinished(self) -> list[Path]:
        """Deletes :meth:`unfinished` and returns what it deleted.

        Only while no other process saves here: its save in progress looks the same. ``fit`` calls
        this while it holds the run directory's lock.
        """
        removed = self.unfinished()
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        return removed

    def clear(self) -> None:
        """Deletes every checkpoint here (and any unfinished save)."""
        for step in self.steps:
            self._manager.delete(step)
        self.remove_unfinished()

    def save(self, step: int, state: Any, config: dict[str, Any] | None = None) -> None:
        """Writes ``state`` (any pytree of arrays) and ``config`` (JSON-serialisable) as ``step``.

        Raises:
            ValueError: ``step`` is not an int >= 0, or ``state`` holds a NaN or Inf (never saved).
        """
        step = _check_step(step)
        check_finite_tree(state, "state")
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config or {}))
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The state and config saved at ``step`` (default: the latest).

        Args:
            like: a state of the same structure, shapes and dtypes (its values are not used);
                NamedTuples come back as NamedTuples.

        Raises:
            ValueError: ``step`` is not None or an int >= 0.
            CheckpointError: no checkpoint here, no such step, or one that cannot be read into
                the structure of ``like``.
        """
        step = None if step is None else _check_step(step)
        steps = self.steps
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory}: nothing to resume from")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise CheckpointError(f"no checkpoint for step {step} in {self.directory}; saved steps: {steps}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), config=ocp.args.JsonRestore())
        try:
            restored = self._manager.restore(step, args=args)
        except Exception as e:  # orbax raises many types; the message keeps its cause
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} could not be restored into the given state: "
                f"{type(e).__name__}: {e}"
            ) from e
        return restored.state, dict(restored.config or {})

    def restore_raw(self, step: int) -> tuple[Any, dict[str, Any]]:
        """The state saved at ``step`` as orbax reads it without a template (NamedTuples as dicts by field
        name, tuples as lists), and its config; :func:`rnnjax.runs.restore_params` picks the params out.

        Raises:
            CheckpointError: no such step, or it cannot be read.
        """
        step = _check_step(step)
        if step not in self.steps:
            raise CheckpointError(f"no checkpoint for step {step} in {self.directory}; saved steps: {self.steps}")
        args = ocp.args.Composite(state=ocp.args.StandardRestore(), config=ocp.args.JsonRestore())
        try:
            restored = self._manager.restore(step, args=args)
        except Exception as e:  # orbax raises many types; the message keeps its cause
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} could not be read: {type(e).__name__}: {e}"
            ) from e
        return restored.state, dict(restored.config or {})
