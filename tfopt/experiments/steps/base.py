"""What every trial step shares: its context (`StepContext`) and the training call.

A step takes the model it starts from and returns `(model, StepRecord)`. Training goes through
`StepContext.train`, which checkpoints into the trial's `train/` folder and resumes from it
(tfopt.train.fit), so a killed trial continues where it stopped. Imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from tfopt._keras import keras
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial
from tfopt.experiments.trial_data import TrialData
from tfopt.train import TrainConfig, fit


@dataclasses.dataclass
class StepContext:
    """One trial's settings, data, folder and how to load the models it depends on."""

    config: ExperimentConfig
    trial: Trial
    data: TrialData
    trial_dir: str
    load_trial_model: Callable[[str], object]  # trial id -> its saved Keras model

    @property
    def train_dir(self) -> str:
        return os.path.join(self.trial_dir, "train")

    def train_config(self, *, epochs: int, max_lr: float | None = None) -> TrainConfig:
        """Baseline training when max_lr is None; fine-tuning (finetune_optimizer) otherwise."""
        c = self.config
        optimizer = c.train_optimizer
        if max_lr is not None:
            optimizer = c.finetune_optimizer or c.train_optimizer
        lr = None if optimizer == "sgd_onecycle" or max_lr is None else max_lr
        return TrainConfig(
            epochs=epochs,
            batch_size=c.train_batch_size,
            optimizer=optimizer,
            lr=lr,
            max_lr=c.train_max_lr if max_lr is None else max_lr,
            weight_decay=c.train_weight_decay,
            seed=c.seed,
            verbose=c.verbose,
        )

    def train(self, model, epochs: int, max_lr: float | None = None, callbacks=()) -> dict:
        """Train `model` in place; returns the history summary (final values)."""
        result = fit(
            model,
            self.data.train_ds,
            self.train_config(epochs=epochs, max_lr=max_lr),
            val_ds=self.data.test_ds,
            workdir=self.train_dir,
            extra_callbacks=tuple(callbacks),
        )
        return history_summary(result)

    def finetune(self, model, epochs: int | None = None, callbacks=()) -> dict:
        """Fine-tune with the fine-tuning recipe (`finetune_epochs` unless given); {} for 0."""
        epochs = self.config.finetune_epochs if epochs is None else epochs
        if epochs <= 0:
            return {}
        return self.train(model, epochs, self.config.finetune_max_lr, callbacks)


def history_summary(result) -> dict:
    """Scalars of a fit() result as they are, and the last value of each history list."""
    if not isinstance(result, dict):
        return {}
    out = {}
    for k, v in result.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)) and v and isinstance(v[-1], (int, float)):
            out[f"final_{k}"] = float(v[-1])
    return out


def clone(model):
    """A copy of `model` with the same weights."""
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin
