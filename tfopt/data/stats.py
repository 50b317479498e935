"""Per-channel mean/std of a train split, computed once and cached on disk.

Used for sources without published constants (`folder:PATH`, tfds names other than the ones in
`info.NORMALISATION`); folder sources also cache which files failed to decode. Cache directory:
the `cache_dir` argument of `tfopt.data.load` (the CLIs pass WORKDIR/data_cache), else
`$TFOPT_CACHE_DIR`, else `~/.cache/tfopt`; files are `<dir>/stats/<key>.json`, where the key
hashes the data (file names, sizes, mtimes), so a changed folder is never served stale values.
Every new cache file is announced with one log line naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Callable, Iterable

import numpy as np

# Examples read to estimate the statistics of a large split (a 20,000-image sample gives
# the mean/std to about 3 decimals, which is all the normalisation needs).
MAX_EXAMPLES = 20_000


def cache_dir(explicit: str | None = None) -> str:
    """<explicit or $TFOPT_CACHE_DIR or ~/.cache/tfopt>/stats."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "tfopt")
    root = explicit or os.environ.get("TFOPT_CACHE_DIR") or default
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


def cached_json(key: str, compute: Callable[[], Any], what: str,
                directory: str | None = None) -> Any:
    """`compute()` (a JSON-able value) the first time for `key`, then read from the cache file."""
    path = os.path.join(cache_dir(directory), re.sub(r"[^A-Za-z0-9_.-]+", "_", key) + ".json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = compute()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"key": key, "value": value}, f)
        os.replace(tmp, path)
    except OSError as err:   # a read-only cache dir costs a recomputation, nothing else
        logging.warning("tfopt.data: could not cache %s in %s (%s)", what, path, err)
    else:
        logging.warning("tfopt.data: cached %s in %s", what, path)
    return value


def cached_stats(key: str, compute: Callable[[], tuple[tuple[float, ...], tuple[float, ...]]],
                 directory: str | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """`compute()` -> (mean, std) the first time for `key`, then read from the cache file."""
    mean, std = cached_json(key, lambda: list(compute()), "mean/std", directory)
    return tuple(mean), tuple(std)
