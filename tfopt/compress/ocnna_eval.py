"""Running a (simplified) model on images: batching, BN recalibration, accuracy, fine-tuning.

Accuracies are top-1 in [0, 1]; drops are percentage points. Split out of
`tfopt.compress.ocnna`, which re-exports every name.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from tfopt.compress.ocnna_report import SimplifyReport


def _batches(images, batch_size: int) -> Iterable[np.ndarray]:
    """Image batches from an array, or from a tf.data.Dataset of images or (images, labels)."""
    if isinstance(images, np.ndarray):
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size]
        return
    for item in images:
        yield item[0] if isinstance(item, (tuple, list)) else item


def recalibrate_batchnorm(model, images, *, batch_size: int = 100) -> int:
    """Re-estimate every BatchNormalization's moving mean/variance on `images`, in place.

    Not part of OCNNA (design notes): an optional, criterion-neutral step after surgery. A
    removed channel changes the statistics its consumers' BN layers were trained on; this
    replaces the moving statistics by the average of the per-batch statistics over `images`
    (the model runs in training mode, eagerly, one batch at a time; no weight is trained).

    Returns:
      The number of batches used.
    """
    bns = [l for l in model.layers if l.__class__.__name__ == "BatchNormalization"]
    saved = [l.momentum for l in bns]
    n = 0
    try:
        for x in _batches(images, batch_size):
            n += 1
            for layer in bns:  # cumulative average: new = (1 - 1/n) old + 1/n batch
                layer.momentum = 1.0 - 1.0 / n
            model(x, training=True)
    finally:
        for layer, m in zip(bns, saved):
            layer.momentum = m
    if n == 0:
        raise ValueError("images is empty; nothing to recalibrate BatchNormalization on")
    return n


def accuracy(model, data, *, batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1] of a logits model on (x, y) arrays or a dataset of batches."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
        x, y = data
        batches = ((x[i:i + batch_size], y[i:i + batch_size])
                   for i in range(0, len(x), batch_size))
    else:
        batches = data
    correct = total = 0
    for xb, yb in batches:
        pred = np.argmax(model(xb, training=False).numpy(), axis=-1)
        yb = np.asarray(yb).reshape(-1)
        correct += int((pred == yb).sum())
        total += len(yb)
    if total == 0:
        raise ValueError("evaluation data is empty")
    return correct / total


def evaluate_drop(original, simplified, data, report: SimplifyReport | None = None, *,
                  finetuned: bool = False) -> dict:
    """Accuracy of both models on `data` and the Accuracy Drop (pp); fills `report` if given.

    Args:
      data: (x, y) arrays or a tf.data.Dataset of (x, y) batches (use the test split).
      finetuned: Store the simplified accuracy as the fine-tuned one in `report`.

    Returns:
      dict(accuracy_original, accuracy_simplified, accuracy_drop_pp).
    """
    a0 = report.accuracy_original if (report and report.accuracy_original is not None
                                      and finetuned) else accuracy(original, data)
    a1 = accuracy(simplified, data)
    if report is not None:
        report.accuracy_original = a0
        if finetuned:
            report.accuracy_finetuned = a1
        else:
            report.accuracy_simplified = a1
    return dict(accuracy_original=a0, accuracy_simplified=a1, accuracy_drop_pp=100 * (a0 - a1))


def finetune(model, train_ds, config=None, *, teacher=None, val_ds=None, workdir=None,
             **distill_kwargs) -> dict:
    """Fine-tune the simplified model in place with the project's training recipe.

    Args:
      train_ds: tf.data.Dataset of (x, y) batches.
      config: A `tfopt.train.TrainConfig` (default: 1 epoch, adam, max_lr 1e-3).
      teacher: If given and `tfopt.compress.distill` exists, distil from it (the original
        model) instead of plain fine-tuning; `distill_kwargs` (e.g. temperature, alpha) go to
        `distill.distill`.

    Returns:
      The training metrics dict of `tfopt.train.fit` (or of the distillation routine).
    """
    try:
        from tfopt import train
    except ImportError as err:
        raise RuntimeError("fine-tuning needs tfopt.train (issue 2), which is not installed "
                           "in this checkout") from err
    if config is None:
        config = train.TrainConfig(epochs=1, optimizer="adam", max_lr=1e-3)
    if teacher is not None:
        try:
            from tfopt.compress import distill
        except ImportError as err:
            raise RuntimeError("teacher= needs tfopt.compress.distill, which does not exist "
                               "in this checkout; fine-tune without a teacher") from err
        return distill.distill(model, teacher, train_ds, config, val_ds=val_ds,
                               workdir=workdir, **distill_kwargs)
    return train.fit(model, train_ds, config, val_ds=val_ds, workdir=workdir)


# --------------------------------------------------------------------------------------------
