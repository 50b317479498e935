"""Weight pruning steps.

`prune_global` / `prune_layer` (`PruneSeriesStep`): one cumulative step of the paper's
iterative L1 magnitude series to the step's target sparsity -- global or per-layer allocation
over conv kernels -- then fine-tuning with the masks held, then stripped. The parent is the
previous step's stripped model, whose zeros are kept.

`prune_poly` / `prune_const` (`PruneScheduleStep`): tfmot's PolynomialDecay or ConstantSparsity
schedule during fine-tuning. Sparsities are fractions of prunable weights set to zero.
"""

from __future__ import annotations

from tfopt.compress import global_pruning, pruning
from tfopt.core.recipe import PruneStep
from tfopt.core.step_records import PruneScheduleRecord, PruneSeriesRecord
from tfopt.experiments.steps.base import StepContext, history_summary


class PruneSeriesStep:
    kinds = ("prune_global", "prune_layer")
    needs_parent = True

    def run(self, step: PruneStep, model, ctx: StepContext):
        allocation = "global" if step.kind == "prune_global" else "layerwise"
        pruner = global_pruning.GlobalPruner(model, allocation=allocation, scope="conv")
        info = pruner.step(sparsity=step.target)
        hist = {}
        if ctx.config.finetune_epochs > 0:
            hist = ctx.finetune(pruner.model, callbacks=pruner.callbacks())
            pruning.apply_masks(pruner.model)
        pruned = pruner.stripped()
        achieved = pruning.verify_sparsity(pruned, step.target)
        return pruned, PruneSeriesRecord(
            step.kind, hist, allocation=allocation, achieved_sparsity=achieved,
            removed=info.removed, tie_repairs=info.tie_repairs,
        )


class PruneScheduleStep:
    kinds = ("prune_poly", "prune_const")
    needs_parent = True

    def run(self, step: PruneStep, model, ctx: StepContext):
        c = ctx.config
        schedule = "polynomial" if step.kind == "prune_poly" else "constant"
        res = pruning.prune_and_finetune(
            model,
            ctx.data.train_ds,
            ctx.finetune_config(max(1, c.finetune_epochs)),
            target_sparsity=step.target,
            schedule=schedule,
            num_examples=ctx.data.train_examples,
            val_ds=ctx.val_ds,
            workdir=ctx.train_dir,
        )
        return res.model, PruneScheduleRecord(
            step.kind, history_summary(res.metrics), schedule=schedule,
            achieved_sparsity=res.achieved_sparsity, begin_step=res.plan.begin_step,
            end_step=res.plan.end_step, frequency=res.plan.frequency,
        )
