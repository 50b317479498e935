"""Keras callbacks of the trainer: per-epoch checkpoints, LR/momentum logging, resumable
plateau/early-stopping state, best-epoch weights, epoch timing."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf

from tfopt._keras import keras


def _to_float(value):
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return value


def write_json(path: str, data) -> None:
    """Write JSON atomically (a killed run never leaves a half-written file)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


class LogLrMomentum(keras.callbacks.Callback):
    """Adds the optimizer's current `lr` and `momentum` to the epoch logs (-> TensorBoard)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        opt = self.model.optimizer
        inner = getattr(opt, "inner_optimizer", opt)   # mixed precision LossScaleOptimizer
        logs["lr"] = float(np.asarray(inner.learning_rate))
        momentum = getattr(inner, "momentum", None)
        if callable(momentum):
            momentum = momentum(inner.iterations)
        if momentum is not None:
            logs["momentum"] = float(np.asarray(momentum))


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, in seconds, added to the logs as `epoch_time_s`."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time_s"] = time.perf_counter() - self._start


class _Resumable:
    """Mixin: the callback's counters survive a restart (saved with each checkpoint)."""

    STATE = ()
    pending: dict | None = None

    def get_state(self) -> dict:
        return {k: _to_float(getattr(self, k)) for k in self.STATE}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)   # resets the counters ...
        if self.pending:               # ... so restore them afterwards
            for k, v in self.pending.items():
                setattr(self, k, v)
            self.pending = None


class ResumableReduceLROnPlateau(_Resumable, keras.callbacks.ReduceLROnPlateau):
    STATE = ("wait", "best", "cooldown_counter")


class ResumableEarlyStopping(_Resumable, keras.callbacks.EarlyStopping):
    STATE = ("wait", "best", "stopped_epoch")


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: save model + optimizer (+ epoch counter) and the run's history.

    Must come after every callback that changes optimizer state at epoch end (plateau).
    """

    def __init__(self, manager: tf.train.CheckpointManager, epoch_var: tf.Variable,
                 history: dict, history_path: str, resumables=()):
        super().__init__()
        self.manager, self.epoch_var = manager, epoch_var
        self.history, self.history_path = history, history_path
        self.resumables = tuple(resumables)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(_to_float(value))
        self.history["_callback_state"] = [cb.get_state() for cb in self.resumables]
        self.epoch_var.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
        write_json(self.history_path, self.history)   # after the checkpoint: never ahead of it


def improved(monitor: str, value: float, best: float | None) -> bool:
    """Whether `value` of `monitor` beats `best` (accuracies go up, losses down; ties do not)."""
    if best is None:
        return True
    return value > best if "acc" in monitor else value < best


class BestWeights(_Resumable, keras.callbacks.Callback):
    """Keeps the weights of the best epoch by `monitor`; `restore()` puts them back.

    In memory, and also in `manager` (a CheckpointManager of the model alone) when given, so a
    resumed run restores the same best epoch as an uninterrupted one. State: best, best_epoch
    (0-based; -1 before the first epoch).
    """

    STATE = ("best", "best_epoch")

    def __init__(self, monitor: str, manager: tf.train.CheckpointManager | None = None):
        super().__init__()
        self.monitor, self.manager = monitor, manager
        self.best, self.best_epoch, self.weights = None, -1, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"monitor={self.monitor!r} is not in the epoch logs "
                             f"({sorted(logs or {})}); pass val_ds to fit for val_* monitors")
        if improved(self.monitor, float(value), self.best):
            self.best, self.best_epoch = float(value), int(epoch)
            self.weights = self.model.get_weights()
            if self.manager is not None:
                self.manager.save(checkpoint_number=epoch + 1)

    def restore(self) -> bool:
        """Set the model to the best epoch's weights; False if there is no best epoch yet."""
        if self.weights is not None:
            self.model.set_weights(self.weights)
            return True
        if self.manager is not None and self.manager.latest_checkpoint:
            tf.train.Checkpoint(model=self.model).restore(
                self.manager.latest_checkpoint).expect_partial()
            return True
        return False
