"""The paper's published CIFAR-10 accuracies (Sobolewski & Szyc; artur-sobolewski/CNN-compression).

Copied from the project design notes (reference-figures.json, the authors' README tables at
7871cec), so nothing reads ../shared at run time. All figures are top-1 accuracy in % on the
**CIFAR-10 test split** after the paper's 150-epoch GPU recipe (a batch-mean over 79 test
batches, which can differ from the true accuracy by a few hundredths of a percent).

- `RESNET101_CIFAR10_ACC`: baseline accuracy of every ResNet-101 variant (v15 is not reported).
- `PRUNING_CIFAR10`: the iterative global L1 series (20 % of the remaining conv weights per
  step, fine-tuned after each) as (conv sparsity %, accuracy %) points, step 0 = dense.
- VGG-19 on CIFAR-10 has **no** valid paper figure: that README table repeats the ResNet-101
  CIFAR-100 row, so `paper_accuracy("vgg19_v04")` is None.
- `MLPERF_TINY_RESNET8`: the MLPerf Tiny image-classification reference (mlcommons/tiny; not a
  paper model): closed-division quality target 85 % top-1 on the CIFAR-10 test split (trained
  500 epochs, Adam), reference int8 file pretrainedResnet_quant.tflite 98,496 bytes.
"""

from __future__ import annotations

import os

RESNET101_CIFAR10_ACC = {
    "resnet101_v01": 94.33, "resnet101_v02": 92.78, "resnet101_v03": 94.24,
    "resnet101_v04": 93.03, "resnet101_v05": 92.87, "resnet101_v06": 93.09,
    "resnet101_v07": 93.07, "resnet101_v08": 93.01, "resnet101_v09": 93.00,
    "resnet101_v10": 92.70, "resnet101_v11": 92.43, "resnet101_v12": 92.55,
    "resnet101_v13": 90.82, "resnet101_v14": 90.74,
}

# (conv sparsity %, accuracy %) per pruning step; the sparsities are the exact 1 - 0.8**k.
PRUNING_CIFAR10 = {
    "resnet101_v01": ((0.0, 94.33), (20.0, 94.34), (36.0, 94.36), (48.8, 94.36),
                      (59.04, 94.39), (67.232, 94.32), (73.786, 94.36), (79.028, 94.11),
                      (83.223, 94.16), (86.578, 93.95), (89.263, 93.72), (91.41, 93.37),
                      (99.078, 91.53)),
    "resnet101_v11": ((0.0, 92.43), (20.0, 92.51), (36.0, 92.41), (48.8, 91.82),
                      (59.04, 91.79), (67.232, 91.68), (73.786, 91.21), (79.028, 90.59),
                      (83.223, 90.19), (86.578, 89.28), (89.262, 88.73)),
    "resnet101_v13": ((0.0, 90.82), (20.0, 90.86), (36.0, 90.51), (48.8, 90.11),
                      (59.041, 89.85), (67.233, 89.03), (73.786, 87.85), (79.029, 87.03),
                      (83.223, 84.88), (86.578, 81.98), (89.262, 80.02)),
}

MLPERF_TINY_RESNET8 = {"accuracy_pct": 85.0, "int8_bytes": 98_496}


def paper_accuracy(variant: str) -> float | None:
    """The published CIFAR-10 test accuracy [%] of a zoo id (resnet8: MLPerf Tiny's 85 %
    target), or None where nothing valid is published (every VGG-19 variant)."""
    if variant == "resnet8":
        return MLPERF_TINY_RESNET8["accuracy_pct"]
    return RESNET101_CIFAR10_ACC.get(variant)


def pruning_curve(variant: str) -> tuple[tuple[float, float], ...]:
    """The paper's CIFAR-10 pruning points (sparsity %, accuracy %) of `variant`; () if none."""
    return PRUNING_CIFAR10.get(variant, ())


def is_cifar10(dataset: str | None, num_classes: int | None) -> bool:
    """Whether a run's data is CIFAR-10, so the paper's figures belong beside it.

    True for the tfds name `cifar10`, and for `folder:PATH` with 10 classes whose last path
    component starts with `cifar10` but not `cifar100` (e.g. folder:/tmp/cifar10_holdout, the
    held-out part of the training split). Anything else (Fashion-MNIST, synthetic) is False.
    """
    if not dataset:
        return False
    if dataset == "cifar10":
        return True
    if not dataset.startswith("folder:") or num_classes not in (None, 10):
        return False
    name = os.path.basename(os.path.normpath(dataset[len("folder:"):])).lower()
    return name.startswith("cifar10") and not name.startswith("cifar100")
