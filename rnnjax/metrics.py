"""Scores of generated sequences against their targets: edit distance, character error rate, exact match.

Plain Python over strings or any sequences of hashable tokens (decoded captions, token-id lists); the
decoders in :mod:`rnnjax.decoding` produce the ids, the data's vocabulary turns them into text.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

__all__ = ["character_error_rate", "edit_distance", "exact_match"]


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """The Levenshtein distance: the fewest insertions, deletions and substitutions of one token each that
    turn ``a`` into ``b`` (Levenshtein 1966; the dynamic programme of Wagner & Fischer 1974).

    ``D[i, j] = min(D[i-1, j] + 1, D[i, j-1] + 1, D[i-1, j-1] + [a_i != b_j])`` with ``D[i, 0] = i`` and
    ``D[0, j] = j``; kept one row at a time, so it needs ``O(len(b))`` memory.

    Example:
        >>> edit_distance("kitten", "sitting")
        3
    """
    for name, s in (("a", a), ("b", b)):
        if not isinstance(s, Sequence):
            raise ValueError(f"{name}: expected a sequence (a string, a list of tokens), got {type(s).__name__}")
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _check_pairs(predictions: Sequence, targets: Sequence) -> None:
    if len(predictions) != len(targets):
        raise ValueError(f"predictions: expected one per target ({len(targets)}), got {len(predictions)}")
    if len(targets) == 0:
        raise ValueError("targets: expected at least one target, got none")


def character_error_rate(predictions: Sequence[Sequence[Hashable]], targets: Sequence[Sequence[Hashable]]) -> float:
    """The edits needed over the characters there are: ``sum_i edit_distance(p_i, t_i) / sum_i len(t_i)``.

    Pooled over the corpus (as speech recognition's word error rate is), so a long target weighs more than a
    short one; 0 is perfect, and it exceeds 1 when the predictions are longer than the targets and wrong.

    Args:
        predictions, targets: as many strings (or token sequences) of each; the targets not all empty.
    """
    _check_pairs(predictions, targets)
    total = sum(len(t) for t in targets)
    if total == 0:
        raise ValueError("targets: expected at least one character in all, got only empty targets")
    return sum(edit_distance(p, t) for p, t in zip(predictions, targets, strict=True)) / total


def exact_match(predictions: Sequence[Sequence[Hashable]], targets: Sequence[Sequence[Hashable]]) -> float:
    """The share of predictions equal to their target, token for token."""
    _check_pairs(predictions, targets)
    return sum(list(p) == list(t) for p, t in zip(predictions, targets, strict=True)) / len(targets)
