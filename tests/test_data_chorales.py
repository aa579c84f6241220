"""rj.data.chorales: Bach chorales from music21's corpus as piano rolls, split by chorale."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import rnnjax as rj

ch = rj.data.chorales


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return ch.load(limit=6, cache_dir=tmp_path_factory.mktemp("cache"))


def test_the_corpus_lists_350_distinct_chorales():
    names = ch.chorale_files()
    assert len(names) == 350 and len(set(names)) == 350  # documented: 371 numbers, 350 files
    assert names[0] == "bach/bwv269"  # Riemenschneider 1, "Aus meines Herzens Grunde"


def test_rolls_have_the_documented_grid_and_range(small):
    assert len(small.rolls) == 6 and small.names == ch.chorale_files()[:6]
    for roll in small.rolls:
        assert roll.dtype == np.uint8 and roll.ndim == 2 and roll.shape[1] == ch.NUM_PITCHES == 46
        assert set(np.unique(roll)) <= {0, 1}
        voices = roll.sum(1)
        assert voices.max() <= 4 and np.mean(voices == 4) > 0.8  # four voices sing most of the time
    # BWV 269 is 63 quarter notes long (3/4, 21 bars): 126 eighth-note steps.
    assert small.rolls[0].shape == (126, 46)
    assert small.steps_per_quarter == 2 and small.lowest_pitch == 36


def test_a_finer_grid_doubles_the_steps(small, tmp_path):
    fine = ch.load(steps_per_quarter=4, limit=3, cache=False, cache_dir=tmp_path)
    for coarse, sixteenths in zip(small.rolls, fine.rolls, strict=False):
        assert len(sixteenths) == 2 * len(coarse)
        assert np.array_equal(sixteenths[::2], coarse)  # eighths fall on every other sixteenth
    assert not list(tmp_path.iterdir())  # cache=False writes nothing


def test_the_split_is_by_chorale_and_seeded():
    parts = ch.split(350, seed=0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 280, "valid": 35, "test": 35}
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(350))
    assert all(np.array_equal(parts[k], ch.split(350, seed=0)[k]) for k in parts)
    assert not np.array_equal(parts["test"], ch.split(350, seed=1)["test"])
    tiny = ch.split(3, seed=0)
    assert all(len(v) == 1 for v in tiny.values())  # every part gets a chorale


def test_the_cache_returns_the_same_rolls(small, tmp_path_factory):
    cache_dir = tmp_path_factory.getbasetemp() / "cache0"
    files = list(cache_dir.glob("chorales-music21-*-spq2-6.npz"))
    assert len(files) == 1
    again = ch.load(limit=6, cache_dir=cache_dir)
    assert again.names == small.names
    assert all(np.array_equal(a, b) for a, b in zip(again.rolls, small.rolls, strict=True))
    assert all(np.array_equal(again.parts[k], small.parts[k]) for k in small.parts)
    assert sum(len(r) for r in small.part("train")) > 0


def test_a_missing_music21_names_the_install_command(monkeypatch, tmp_path):
    real = importlib.import_module

    def fake(name, *args):
        if name.split(".")[0] == "music21":
            raise ModuleNotFoundError("No module named 'music21'", name="music21")
        return real(name, *args)

    monkeypatch.setattr(rj.data.packages.importlib, "import_module", fake)
    with pytest.raises(rj.data.MissingDataPackage, match="pip install"):
        ch.load(limit=2, cache_dir=tmp_path)


def test_midi_round_trip(tmp_path):
    roll = np.zeros((8, 3), np.uint8)
    roll[0:4, 0] = 1  # a half note on pitch 60
    roll[2:3, 2] = 1  # an eighth on pitch 62, starting on beat 2
    path = rj.data.chorales.to_midi(roll, tmp_path / "x.mid", steps_per_quarter=2, lowest_pitch=60)
    import music21

    notes = sorted((float(n.offset), n.pitch.midi, float(n.quarterLength))
                   for n in music21.converter.parse(str(path)).flatten().notes)  # fmt: skip
    assert notes == [(0.0, 60, 2.0), (1.0, 62, 0.5)]

    with pytest.raises(ValueError, match="roll"):
        rj.data.chorales.to_midi(np.zeros(8), tmp_path / "y.mid")
