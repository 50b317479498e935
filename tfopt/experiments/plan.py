"""`--dry_run`: the trial plan of an ablation config and an estimated training time per trial.

Nothing is trained and the workdir gets no results. For every variant of the grid the model is
built at the planned width and input shape and a few train steps are timed on random data at
the planned batch size (`measure_images_per_s`); each trial's estimate is then

    epochs the trial trains x fitted images / images per second of its variant

where the fitted images are the (limited) train split less its `val_fraction` held-out part,
and the epochs come from its last recipe step: `none` trains `train_epochs` (the cap: early
stopping may end it sooner), a pruning step, OCNNA or a matched control (`control:n`: one more
fit of `control:n-1`) fine-tunes `finetune_epochs` (0 for one-shot pruning), `qat` trains
`qat_epochs`, a stand-alone `kd` `kd_epochs` (default `train_epochs`), a recovery `kd`
`finetune_epochs`.
The figure is training compute only: the input pipeline (decode, augmentation), evaluation,
conversion, TFLite/TFLite Micro runs and QAT's fake-quant slowdown are not in it, and a pruned or
OCNNA-shrunk model is timed at its unpruned size. Read it as a lower bound, on this machine.

The data size and shape are worked out without loading the data (folder: file counts and one
image's header; tfds names from a small table; `synthetic:` from its spec). Imports TensorFlow
only to time models.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Callable

from tfopt.core.choices import OCNNA_KINDS, PRUNE_KINDS
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial, plan

# tfds name -> (train images, (H, W, C), classes)
_KNOWN = {
    "cifar10": (50_000, (32, 32, 3), 10),
    "cifar100": (50_000, (32, 32, 3), 100),
    "fashion_mnist": (60_000, (28, 28, 1), 10),
    "mnist": (60_000, (28, 28, 1), 10),
}
TIMED_STEPS = 3   # train steps timed per model, after 2 warm-up steps (tracing)


@dataclasses.dataclass(frozen=True)
class DataShape:
    """What the estimate needs of the data: train images, image shape, classes."""
    examples: int
    shape: tuple[int, int, int]
    classes: int
    split_examples: int | None = None   # the train split before `train_limit` (None: = examples)


@dataclasses.dataclass(frozen=True)
class PlannedTrial:
    """One row of the dry-run plan."""
    trial: Trial
    step: str
    epochs: int
    images_per_s: float
    seconds: float


def data_shape(config: ExperimentConfig) -> DataShape:
    """Train images (after `train_limit`), (H, W, C) after resize/to_rgb, classes; no TF."""
    source = config.dataset
    if source.startswith("folder:"):
        n, shape, k = _folder_shape(source[len("folder:"):])
    elif source == "synthetic" or source.startswith("synthetic:"):
        from tfopt.data.synthetic import parse_spec
        shape, k, n = parse_spec(source)
    elif source in _KNOWN:
        n, shape, k = _KNOWN[source]
    else:
        raise ValueError(f"dry run: cannot size dataset {source!r} without loading it; "
                         f"plan with one of {sorted(_KNOWN)}, folder:PATH or synthetic")
    h, w, c = shape
    if config.image_size:
        h = w = config.image_size
    if config.to_rgb:
        c = 3
    split = int(n)
    if config.train_limit:
        n = min(n, config.train_limit)
    return DataShape(int(n), (int(h), int(w), int(c)), int(k), split)


def _folder_shape(root: str) -> tuple[int, tuple[int, int, int], int]:
    train = os.path.join(root, "train")
    classes = sorted(d for d in os.listdir(train)
                     if os.path.isdir(os.path.join(train, d)) and not d.startswith("."))
    n, first = 0, None
    for name in classes:
        files = [e.path for e in os.scandir(os.path.join(train, name))
                 if e.is_file() and not e.name.startswith(".")]
        n += len(files)
        first = first or (min(files) if files else None)
    if not classes or first is None:
        raise ValueError(f"dry run: folder {train} has no class folders with images")
    from PIL import Image
    with Image.open(first) as im:
        w, h = im.size
        c = 1 if im.mode in ("1", "L", "I", "I;16", "F") else 3
    return n, (h, w, c), len(classes)


def trial_epochs(trial: Trial, config: ExperimentConfig) -> tuple[str, int]:
    """(last step kind, epochs that trial trains)."""
    step = trial.recipe.last
    kind = step.kind
    if trial.recipe.is_baseline:
        return "none", config.train_epochs
    if kind == "qat":
        return kind, config.qat_epochs
    if kind == "kd":
        if len(trial.recipe.steps) == 1:
            return kind, config.kd_epochs or config.train_epochs
        return kind, max(1, config.finetune_epochs)
    if kind in PRUNE_KINDS or kind in OCNNA_KINDS or kind == "control":
        return kind, config.finetune_epochs
    return kind, 0


def fit_examples(data: DataShape, config: ExperimentConfig) -> int:
    """Images one epoch trains on, less the `val_fraction` held out (round(fraction x images),
    as the stratified holdout takes it per class). `folder:` sources hold it out of the whole
    train/ and apply `train_limit` to the rest; other sources split the limited train split."""
    if not config.val_fraction:
        return data.examples
    if config.dataset.startswith("folder:") and data.split_examples is not None:
        rest = data.split_examples - int(round(config.val_fraction * data.split_examples))
        return min(data.examples, rest)
    return data.examples - int(round(config.val_fraction * data.examples))


def measure_images_per_s(variant: str, config: ExperimentConfig, data: DataShape,
                         steps: int = TIMED_STEPS) -> float:
    """Training images/s of `variant` at the planned width and batch, on random data."""
    import numpy as np

    from tfopt._keras import keras
    from tfopt.models import build_from_spec

    model = build_from_spec(variant, num_classes=data.classes, input_shape=data.shape,
                            width_multiplier=config.width_multiplier)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    b = config.train_batch_size
    x = rng.random((b, *data.shape), dtype=np.float32)
    y = rng.integers(0, data.classes, b)
    for _ in range(2):
        model.train_on_batch(x, y)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    elapsed = time.perf_counter() - t0
    keras.backend.clear_session()
    return b * steps / max(elapsed, 1e-9)


def make_plan(config: ExperimentConfig, measure: Callable | None = None,
              data: DataShape | None = None) -> list[PlannedTrial]:
    """The planned trials with their estimated training seconds.

    `measure(variant, config, data) -> images/s` defaults to `measure_images_per_s`; each
    variant is measured once, and only if one of its trials trains.
    """
    measure = measure or measure_images_per_s
    data = data or data_shape(config)
    speed: dict[str, float] = {}
    images = fit_examples(data, config)
    rows = []
    for trial in plan(config):
        step, epochs = trial_epochs(trial, config)
        ips = 0.0
        if epochs:
            if trial.variant not in speed:
                speed[trial.variant] = float(measure(trial.variant, config, data))
            ips = speed[trial.variant]
        fitted = images if step == "none" else config.finetune_examples(images)
        seconds = epochs * fitted / ips if epochs else 0.0
        rows.append(PlannedTrial(trial, step, epochs, ips, seconds))
    return rows


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def print_plan(config: ExperimentConfig, measure: Callable | None = None, out=None) -> float:
    """Print the plan as a markdown table and return the estimated total seconds."""
    out = out or sys.stdout
    data = data_shape(config)
    rows = make_plan(config, measure, data)
    h, w, c = data.shape
    fit = fit_examples(data, config)
    held = data.examples - fit
    if config.val_fraction and config.dataset.startswith("folder:") and data.split_examples:
        held = int(round(config.val_fraction * data.split_examples))
    print(f"dry run: {len(rows)} trials; {data.examples:,} train images {h}x{w}x{c} "
          f"({fit:,} fitted per epoch, {held:,} held out for "
          "validation), "
          f"{data.classes} classes; batch {config.train_batch_size}, width "
          f"{config.width_multiplier:g}; images/s timed over {TIMED_STEPS} train steps per "
          "model on random data on this machine", file=out)
    print("| # | trial | trains | epochs | images/s | est. time |", file=out)
    print("|---:|---|---|---:|---:|---:|", file=out)
    for i, r in enumerate(rows, 1):
        ips = f"{r.images_per_s:,.0f}" if r.epochs else "-"
        print(f"| {i} | {r.trial.id} | {r.step} | {r.epochs} | {ips} | {_hms(r.seconds)} |",
              file=out)
    total = sum(r.seconds for r in rows)
    print(f"estimated training time: {_hms(total)} (baselines at their epoch cap; otherwise "
          "a lower bound: input pipeline, evaluation, conversion, TFLite/TFLM runs and QAT's "
          "slowdown not included)", file=out)
    return total
