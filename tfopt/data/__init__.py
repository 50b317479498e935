"""tfopt data: one entry point per use, for every source.

    ds, info = tfopt.data.load("fashion_mnist", "train", image_size=32, to_rgb=True, augment=True)
    train, info = tfopt.data.load_epochs("fashion_mnist", "train")  # EpochData: exact replay
    x, y, info = tfopt.data.load_arrays("fashion_mnist", "test", limit=2000)
    rep = tfopt.data.representative_dataset("fashion_mnist", num_samples=200)
    batches, info = tfopt.data.stream_arrays("folder:/data/x", "test")   # numpy, from disk

Sources: "fashion_mnist" (IDX files: data_dir, /usr/share/datasets/fashion-mnist/ from the apt
package `dataset-fashion-mnist`, ~/.keras/datasets/fashion-mnist/, then tensorflow-datasets),
"cifar10", "cifar100", "imagenet2012" and any tensorflow-datasets name, "folder:PATH",
"synthetic[:HxWxC[:CLASSES[:TRAIN_EXAMPLES]]]".
"""

from tfopt.data.info import DatasetInfo
from tfopt.data.epochs import EpochData, as_dataset, epoch_stream
from tfopt.data.pipeline import (NAMED_SOURCES, load, load_arrays, load_epochs,
                                 representative_dataset, stream_arrays)

__all__ = ["DatasetInfo", "EpochData", "NAMED_SOURCES", "as_dataset", "epoch_stream", "load",
           "load_arrays", "load_epochs", "representative_dataset", "stream_arrays"]
