"""`EpochData`: a loaded train split with what an exactly resumable trainer needs.

`tfopt.data.load_epochs` returns one; `tfopt.train.fit` replays its epochs so that a resumed
run sees the same batches as an uninterrupted one:

    train, info = tfopt.data.load_epochs("fashion_mnist", "train", augment=True)
    model.fit(train.dataset, epochs=3)             # plain Keras: every pass a new seeded epoch
    stream, steps = train.stream(1, 3)             # epochs 1 and 2 only, exactly as they were

The fields are explicit, so nothing hides on the tf.data object (a `.map()` on `dataset` gives
a plain dataset, which every trainer accepts but iterates without exact replay).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class EpochData:
    """A split as seeded epochs.

    Attributes:
      dataset: The Keras-ready dataset: each pass is a new seeded epoch (batches of (x, y)).
      steps: Batches per epoch.
      num_examples: Images per epoch.
      epoch_fn: Epoch index (int, or an int64 tensor when `tensor_epoch`) -> that epoch's
        batches, always the same for the same index.
      tensor_epoch: Whether `epoch_fn` takes an int64 tensor, so that a stream of epochs is
        one `flat_map` (else one dataset per epoch, concatenated).
    """

    dataset: tf.data.Dataset
    steps: int
    num_examples: int
    epoch_fn: Callable[[Any], tf.data.Dataset]
    tensor_epoch: bool = False

    def epoch(self, index: int) -> tf.data.Dataset:
        """The batches of epoch `index` (0-based)."""
        return self.epoch_fn(index)

    def stream(self, initial_epoch: int, epochs: int) -> tuple[tf.data.Dataset, int]:
        """Epochs [initial_epoch, epochs) as one stream, and the steps per epoch."""
        if self.tensor_epoch:
            stream = tf.data.Dataset.range(initial_epoch, epochs).flat_map(self.epoch_fn)
        else:
            stream = self.epoch_fn(initial_epoch)
            for index in range(initial_epoch + 1, epochs):
                stream = stream.concatenate(self.epoch_fn(index))
        return stream.prefetch(tf.data.AUTOTUNE), self.steps


def as_dataset(data) -> tf.data.Dataset:
    """The tf.data.Dataset to hand to Keras: `data.dataset` for EpochData, else `data`."""
    return data.dataset if isinstance(data, EpochData) else data


def epoch_stream(data, initial_epoch: int, epochs: int) -> tuple[tf.data.Dataset, int] | None:
    """`data.stream(initial_epoch, epochs)` for EpochData; None for any other dataset."""
    return data.stream(initial_epoch, epochs) if isinstance(data, EpochData) else None


__all__ = ["EpochData", "as_dataset", "epoch_stream"]
