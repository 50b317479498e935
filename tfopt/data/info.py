"""`DatasetInfo` (what a model and a converter need to know about a data set) and the
per-channel normalisation constants of the named sources.
"""

from __future__ import annotations

import dataclasses

# Per-channel mean/std on images scaled to [0, 1], in the source's native channel order.
# CIFAR: the reference code's torchvision constants (design doc reference-variants.md §5).
# Fashion-MNIST: computed once over all 60,000 train images (47,040,000 pixels), float64:
#   x = np.frombuffer(gzip.open("train-images-idx3-ubyte.gz").read(), np.uint8, offset=16) / 255
#   x.mean() = 0.28604060, x.std() = 0.35302424   (re-checked by tests/test_data.py)
# ImageNet: the usual torchvision/Keras constants.
NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "fashion_mnist": ((0.28604060,), (0.35302424,)),
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Facts about one split of a data set, after pre-processing.

    Attributes:
      name: Source name as given to `load` (e.g. "fashion_mnist", "folder:/data/flowers").
      num_classes: Number of labels; labels are ints in [0, num_classes).
      image_shape: (H, W, C) of one image after resize / grey->RGB.
      class_names: One name per label.
      mean: Per-channel mean subtracted from [0, 1]-scaled images (length C).
      std: Per-channel std the images were divided by (length C).
      num_examples: Images in this split (after `limit` and skipped files).
      num_skipped: Files skipped as undecodable (folder sources with skip_bad_files=True).
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_examples: int
    num_skipped: int = 0
