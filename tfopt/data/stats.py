"""Per-channel mean/std of a train split, computed once and cached on disk.

Used for sources without published constants (`folder:PATH`, tfds names other than the ones in
`info.NORMALISATION`). Cache: `$TFOPT_CACHE_DIR` (default `~/.cache/tfopt`) / stats/<key>.json.
"""

from __future__ import annotations

import json
import os
import re
from typing import Callable, Iterable

import numpy as np

# Examples read to estimate the statistics of a large split (a 20,000-image sample gives
# the mean/std to about 3 decimals, which is all the normalisation needs).
MAX_EXAMPLES = 20_000


def cache_dir() -> str:
    default = os.path.join(os.path.expanduser("~"), ".cache", "tfopt")
    root = os.environ.get("TFOPT_CACHE_DIR") or default
    return os.path.join(root, "stats")


def channel_stats(batches: Iterable[np.ndarray]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and (population) std per channel over [N, H, W, C] batches, scaled to [0, 1]."""
    total = total_sq = None
    count = 0
    values = np.arange(256) / 255.0
    for batch in batches:
        batch = np.asarray(batch)
        if batch.dtype == np.uint8:   # exact and fast: per-channel histograms
            flat = batch.reshape(-1, batch.shape[-1])
            hist = np.stack([np.bincount(flat[:, c], minlength=256) for c in range(flat.shape[1])])
            s, s2, n = hist @ values, hist @ (values * values), len(flat)
        else:
            x = batch.astype(np.float64).reshape(-1, batch.shape[-1])
            s, s2, n = x.sum(0), (x * x).sum(0), len(x)
        total = s if total is None else total + s
        total_sq = s2 if total_sq is None else total_sq + s2
        count += n
    if not count:
        raise ValueError("cannot compute mean/std of an empty split")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 1e-12))
    return tuple(float(round(v, 6)) for v in mean), tuple(float(round(v, 6)) for v in std)


def cached_stats(key: str, compute: Callable[[], tuple[tuple[float, ...], tuple[float, ...]]]
                 ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """`compute()` the first time for `key`, then read from the cache file."""
    path = os.path.join(cache_dir(), re.sub(r"[^A-Za-z0-9_.-]+", "_", key) + ".json")
    try:
        with open(path) as f:
            data = json.load(f)
        return tuple(data["mean"]), tuple(data["std"])
    except (OSError, ValueError, KeyError):
        pass
    mean, std = compute()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump({"key": key, "mean": mean, "std": std}, f)
    os.replace(tmp, path)
    return mean, std
