"""A run directory's lock and its ``metrics.jsonl``: strict JSON, one record a line, safe across crashes.

::

    with lock_run_dir(run_dir):                        # RunDirLocked if another process holds it
        records = read_log(run_dir / "metrics.jsonl", up_to=6)
        with start_log(run_dir / "metrics.jsonl", records) as log:   # rewritten atomically
            append_record(log, {"step": 7, "loss": 0.5})
            sync_log(log)                              # on disk before the checkpoint that needs it

A crash can tear only the line being appended; :func:`read_log` drops such a last line with a
warning, and refuses a log whose damage is elsewhere. No record ever holds a bare ``NaN`` or
``Infinity`` (not JSON): writing one raises, reading one is an error like any undecodable line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from rnnjax.checkpoint import CheckpointError

__all__ = [
    "LOCK_NAME",
    "RunDirLocked",
    "RunLogError",
    "append_record",
    "dumps",
    "lock_run_dir",
    "read_log",
    "start_log",
    "sync_log",
    "write_log",
]

LOCK_NAME = ".lock"


class RunDirLocked(CheckpointError):
    """Another process is using the run directory (it holds ``run_dir/.lock``)."""


class RunLogError(ValueError):
    """A record of ``metrics.jsonl`` other than the last cannot be read; the message names file and line."""


@contextlib.contextmanager
def lock_run_dir(run_dir: str | Path) -> Iterator[Path]:
    """Holds an exclusive lock on ``run_dir`` (created if missing) for the ``with`` block.

    The lock is ``fcntl.flock`` on ``run_dir/.lock``, taken without waiting; the holder writes its
    pid into the file. The kernel releases it when the holder exits, however it exits, so a crash
    never leaves a stale lock. The file itself stays (removing it would let two processes lock two
    different files of the same name).

    Raises:
        RunDirLocked: another process (or another ``lock_run_dir`` in this one) holds the lock.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            by = f"process {holder}" if holder.isdigit() else "another process"
            raise RunDirLocked(
                f"{run_dir} is in use by {by} (it holds {path}): two runs in one directory would mix "
                "their logs and checkpoints; wait for it to finish or use another run_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield run_dir
        finally:
            os.ftruncate(fd, 0)  # no pid of a process that no longer holds it
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def dumps(record: dict[str, Any]) -> str:
    """``record`` as one line of strict JSON; a NaN or Inf value raises a ValueError."""
    return json.dumps(record, allow_nan=False)


def _strict_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(line: str) -> dict[str, Any]:
    record = json.loads(line, parse_constant=_strict_constant)
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        raise ValueError(f"expected an object with an int 'step', got {line[:80]!r}")
    return record


def read_log(path: str | Path, up_to: int | None = None) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (none if the file is missing), those after step ``up_to`` left out.

    Each line must be a strict-JSON object with an int ``"step"``. A last line that is not (a crash
    while it was appended) is dropped with a ``RuntimeWarning``.

    Raises:
        RunLogError: a line before the last cannot be read; the message names the file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]
    records = []
    for i, (n, line) in enumerate(lines):
        try:
            records.append(_decode(line))
        except ValueError as e:
            if i < len(lines) - 1:
                raise RunLogError(f"{path}, line {n}: not a record ({e}); only a torn last line is dropped") from e
            warnings.warn(
                f"{path}, line {n}: dropped an incomplete last record (a crash while it was written?): {line[:80]!r}",
                RuntimeWarning,
                stacklevel=2,
            )
    return [r for r in records if up_to is None or r["step"] <= up_to]


def write_log(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Replaces ``path`` with ``records`` atomically: a temporary file in the same directory, fsync,
    ``os.replace``. A crash leaves the old log or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(dumps(r) + "\n" for r in records)  # before the temporary file: a bad record raises here
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself is durable once the directory is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def start_log(path: str | Path, records: list[dict[str, Any]]) -> TextIO:
    """Writes ``records`` as the whole log (atomically) and opens it to append the next ones."""
    write_log(path, records)
    return Path(path).open("a")


def append_record(log: TextIO, record: dict[str, Any]) -> None:
    """Appends ``record`` as one line of strict JSON and flushes it to the operating system."""
    log.write(dumps(record) + "\n")
    log.flush()


def sync_log(log: TextIO) -> None:
    """Makes what was appended durable (fsync), e.g. before the checkpoint whose steps it logs."""
    log.flush()
    os.fsync(log.fileno())
