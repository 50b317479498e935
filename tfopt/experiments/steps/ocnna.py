"""`ocnna`, `ocnna_l1`, `ocnna_random`: filter removal by physical surgery, then fine-tuning.

The three kinds differ only in the filter ranking (OCNNA importance, L1 norm, random); `k` is
the percentile below which filters are removed, per layer or over the whole network (`scope`).
"""

from __future__ import annotations

from tfopt.compress import ocnna
from tfopt.core.recipe import OcnnaStep
from tfopt.core.step_records import OcnnaRecord
from tfopt.experiments.steps.base import StepContext
from tfopt.train import evaluate


class FilterPruneStep:
    kinds = ("ocnna", "ocnna_l1", "ocnna_random")
    needs_parent = True

    def run(self, step: OcnnaStep, model, ctx: StepContext):
        images = ctx.data.scoring_images() if step.criterion == "ocnna" else None
        small, rep = ocnna.simplify(
            model, images, k=step.k, scope=step.scope, criterion=step.criterion,
            seed=ctx.config.seed,
        )
        held_out = ctx.val_ds if ctx.val_ds is not None else ctx.data.test_ds
        before_ft = 100.0 * float(evaluate(small, held_out)["accuracy"])
        hist = ctx.finetune(small)
        return small, OcnnaRecord(
            step.kind, hist, criterion=step.criterion, k=step.k, scope=step.scope,
            ocnna_rpr_pct=rep.rpr, ocnna_flops_ratio_pct=rep.flops_ratio,
            params_before=rep.params_before, params_after=rep.params_after,
            filters_before=sum(lr.filters_before for lr in rep.layers),
            filters_after=sum(lr.filters_after for lr in rep.layers),
            skipped=dict(rep.skipped), scoring_images=rep.n_images,
            scoring_seconds=rep.scoring_seconds,
            accuracy_before_finetune_pct=round(before_ft, 4),
        )
