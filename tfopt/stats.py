"""Statistics over repeated seeds: mean ± std, significance, matched-control drops, bounds.

TensorFlow-free (numpy only), so the report and `recommend` can use it without loading TF.
Accuracies may be fractions or percent; every function keeps the unit it is given, except
`convergence`, which reports percentage points (pp) of a history's fraction accuracies.

The rules, chosen for 2–3 seeds (a t-test has almost no power there, and a 95 % t-interval with
1 degree of freedom is ±12.7 std, which would call everything indistinguishable):

- spread of a group: the sample std (ddof=1); undefined (None) for one seed.
- combined spread of two groups: sqrt(std_a² + std_b²), the std of the difference of one run
  of each. A difference |mean_a − mean_b| that is not larger than it is *not significant*;
  with one seed on either side significance is unknown (None).
- matched-control drop: drop = control − compressed. Paired per seed when both sides have the
  same seeds (mean and std of the per-seed drops: the seed's shared init/data order cancels);
  otherwise mean(control) − mean(compressed) with the combined spread as its std. A drop
  whose |mean| is not larger than its std is not significant (`drop_significant`).
- bounds for `recommend`: accuracy lower bound = mean − std, drop upper bound = mean + std (a
  one-std pessimistic bound; with one seed the bound is the mean itself, flagged by n = 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class Summary:
    """mean, std (ddof=1; None for n = 1) and n of one group of seeds."""
    mean: float
    std: float | None
    n: int

    def text(self, digits: int = 2) -> str:
        """'91.23 ± 0.41 (n=3)', or '91.23 (n=1)' without a spread."""
        spread = f" ± {self.std:.{digits}f}" if self.std is not None else ""
        return f"{self.mean:.{digits}f}{spread} (n={self.n})"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """diff = mean_a − mean_b, the combined spread, and whether |diff| > spread."""
    diff: float
    spread: float | None
    significant: bool | None


@dataclasses.dataclass(frozen=True)
class Drop:
    """control − compressed: mean, std, n, and whether it was paired per seed."""
    mean: float
    std: float | None
    n: int
    paired: bool


def summarize(values: Iterable[float]) -> Summary:
    """Mean, sample std (ddof=1) and count of `values` (one per seed)."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("summarize: no values (expected one per seed)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"summarize: values {arr.tolist()} are not all finite numbers")
    std = float(np.std(arr, ddof=1)) if arr.size > 1 else None
    return Summary(float(arr.mean()), std, int(arr.size))


def group_summaries(rows: Iterable[Mapping], by: tuple[str, ...], value: str
                    ) -> dict[tuple, Summary]:
    """Summaries of `value` per group of `rows` (dicts, one per seed) keyed by the `by` fields.

    Rows lacking `value` (or holding None there, e.g. a failed trial) are skipped.
    """
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        if row.get(value) is None:
            continue
        groups.setdefault(tuple(row.get(k) for k in by), []).append(float(row[value]))
    return {key: summarize(vals) for key, vals in groups.items()}


def _as_summary(x) -> Summary:
    return x if isinstance(x, Summary) else summarize(x)


def combined_spread(a: Summary, b: Summary) -> float | None:
    """sqrt(std_a² + std_b²); None when either side has one seed."""
    if a.std is None or b.std is None:
        return None
    return math.hypot(a.std, b.std)


def compare(a, b) -> Comparison:
    """Is mean(a) − mean(b) larger than the combined spread? (a, b: Summary or values)."""
    a, b = _as_summary(a), _as_summary(b)
    diff = a.mean - b.mean
    spread = combined_spread(a, b)
    return Comparison(diff, spread, None if spread is None else abs(diff) > spread)


def indistinguishable(a, b) -> bool | None:
    """True when two candidates' accuracies differ by no more than their combined spread;
    None when one has a single seed (cannot tell)."""
    sig = compare(a, b).significant
    return None if sig is None else not sig


def matched_drop(control: Mapping[int, float], compressed: Mapping[int, float]) -> Drop:
    """drop = control − compressed from {seed: accuracy} of a control and a compression trial.

    Paired (per-seed drops, their mean and ddof=1 std) when both have the same seeds;
    otherwise unpaired: mean(control) − mean(compressed), std = combined spread.
    """
    if not control or not compressed:
        raise ValueError(f"matched_drop: control seeds {sorted(control)} and compressed seeds "
                         f"{sorted(compressed)}; expected at least one accuracy on each side")
    if set(control) == set(compressed):
        d = summarize(control[s] - compressed[s] for s in sorted(control))
        return Drop(d.mean, d.std, d.n, True)
    c, x = summarize(control.values()), summarize(compressed.values())
    return Drop(c.mean - x.mean, combined_spread(c, x), min(c.n, x.n), False)


def drop_significant(drop: Drop) -> bool | None:
    """|mean drop| > its std (paired: std of the per-seed drops; unpaired: the combined
    spread); None without a spread (one seed)."""
    return None if drop.std is None else abs(drop.mean) > drop.std


def lower_bound(accuracy) -> float:
    """Pessimistic accuracy for `recommend`: mean − std (the mean itself for one seed)."""
    s = _as_summary(accuracy)
    return s.mean - (s.std or 0.0)


def drop_upper_bound(drop: Drop) -> float:
    """Pessimistic drop for `recommend`: mean + std (the mean itself without a spread)."""
    return drop.mean + (drop.std or 0.0)


def convergence(history, k: int = 3, tolerance_pp: float = 0.5, key: str | None = None
                ) -> tuple[bool, float]:
    """(converged, gain_last_k_pp) of a training history.

    gain_last_k_pp = 100 × (best of the last k epochs − best before them), in percentage
    points of `key` (default "val_accuracy" if present, else "accuracy"; fractions in [0, 1]).
    converged: the run had more than k epochs and gained at most `tolerance_pp` in its last k,
    so the report can say "not converged: +x pp in the last k epochs" otherwise. Choose
    k <= the early-stopping patience p: a run stopped by patience gained nothing in its last p
    epochs, so it then counts as converged by construction.

    Args:
      history: `fit`'s result (its "history" is used), a per-epoch dict, or a list of values.
      k: Epochs at the end to look at (>= 1).
      tolerance_pp: Largest gain (pp) that still counts as converged.
      key: Which per-epoch list of a dict history to read.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r}; expected an int >= 1")
    values = _history_values(history, key)
    if len(values) <= k:   # too short to tell: gain over the whole run, not converged
        return False, 100.0 * (max(values) - values[0])
    gain = 100.0 * (max(values[-k:]) - max(values[:-k]))
    return gain <= tolerance_pp, gain


def _history_values(history, key):
    if isinstance(history, Mapping):
        h = history.get("history", history)
        name = key or ("val_accuracy" if h.get("val_accuracy") else "accuracy")
        if "acc" not in name:
            raise ValueError(f"convergence: key={name!r}; expected an accuracy (higher is "
                             "better), e.g. 'val_accuracy' or 'accuracy'")
        if not h.get(name):
            raise ValueError(f"convergence: history has no {name!r} values "
                             f"(keys: {sorted(h)})")
        values = h[name]
    else:
        values = history
    values = [float(v) for v in values]
    if not values:
        raise ValueError("convergence: the history is empty")
    return values


__all__ = ["Comparison", "Drop", "Summary", "combined_spread", "compare", "convergence",
           "drop_significant", "drop_upper_bound", "group_summaries", "indistinguishable",
           "lower_bound", "matched_drop", "summarize"]
