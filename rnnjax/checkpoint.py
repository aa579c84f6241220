"""Checkpoints through orbax's ``CheckpointManager``: the training state and its config, side by side.

::

    with Checkpoints(run_dir / "checkpoints", keep=3) as ckpt:
        ckpt.save(step, state, config)                  # state: any pytree (e.g. a TrainState)
        state, config = ckpt.restore(state)             # the latest; ``state`` gives the structure

A directory without checkpoints, or one that cannot be read, raises an error that says so; nothing
ever falls back to a fresh start silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the state it should restore."""


class Checkpoints:
    """Saves and restores ``(state, config)`` pairs by step, keeping the last ``keep``.

    Args:
        directory: where the step folders go (created on the first save).
        keep: how many of the newest checkpoints to keep; older ones are deleted.
    """

    def __init__(self, directory: str | Path, keep: int = 3):
        if keep < 1:
            raise ValueError(f"keep: expected at least 1 checkpoint to keep, got {keep}")
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
        """The steps saved, oldest first."""
        return sorted(self._manager.all_steps())

    @property
    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, config: dict[str, Any] | None = None) -> None:
        """Writes ``state`` (any pytree of arrays) and ``config`` (JSON-serialisable) as ``step``."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config or {}))
        self._manager.save(int(step), args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The state and config saved at ``step`` (default: the latest).

        Args:
            like: a state of the same structure, shapes and dtypes (its values are not used);
                NamedTuples come back as NamedTuples.

        Raises:
            CheckpointError: no checkpoint here, no such step, or one that cannot be read into
                the structure of ``like``.
        """
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
