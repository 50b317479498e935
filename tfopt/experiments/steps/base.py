"""What every trial step shares: its context (`StepContext`) and the training call.

A step takes the model it starts from and returns `(model, StepRecord)`. Training goes through
`StepContext.train`, which checkpoints into the trial's `train/` folder and resumes from it
(tfopt.train.fit), so a killed trial continues where it stopped. Every fit watches the held-out
split (`data.val_ds`), never the test split: the baseline stops early (`train_patience`,
restoring the best epoch) and records whether it converged; every fine-tuning fit uses the
paper's plateau recipe (`tfopt.train.plateau_finetune`, cap `finetune_epochs`, patience
`finetune_patience`). Imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from tfopt._keras import keras
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial
from tfopt.experiments.trial_data import TrialData
from tfopt.stats import convergence
from tfopt.train import TrainConfig, fit, plateau_finetune


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

    @property
    def val_ds(self):
        """The held-out split every fit watches (None with --val_fraction=0); never the test."""
        return self.data.val_ds

    def train_config(self, *, epochs: int) -> TrainConfig:
        """The baseline recipe, stopping early on the held-out accuracy (`train_patience`)."""
        c = self.config
        stop = c.train_patience if self.val_ds is not None else 0
        return TrainConfig(
            epochs=epochs,
            batch_size=c.train_batch_size,
            optimizer=c.train_optimizer,
            max_lr=c.train_max_lr,
            weight_decay=c.train_weight_decay,
            seed=c.seed,
            verbose=c.verbose,
            **({"early_stopping_patience": stop, "monitor": "val_accuracy"} if stop else {}),
        )

    def finetune_config(self, epochs: int | None = None) -> TrainConfig:
        """The paper's plateau fine-tuning recipe (cap `finetune_epochs` unless given): the same
        for every compression step and every control step, so their drops compare equal
        training. Without a held-out split it watches the train loss."""
        c = self.config
        epochs = c.finetune_epochs if epochs is None else epochs
        extra = {"optimizer": c.finetune_optimizer} if c.finetune_optimizer else {}
        if self.val_ds is None:
            extra["monitor"] = "loss"
        steps = c.finetune_steps(self.data.train_examples) if c.finetune_limit else None
        if steps is not None:
            extra["steps_per_epoch"] = steps
        return plateau_finetune(epochs, c.finetune_patience, lr=c.finetune_max_lr,
                                batch_size=c.train_batch_size, seed=c.seed, verbose=c.verbose,
                                **extra)

    def fit(self, model, config: TrainConfig, callbacks=(), converge_k: int | None = None
            ) -> dict:
        """Train `model` in place on the train split, watching `val_ds`; returns the history
        summary (final values, best epoch, stopped early) and, with `converge_k`, whether the
        held-out accuracy still rose in the last k epochs (`converged`, `gain_last_k_pp`)."""
        result = fit(
            model,
            self.data.train_ds,
            config,
            val_ds=self.val_ds,
            workdir=self.train_dir,
            extra_callbacks=tuple(callbacks),
        )
        out = history_summary(result)
        if converge_k and isinstance(result, dict) and result.get("history"):
            try:
                converged, gain = convergence(result, k=converge_k)
                out.update(converged=bool(converged), gain_last_k_pp=round(float(gain), 3),
                           convergence_k=converge_k)
            except ValueError:
                pass  # no accuracy history to judge
        if isinstance(result, dict) and result.get("history", {}).get("val_accuracy"):
            out["best_val_accuracy_pct"] = round(100 * max(result["history"]["val_accuracy"]), 4)
        return out

    def train(self, model, epochs: int) -> dict:
        """Baseline training (early stopping on the held-out split, convergence judged)."""
        c = self.config
        k = min(3, c.train_patience) if c.train_patience else 3
        return self.fit(model, self.train_config(epochs=epochs), converge_k=k)

    def finetune(self, model, epochs: int | None = None, callbacks=()) -> dict:
        """Fine-tune with the plateau recipe (cap `finetune_epochs` unless given); {} for 0."""
        epochs = self.config.finetune_epochs if epochs is None else epochs
        if epochs <= 0:
            return {}
        out = self.fit(model, self.finetune_config(epochs), callbacks)
        out["finetune_epochs_run"] = out.get("epochs")
        return out


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
