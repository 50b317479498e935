"""Deterministic class-stratified subsets of a labelled list (folder sources).

`take(labels, n)` keeps n examples with every class within one of n / classes (a class with
fewer examples than its share gives all it has; the rest is spread over the others).
`holdout(labels, fraction)` sets aside a stratified validation part. Both depend only on the
labels and the fixed `SEED`, never on a run's seed, so the train, validation and test calls of
one run (and of every later run) agree on which files belong where. Subsets are nested: the
first `take` of 1,000 is inside the `take` of 2,000.
"""

from __future__ import annotations

import numpy as np

SEED = 20_240_611   # fixed: subsets must not change with a run's --seed


def _permutation(label: int, size: int, stream: int) -> np.ndarray:
    return np.random.default_rng([SEED, stream, label]).permutation(size)


def quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """Examples to keep per class: n spread as evenly as the class sizes allow (water-filling).

    The remainder of n / classes goes to the lowest class indices; a full class drops out.
    """
    counts = np.asarray(counts, np.int64)
    if n >= counts.sum():
        return counts.copy()
    quota = np.zeros_like(counts)
    remaining = int(n)
    while remaining > 0:
        open_ = np.flatnonzero(quota < counts)
        share, extra = divmod(remaining, len(open_))
        if share == 0:
            quota[open_[:extra]] += 1
            break
        for c in open_:
            add = min(share, int(counts[c] - quota[c]))
            quota[c] += add
            remaining -= add
    return quota


def take(labels: np.ndarray, n: int | None, num_classes: int) -> np.ndarray:
    """Sorted indices of a stratified subset of `n` of `labels` (all of them if n is None)."""
    labels = np.asarray(labels)
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    quota = quotas(np.bincount(labels, minlength=num_classes), n)
    picks = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        picks.append(members[_permutation(c, len(members), 0)[:quota[c]]])
    return np.sort(np.concatenate(picks)) if picks else np.arange(0)


def holdout(labels: np.ndarray, fraction: float, num_classes: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), both sorted: round(fraction x class size) of each
    class is held out, at least 1 and leaving at least 1 (a 1-image class stays in train)."""
    labels = np.asarray(labels)
    train, val = [], []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        k = 0 if len(members) < 2 else min(max(int(round(fraction * len(members))), 1),
                                            len(members) - 1)
        order = _permutation(c, len(members), 1)
        val.append(members[order[:k]])
        train.append(members[order[k:]])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
