"""`qat`: quantization-aware training (tfmot; pruning-preserving when the parent was pruned)."""

from __future__ import annotations

from tfopt.compress import qat, qat_ranges
from tfopt.core.recipe import QatStep
from tfopt.core.step_records import QatRecord
from tfopt.experiments.steps.base import StepContext


class QuantizeStep:
    kinds = ("qat",)
    needs_parent = True

    def run(self, step: QatStep, model, ctx: StepContext):
        preserve = ctx.trial.recipe.is_pruned
        float_model = model
        model = qat.quantize(float_model, preserve_sparsity=preserve)
        # tfmot starts every activation range at [-6, 6] and needs ~1,000 steps to move it;
        # start from the float model's ranges on the calibration images instead.
        qat_ranges.init_activation_ranges(model, float_model, ctx.data.representative(),
                                          batch_size=ctx.config.train_batch_size)
        hist = ctx.finetune(model, ctx.config.qat_epochs)
        return model, QatRecord("qat", hist, preserve_sparsity=preserve)
