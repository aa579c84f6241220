"""The run directory's lock and log: strict JSON, torn last lines, atomic rewrites, one process at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from rnnjax.checkpoint import CheckpointError
from rnnjax.runlog import RunDirLocked, RunLogError, append_record, lock_run_dir, read_log, start_log, write_log

RECORDS = [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}, {"step": 3, "diverged": "loss = nan"}]


def test_write_then_read_round_trips_and_cuts_at_a_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write_log(path, RECORDS)
    assert read_log(path) == RECORDS
    assert read_log(path, up_to=2) == RECORDS[:2]
    assert read_log(tmp_path / "missing.jsonl") == []
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary file left


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:2]) + '{"step": 3, "lo')
    with pytest.warns(RuntimeWarning, match=r"metrics.jsonl, line 3: dropped an incomplete last record"):
        assert read_log(path) == RECORDS[:2]


@pytest.mark.parametrize("bad", ['{"step": 2, "lo', '{"step": 2, "loss": NaN}', '{"loss": 1.0}', "[2]"])
def test_a_bad_record_before_the_last_names_the_file_and_line(tmp_path, bad):
    path = tmp_path / "metrics.jsonl"
    path.write_text(f'{{"step": 1}}\n{bad}\n{{"step": 3}}\n')
    with pytest.raises(RunLogError, match=r"metrics.jsonl, line 2: not a record"):
        read_log(path)


def test_logs_are_strict_json(tmp_path):
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_log(tmp_path / "metrics.jsonl", [{"step": 1, "loss": float("nan")}])
    assert not (tmp_path / "metrics.jsonl").exists()
    with start_log(tmp_path / "metrics.jsonl", RECORDS[:1]) as log, pytest.raises(ValueError):
        append_record(log, {"step": 2, "loss": float("inf")})
    assert read_log(tmp_path / "metrics.jsonl") == RECORDS[:1]  # nothing half-written


def test_a_failed_rewrite_leaves_the_old_log(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    write_log(path, RECORDS)

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_log(path, RECORDS[:1])
    assert read_log(path) == RECORDS
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


HOLDER = textwrap.dedent(
    """
    import sys
    from rnnjax.runlog import lock_run_dir
    with lock_run_dir(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """
)


def test_a_second_process_is_refused_while_the_first_holds_the_directory(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirLocked, match=rf"{tmp_path} is in use by process {holder.pid}") as e:
            with lock_run_dir(tmp_path):
                pass
        assert isinstance(e.value, CheckpointError)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    with lock_run_dir(tmp_path):  # released when its holder is gone
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


def test_the_lock_is_exclusive_within_a_process_too(tmp_path):
    with lock_run_dir(tmp_path / "run"), pytest.raises(RunDirLocked, match=f"process {os.getpid()}"):
        with lock_run_dir(tmp_path / "run"):
            pass
    with lock_run_dir(tmp_path / "run"):
        pass
