"""`qat`: quantization-aware training (tfmot; pruning-preserving when the parent was pruned)."""

from __future__ import annotations

from tfopt.compress import qat
from tfopt.core.recipe import QatStep
from tfopt.core.step_records import QatRecord
from tfopt.experiments.steps.base import StepContext


class QuantizeStep:
    kinds = ("qat",)
    needs_parent = True

    def run(self, step: QatStep, model, ctx: StepContext):
        preserve = ctx.trial.recipe.is_pruned
        model = qat.quantize(model, preserve_sparsity=preserve)
        hist = ctx.finetune(model, ctx.config.qat_epochs)
        return model, QatRecord("qat", hist, preserve_sparsity=preserve)
