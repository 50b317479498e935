"""`synthetic`: deterministic random images and labels, for tests and smoke runs.

Spec: "synthetic" or "synthetic:HxWxC[:CLASSES[:TRAIN_EXAMPLES]]", e.g. "synthetic:8x8x3:4:256".
Each class has a fixed random prototype image; an example is its class prototype plus noise,
so a small CNN can learn the task (useful to check that training lowers the loss).
The test split has a quarter as many examples as the train split (at least 16).
"""

from __future__ import annotations

import numpy as np

DEFAULT_SHAPE = (32, 32, 3)
DEFAULT_CLASSES = 10
DEFAULT_TRAIN_EXAMPLES = 1024


def parse_spec(source: str) -> tuple[tuple[int, int, int], int, int]:
    """("synthetic:8x8x3:4:256") -> ((8, 8, 3), 4, 256); a ValueError for a malformed spec."""
    parts = source.split(":")[1:]
    usage = "expected 'synthetic[:HxWxC[:CLASSES[:TRAIN_EXAMPLES]]]', e.g. 'synthetic:8x8x3:4:256'"
    if len(parts) > 3:
        raise ValueError(f"source={source!r}: {usage}")
    try:
        shape = tuple(int(v) for v in parts[0].split("x")) if parts else DEFAULT_SHAPE
        classes = int(parts[1]) if len(parts) > 1 else DEFAULT_CLASSES
        examples = int(parts[2]) if len(parts) > 2 else DEFAULT_TRAIN_EXAMPLES
    except ValueError as err:
        raise ValueError(f"source={source!r}: {usage}") from err
    if len(shape) != 3 or min(shape) < 1 or classes < 1 or examples < 1:
        raise ValueError(f"source={source!r}: {usage} (all numbers >= 1)")
    return shape, classes, examples


def make_arrays(source: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, H, W, C], labels int32 [N]); the same arguments give the same arrays."""
    shape, classes, train_examples = parse_spec(source)
    n = train_examples if split == "train" else max(16, train_examples // 4)
    prototypes = np.random.default_rng(12345).uniform(40, 215, size=(classes, *shape))
    rng = np.random.default_rng(0 if split == "train" else 1)
    labels = rng.integers(0, classes, size=n).astype(np.int32)
    noise = rng.normal(0.0, 40.0, size=(n, *shape))
    images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
    return images, labels
