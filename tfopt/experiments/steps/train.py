"""`none`: train the freshly built variant with the baseline recipe."""

from __future__ import annotations

from tfopt.core.recipe import BaselineStep
from tfopt.core.step_records import TrainRecord
from tfopt.experiments.steps.base import StepContext


class TrainStep:
    kinds = ("none",)
    needs_parent = False  # starts from the untrained variant

    def run(self, step: BaselineStep, model, ctx: StepContext):
        hist = ctx.train(model, ctx.config.train_epochs)
        return model, TrainRecord("train", hist)
