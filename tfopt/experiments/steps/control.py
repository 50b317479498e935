"""`control:N`: the matched control of issue #14 -- one more fine-tuning fit of the parent
(the baseline for control:1, control:J-1 otherwise) with the same plateau recipe every
compression step uses, and nothing compressed. Pruning step j, and any recipe with j fits, is
compared with control:j of the same seed, so its drop measures the compression, not the extra
training.
"""

from __future__ import annotations

from tfopt.core.recipe import ControlStep
from tfopt.core.step_records import ControlRecord
from tfopt.experiments.steps.base import StepContext


class ControlFinetuneStep:
    kinds = ("control",)
    needs_parent = True

    def run(self, step: ControlStep, model, ctx: StepContext):
        hist = ctx.finetune(model, max(1, ctx.config.finetune_epochs))
        return model, ControlRecord("control", hist, fits=step.fits)
