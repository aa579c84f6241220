"""Shared fixtures: a fresh PRNG key per call, strict dtype promotion and float64 on request."""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from pathlib import Path

import jax
import pytest

MAPS = "/proc/self/maps"
MAX_MAPS = 30_000
"""XLA:CPU maps memory for every compiled program (about 90 mappings for the grad of one small unroll) and JAX
keeps every program it compiled; a test worker that compiles thousands reaches the kernel's limit of 65,530
mappings (vm.max_map_count) and crashes with a segfault inside XLA (seen in CI at ~1,600 tests)."""


COMPILE_CACHE = os.environ.get("RNNJAX_TEST_CACHE")
"""Opt-in: a directory for JAX's persistent compilation cache, shared by the workers and the child processes.
On three test files it helped (tests/test_dtypes.py, tests/test_fused.py, tests/test_padding.py: 94 s against
206 s on 2 cores, from an empty cache), but over the whole suite, with about 18,000 entries, the run was slower
than without it (63% of the tests in 29 minutes, against 78% in 23), so it is off unless asked for."""
if COMPILE_CACHE:
    settings = {
        "jax_compilation_cache_dir": COMPILE_CACHE,
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    for name, value in settings.items():
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)  # the child processes (notebooks, experiments, sharding) read these


@pytest.fixture(autouse=True)
def _bounded_compiled_programs():
    """After a test, JAX's caches are cleared if this process holds more than ``MAX_MAPS`` memory mappings."""
    yield
    if os.path.exists(MAPS):
        with open(MAPS) as maps:
            if sum(1 for _ in maps) > MAX_MAPS:
                jax.clear_caches()


@pytest.fixture
def getkey():
    """``getkey()`` returns a new key each call, deterministic per test (as in Equinox's tests)."""
    counter = itertools.count()
    base = jax.random.key(0)
    return lambda: jax.random.fold_in(base, next(counter))


@pytest.fixture
def x64():
    """Runs the test with 64-bit floats enabled."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def strict_dtypes():
    """Mixed dtypes must be explicit: float32 params never silently meet float64 inputs.

    Used by the tests of the core (cells, scan, network); Optax itself is not written for it.
    """
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def load_script():
    """``load_script("experiments", "adding_problem")``: a script of the project as a module."""
    root = Path(__file__).resolve().parents[1]

    def load(folder: str, name: str):
        spec = importlib.util.spec_from_file_location(f"{folder}.{name}", root / folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
        return module

    return load


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, in orbax or in our code."""


@pytest.fixture
def kill_saves(monkeypatch):
    """``kill_saves()`` makes every later orbax save die (raise :class:`Killed`) after writing its files and
    before orbax renames them into place, as a SIGKILL mid-save would; ``kill_saves(False)`` lets saves
    finish again. Patches orbax's private ``AtomicRenameTemporaryPath.finalize`` (orbax-checkpoint 0.12)."""
    from orbax.checkpoint._src.path import atomicity

    async def finalize(self):
        raise Killed

    def kill(on: bool = True) -> None:
        if on:
            monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", finalize)
        else:
            monkeypatch.undo()

    return kill
