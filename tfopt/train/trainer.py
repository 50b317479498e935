"""`fit` and `evaluate`: the paper's training recipe around `model.fit`, resumable per epoch.

Workdir layout (when `workdir` is given):
  checkpoints/     tf.train.Checkpoint of model + optimizer + epoch, one per epoch (last 2 kept)
  history.json     per-epoch logs (loss, accuracy, val_*, lr, momentum, epoch_time_s)
  train_config.json  the TrainConfig; a resumed run must use the same one
  best/            the best epoch's weights by config.monitor (only with early stopping)
  logs/            TensorBoard event files
A run killed at any point restarts from its last completed epoch and, for datasets from
`tfopt.data.load` (whose epoch e is always the same batches), ends with the same weights as an
uninterrupted run (bit-exact on CPU with `tf.config.experimental.enable_op_determinism()`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import numpy as np
import tensorflow as tf

from tfopt._keras import keras
from tfopt.data.epochs import EpochData, as_dataset, epoch_stream
from tfopt.train import callbacks as cb
from tfopt.train.config import TrainConfig
from tfopt.train.optimizers import CoupledAdam, CoupledSGD
from tfopt.train.schedule import OneCycleLR, OneCycleMomentum


class LogitsCrossEntropy(keras.losses.SparseCategoricalCrossentropy):
    """Sparse cross-entropy on logits, computed in float32 (safe under mixed precision)."""

    def __init__(self, name: str = "logits_cross_entropy", **kwargs):
        kwargs.pop("from_logits", None)
        super().__init__(from_logits=True, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return super().call(y_true, tf.cast(y_pred, tf.float32))


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """The optimizer of `config` (one-cycle schedules span config.epochs * steps_per_epoch)."""
    wd = float(config.weight_decay)
    if config.optimizer == "sgd_onecycle":
        shape = dict(total_steps=int(config.epochs * steps_per_epoch), max_lr=config.max_lr,
                     pct_start=config.pct_start, div_factor=config.div_factor,
                     final_div_factor=config.final_div_factor,
                     base_momentum=config.base_momentum, max_momentum=config.max_momentum)
        return CoupledSGD(OneCycleLR(**shape), OneCycleMomentum(**shape), coupled_weight_decay=wd)
    if config.optimizer in ("sgd", "sgd_plateau"):
        return CoupledSGD(config.learning_rate, config.momentum, coupled_weight_decay=wd)
    return CoupledAdam(config.learning_rate, coupled_weight_decay=wd)


def _steps_per_epoch(train_ds, config: TrainConfig) -> int:
    if config.steps_per_epoch is not None:
        return config.steps_per_epoch
    if isinstance(train_ds, EpochData):
        return train_ds.steps
    n = int(train_ds.cardinality())
    if n < 1:   # INFINITE (-1) or UNKNOWN (-2)
        raise ValueError(f"train_ds has no known length (cardinality {n}); set "
                         "TrainConfig.steps_per_epoch or pass the EpochData of tfopt.data.load_epochs")
    return n


def check_workdir(workdir: str, config: TrainConfig) -> None:
    """Raise a ValueError if `workdir` holds a run whose TrainConfig differs from `config`.

    (`verbose` may differ; a field the saved file lacks counts as its default.) A resumed run
    must use the same recipe to reach the same result.
    """
    path = os.path.join(workdir, "train_config.json")
    if not os.path.exists(path):
        return
    current = {k: v for k, v in dataclasses.asdict(config).items() if k != "verbose"}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    with open(path) as f:
        saved = {k: v for k, v in json.load(f).items() if k != "verbose"}
    saved = {**{k: defaults.get(k) for k in current if k not in saved}, **saved}
    diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if diff:
        k = diff[0]
        raise ValueError(f"{workdir} holds a run with a different config ({k}: "
                         f"{saved.get(k)!r} there, {current.get(k)!r} now); use a new workdir")


def fit(model, train_ds, config: TrainConfig, *, val_ds=None, workdir: str | None = None,
        extra_callbacks=()) -> dict:
    """Compile `model` with cross-entropy on logits and `config`'s recipe, then train it.

    Works for any Keras model whose output is logits, including tfmot prune/QAT-wrapped ones
    (pass e.g. `tfmot.sparsity.keras.UpdatePruningStep()` in `extra_callbacks`). Coupled L2
    weight decay applies to every trainable variable.

    Args:
      model: A Keras model (built under the distribution strategy it should train with).
      train_ds: Batches of (image, int label): an `EpochData` (from `tfopt.data.load_epochs`)
        is replayed epoch by epoch (exact resume); a finite tf.data.Dataset is iterated once
        per epoch.
      config: The recipe and the total number of epochs.
      val_ds: Optional validation batches, evaluated after every epoch.
      workdir: Checkpoints, history and TensorBoard logs go here; an existing run there is
        resumed from its last completed epoch. None: no checkpoints, no logs.
      extra_callbacks: More Keras callbacks (run after the trainer's own).

    Returns:
      dict: epochs (completed, in total), initial_epoch (where this call started),
      loss/accuracy (train, last epoch), val_loss/val_accuracy (if val_ds), wall_time_s
      (this call, seconds), images_per_s (train images / wall_time_s of this call),
      stopped_early, monitor, best_epoch (1-based, by monitor; None without early stopping),
      restored_best (the model holds the best epoch's weights), history (per-epoch lists over
      the whole run).

    Early stopping (config.stopping_patience) watches config.monitor; with a val_* monitor,
    `val_ds` must be a held-out split (e.g. from `tfopt.train.holdout_split`), never the test
    split, or the test accuracy selects the model.

    Long because it is one linear sequence (compile, restore a resumed run, callbacks, fit,
    restore the best epoch, summarise) whose steps share the resume state.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config={config!r}; expected a tfopt.train.TrainConfig")
    if config.monitor.startswith("val_") and val_ds is None:
        raise ValueError(f"monitor={config.monitor!r} needs val_ds (a held-out validation "
                         "split, never the test split); pass val_ds or use monitor='loss'")
    initial_epoch, history = 0, {}
    manager = epoch_var = None
    history_path = None
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        check_workdir(workdir, config)
        cb.write_json(os.path.join(workdir, "train_config.json"), dataclasses.asdict(config))
        history_path = os.path.join(workdir, "history.json")

    steps = _steps_per_epoch(train_ds, config)

    with model.distribute_strategy.scope():
        optimizer = make_optimizer(config, steps)
        model.compile(optimizer=optimizer, loss=LogitsCrossEntropy(),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        if workdir is not None:
            epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch_var)
            manager = tf.train.CheckpointManager(ckpt, os.path.join(workdir, "checkpoints"),
                                                 max_to_keep=2)
            if manager.latest_checkpoint:
                optimizer.build(model.trainable_variables)   # create slots before restoring
                ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
                initial_epoch = int(epoch_var.numpy())
                if os.path.exists(history_path):
                    with open(history_path) as f:
                        history = json.load(f)
                history = {k: (v[:initial_epoch] if isinstance(v, list) and not k.startswith("_")
                               else v) for k, v in history.items()}

    callbacks = [cb.LogLrMomentum(), cb.EpochTimer()]
    resumables, best = _stopping_callbacks(model, config, workdir)
    for r, state in zip(resumables, history.get("_callback_state", ())):
        r.pending = state
    callbacks += resumables
    if workdir is not None:
        callbacks.append(cb.EpochCheckpoint(manager, epoch_var, history, history_path,
                                            resumables))
        if _have_tensorboard():
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(workdir, "logs"),
                                                         write_graph=False, profile_batch=0))
        else:
            logging.warning("tensorboard is not installed: no TensorBoard logs in %s", workdir)
    callbacks += list(extra_callbacks)

    stream = epoch_stream(train_ds, initial_epoch, config.epochs)
    data = stream[0] if stream else as_dataset(train_ds)
    start = time.perf_counter()
    if initial_epoch < config.epochs:
        result = model.fit(data, epochs=config.epochs, initial_epoch=initial_epoch,
                           steps_per_epoch=steps if (stream or config.steps_per_epoch) else None,
                           validation_data=val_ds, callbacks=callbacks, verbose=config.verbose)
        if workdir is None:
            for key, values in result.history.items():
                history.setdefault(key, []).extend(_floats(values))
    if best is not None and config.restore_best_weights:
        best.restore()
    wall = time.perf_counter() - start

    epochs_done = len(history.get("loss", []))
    epochs_run = epochs_done - initial_epoch
    per_epoch = (train_ds.num_examples if isinstance(train_ds, EpochData)
                 else steps * config.batch_size)
    stopped = any(getattr(r, "stopped_epoch", 0) for r in resumables)
    metrics = {
        "epochs": epochs_done, "initial_epoch": initial_epoch, "stopped_early": bool(stopped),
        "monitor": config.monitor,
        "best_epoch": (best.best_epoch + 1) if best is not None and best.best_epoch >= 0 else None,
        "restored_best": bool(best is not None and config.restore_best_weights),
        "wall_time_s": wall,
        "images_per_s": (epochs_run * per_epoch / wall) if epochs_run > 0 and wall > 0 else None,
        "history": {k: v for k, v in history.items() if not k.startswith("_")},
    }
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if history.get(key):
            metrics[key] = history[key][-1]
    return metrics


def _stopping_callbacks(model, config: TrainConfig, workdir: str | None):
    """(resumable callbacks, BestWeights or None): sgd_plateau's ReduceLROnPlateau and the
    early stop, both on `config.monitor`, and the best-epoch keeper (workdir/best/ on disk)."""
    resumables, best = [], None
    verbose = min(config.verbose, 1)
    if config.optimizer == "sgd_plateau":
        resumables.append(cb.ResumableReduceLROnPlateau(
            monitor=config.monitor, factor=config.plateau_factor,
            patience=config.plateau_patience, min_lr=config.min_lr, verbose=verbose))
    patience = config.stopping_patience
    if patience is not None:
        resumables.append(cb.ResumableEarlyStopping(monitor=config.monitor, patience=patience,
                                                    verbose=verbose))
        manager = None
        if workdir is not None:
            manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                                 os.path.join(workdir, "best"), max_to_keep=1)
        best = cb.BestWeights(config.monitor, manager)
        resumables.append(best)
    return resumables, best


def _have_tensorboard() -> bool:
    import importlib.util
    return importlib.util.find_spec("tensorboard") is not None


def _floats(values):
    return [float(np.asarray(v)) for v in values]


def evaluate(model, ds) -> dict:
    """Example-weighted accuracy and mean cross-entropy of a logits model over `ds`.

    Args:
      model: Keras model mapping images to logits.
      ds: Batches of (image, int label [B] or [B, 1]); extra elements are ignored.

    Returns:
      dict(accuracy (fraction in [0, 1]), loss (mean cross-entropy, nats), num_examples).
    """
    @tf.function(reduce_retracing=True)
    def step(x, y):
        logits = tf.cast(model(x, training=False), tf.float32)
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y)
        return tf.reduce_sum(loss), tf.reduce_sum(tf.cast(correct, tf.float32)), tf.size(y)

    total_loss = total_correct = 0.0
    count = 0
    for batch in ds:
        x, y = batch[0], batch[1]
        loss, correct, n = step(x, y)
        total_loss += float(loss)
        total_correct += float(correct)
        count += int(n)
    if count == 0:
        raise ValueError("evaluate: the dataset is empty")
    return {"accuracy": total_correct / count, "loss": total_loss / count, "num_examples": count}


__all__ = ["LogitsCrossEntropy", "check_workdir", "evaluate", "fit", "make_optimizer"]
