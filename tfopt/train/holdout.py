"""`holdout_split`: a validation split carved from the train split, for early stopping.

The test split must never choose the model (the epoch to stop at, the weights to keep), or its
accuracy stops being a test. So the last `round(val_fraction * N)` images of the (limited)
train split are held out for validation and the first ones are trained on:

    train, val_ds, info = holdout_split("fashion_mnist", val_fraction=0.1, limit=12000)
    # train: EpochData of images 0..10799 (augmented, shuffled, exact resume); val: 10800..11999

The tail is class-mixed for Fashion-MNIST and the tfds sources, whose files are shuffled; a
source stored class by class would hold out only the last classes, so the split checks that
the validation images cover every class and says so if they do not.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

import tfopt.data as data


def holdout_size(num_examples: int, val_fraction: float) -> int:
    """Images held out for validation: round(val_fraction * num_examples), at least 1."""
    return max(1, int(round(val_fraction * num_examples)))


def holdout_split(source: str, *, val_fraction: float, batch_size: int = 128,
                  limit: int | None = None, seed: int = 0, augment: bool = False,
                  val_batch_size: int = 500, **load_kw):
    """(train, val_ds, train_info): the train split of `source` minus a held-out tail.

    Args:
      source: Any `tfopt.data.load` source.
      val_fraction: Fraction of the (limited) train split to hold out, in (0, 1).
      batch_size: Train batch size (images per step).
      limit: Use only the first `limit` train images (before the split); None: all.
      seed: Shuffle/augmentation seed of the train part.
      augment: The paper's augmentation on the train part (never on validation).
      val_batch_size: Validation batch size (images).
      **load_kw: More `tfopt.data.load` arguments (data_dir, image_size, to_rgb, ...).

    Returns:
      train (`EpochData`, so `fit` resumes it exactly; `train.dataset` for plain Keras),
      val_ds (a tf.data.Dataset, un-augmented, in file order, cached in memory after the first
      pass; `holdout_size(total, val_fraction)` images), the train part's DatasetInfo
      (num_examples = train images only).

    Raises:
      ValueError: val_fraction outside (0, 1), a split too small to hold out from, or a
        held-out tail that misses a class.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not (
            0 < val_fraction < 1):
        raise ValueError(f"val_fraction={val_fraction!r}; expected a number in (0, 1)")
    full, full_info = data.load(source, "train", batch_size=val_batch_size, limit=limit,
                                shuffle=False, augment=False, seed=seed, **load_kw)
    total = full_info.num_examples
    n_val = holdout_size(total, val_fraction)
    if n_val >= total:
        raise ValueError(f"val_fraction={val_fraction!r} of {total} train images leaves none "
                         "to train on; use a smaller fraction or more images")
    train, info = data.load_epochs(source, "train", batch_size=batch_size, limit=total - n_val,
                                   augment=augment, seed=seed, **load_kw)
    val_ds = (full.unbatch().skip(total - n_val).batch(val_batch_size).cache()
              .apply(tf.data.experimental.assert_cardinality(math.ceil(n_val / val_batch_size))))
    labels = np.concatenate([np.asarray(y).reshape(-1) for _, y in val_ds])   # fills the cache
    missing = sorted(set(range(info.num_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"val_fraction={val_fraction!r}: the last {n_val} train images of "
                         f"{source!r} hold no image of class(es) {missing[:10]}; this source is "
                         "not class-mixed at its end, so use a larger fraction or a source with "
                         "a separate validation split")
    return train, val_ds, info


__all__ = ["holdout_size", "holdout_split"]
