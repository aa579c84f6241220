"""Bach's four-part chorales as piano rolls, from the corpus that ships with music21.

Source: the ``music21`` package (``pip install music21``, part of the ``[data]`` extra) carries the chorales as
MusicXML files under ``music21/corpus/bach``; ``music21.corpus.chorales.Iterator()`` lists 371 of them in
Riemenschneider's numbering, which name 350 distinct files (21 chorales appear twice in the numbering). Each
distinct file is loaded once, in the order of its first appearance.

Piano roll: the sung parts only (a part whose name starts with Soprano, Alto, Tenor or Bass; the instruments
and the continuo that some chorales add are left out; the three Humdrum files, whose four parts are unnamed,
keep all four), on a grid of ``steps_per_quarter`` steps per quarter
note (default 2: eighth notes). ``roll[t, j] = 1`` when pitch ``LOWEST_PITCH + j`` sounds during step ``t`` (a
held note stays 1; a note from offset ``a`` to ``b`` quarters covers steps ``round(a * spq) .. round(b * spq) - 1``;
notes shorter than a step that round to nothing are dropped). The pitches span MIDI ``LOWEST_PITCH`` = 36 (C2)
to ``HIGHEST_PITCH`` = 81 (A5), the range of the sung parts over all 350 chorales: 46 columns.

Split (:func:`split`): the chorales (groups: the file, so a chorale never lies in two parts) are shuffled by
``default_rng(seed)`` and dealt to ``train`` / ``valid`` / ``test`` by ``FRACTIONS`` (0.8 / 0.1 / 0.1 of the
chorales: 280 / 35 / 35 of the 350).

Parsing all chorales takes music21 about 15 s, so :func:`load` keeps the rolls in an ``.npz`` under
``$XDG_CACHE_HOME/rnnjax`` (default ``~/.cache/rnnjax``; ``cache_dir=`` overrides, ``cache=False`` skips it),
named by music21's version, the grid and the number of chorales. music21's own scratch folder is pointed at a
temporary directory while parsing, so its parse cache never lands in the repository.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

from rnnjax.data.packages import require

__all__ = [
    "FRACTIONS", "HIGHEST_PITCH", "LOWEST_PITCH", "Chorales", "chorale_files", "load", "parse", "split", "to_midi",
]  # fmt: skip

LOWEST_PITCH = 36
"""MIDI pitch of column 0 (C2), the lowest sung note in the corpus."""
HIGHEST_PITCH = 81
"""MIDI pitch of the last column (A5), the highest sung note in the corpus."""
NUM_PITCHES = HIGHEST_PITCH - LOWEST_PITCH + 1
FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
"""Shares of the chorales in each part."""
VOICES = ("soprano", "alto", "tenor", "bass")


def chorale_files() -> list[str]:
    """The corpus names (``"bach/bwv269"``, ...) of the distinct chorales of ``corpus.chorales.Iterator()``,
    in Riemenschneider order (350 names for its 371 numbers)."""
    chorales = require("music21.corpus.chorales", "rj.data.chorales")
    names = list(chorales.Iterator(returnType="filename"))
    return list(dict.fromkeys(names))


def _vocal(score) -> list:
    sung = [p for p in score.parts if (p.partName or "").strip().lower().split(" ")[0] in VOICES]
    if not sung and len(score.parts) == 4 and not any(p.partName for p in score.parts):
        return list(score.parts)  # three Humdrum files name no parts: their four spines are the voices
    return sung


def parse(name: str, steps_per_quarter: int = 2) -> np.ndarray:
    """The piano roll ``(time, NUM_PITCHES)`` uint8 of one corpus chorale (see the module docstring)."""
    corpus = require("music21.corpus", "rj.data.chorales")
    score = corpus.parse(name, forceSource=True)
    parts = _vocal(score)
    if not parts:
        raise ValueError(f"name: expected a chorale with sung parts, got parts {[p.partName for p in score.parts]}")
    T = int(np.ceil(float(max(p.highestTime for p in parts)) * steps_per_quarter))
    roll = np.zeros((T, NUM_PITCHES), np.uint8)
    for part in parts:
        for note in part.flatten().notes:
            start = round(float(note.offset) * steps_per_quarter)
            end = round(float(note.offset + note.quarterLength) * steps_per_quarter)
            for pitch in note.pitches:
                if not LOWEST_PITCH <= pitch.midi <= HIGHEST_PITCH:
                    raise ValueError(f"{name}: pitch {pitch.midi} outside [{LOWEST_PITCH}, {HIGHEST_PITCH}]")
                roll[start:end, pitch.midi - LOWEST_PITCH] = 1
    return roll


def split(n: int, seed: int = 0, fractions: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """``{part: sorted chorale indices}``: ``range(n)`` shuffled by ``default_rng(seed)``, cut by ``fractions``."""
    fractions = dict(FRACTIONS if fractions is None else fractions)
    if not fractions or any(not 0 < f <= 1 for f in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-9:
        raise ValueError(f"fractions: expected positive fractions summing to 1, got {fractions}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < len(fractions):
        raise ValueError(f"n: expected at least {len(fractions)} chorales (one a part), got {n!r}")
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.round(np.cumsum([0.0, *fractions.values()]) * n).astype(int)
    bounds[1:-1] = np.maximum(bounds[1:-1], np.arange(1, len(fractions)))  # at least one chorale a part
    bounds[1:-1] = np.minimum(bounds[1:-1], n - len(fractions) + np.arange(1, len(fractions)))
    return {name: np.sort(order[a:b]) for name, a, b in zip(fractions, bounds[:-1], bounds[1:], strict=True)}


@dataclasses.dataclass(frozen=True)
class Chorales:
    """Piano rolls and their split.

    Attributes:
        rolls: one ``(time_i, NUM_PITCHES)`` uint8 array per chorale.
        names: the corpus name of each chorale.
        parts: ``{part: chorale indices}`` (see :func:`split`).
        steps_per_quarter: the grid.
    """

    rolls: list[np.ndarray]
    names: list[str]
    parts: dict[str, np.ndarray]
    steps_per_quarter: int
    lowest_pitch: int = LOWEST_PITCH

    def part(self, name: str) -> list[np.ndarray]:
        """The rolls of one part."""
        return [self.rolls[i] for i in self.parts[name]]


def _cache_path(cache_dir: str | os.PathLike | None, version: str, steps_per_quarter: int, limit: int | None) -> Path:
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnnjax"
    return root / f"chorales-music21-{version}-spq{steps_per_quarter}-{'all' if limit is None else limit}.npz"


def _parse_all(names: list[str], steps_per_quarter: int) -> list[np.ndarray]:
    environment = require("music21.environment", "rj.data.chorales")
    env = environment.Environment()
    old = env["directoryScratch"]
    with tempfile.TemporaryDirectory(prefix="rnnjax-music21-") as scratch:
        env["directoryScratch"] = scratch
        try:
            return [parse(name, steps_per_quarter) for name in names]
        finally:
            env["directoryScratch"] = old


def load(
    steps_per_quarter: int = 2,
    *,
    limit: int | None = None,
    seed: int = 0,
    fractions: dict[str, float] | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Chorales:
    """The chorales as piano rolls, split by chorale.

    Args:
        steps_per_quarter: grid steps per quarter note (2: eighths, 4: sixteenths).
        limit: only the first ``limit`` chorales of :func:`chorale_files` (a quick look; None: all 350).
        seed: of the split.
        fractions: ``{part: share}`` (default :data:`FRACTIONS`).
        cache, cache_dir: keep the parsed rolls in an ``.npz`` (see the module docstring).

    Raises:
        MissingDataPackage: when music21 is not installed, naming the install command.
    """
    if isinstance(steps_per_quarter, bool) or not isinstance(steps_per_quarter, int) or steps_per_quarter < 1:
        raise ValueError(f"steps_per_quarter: expected a positive int, got {steps_per_quarter!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit: expected None or a positive int, got {limit!r}")
    music21 = require("music21", "rj.data.chorales")
    path = _cache_path(cache_dir, music21.__version__, steps_per_quarter, limit)
    if cache and path.exists():
        with np.load(path) as f:
            names, flat, lengths = list(f["names"]), f["rolls"], f["lengths"]
        rolls = np.split(flat, np.cumsum(lengths)[:-1])
    else:
        names = chorale_files()[:limit]
        rolls = _parse_all(names, steps_per_quarter)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            lengths = np.array([len(r) for r in rolls])
            np.savez_compressed(tmp, names=np.array(names), rolls=np.concatenate(rolls), lengths=lengths)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
    return Chorales(list(rolls), [str(n) for n in names], split(len(names), seed, fractions), steps_per_quarter)


def to_midi(
    roll: np.ndarray, path: str | os.PathLike, steps_per_quarter: int = 2, lowest_pitch: int = LOWEST_PITCH
) -> Path:
    """Writes a piano roll as a MIDI file (with music21): each run of 1s in a column is one note.

    Args:
        roll: ``(time, pitches)`` of 0/1, pitch ``lowest_pitch + j`` in column ``j``.
        path: the ``.mid`` file to write.
        steps_per_quarter: grid steps per quarter note (2: eighth notes, as :func:`load`'s default).
        lowest_pitch: the MIDI pitch of column 0.
    """
    music21 = require("music21", "rj.data.chorales.to_midi")
    roll = np.asarray(roll)
    if roll.ndim != 2:
        raise ValueError(f"roll: expected (time, pitches), got shape {roll.shape}")
    part = music21.stream.Part()
    silent = np.zeros((1, roll.shape[1]), int)
    padded = np.vstack([silent, (roll > 0).astype(int), silent])
    for j in range(roll.shape[1]):
        change = np.flatnonzero(np.diff(padded[:, j]))
        for start, end in zip(change[::2], change[1::2], strict=True):
            note = music21.note.Note(midi=lowest_pitch + j, quarterLength=(end - start) / steps_per_quarter)
            part.insert(start / steps_per_quarter, note)
    music21.stream.Score([part]).write("midi", fp=str(path))
    return Path(path)
