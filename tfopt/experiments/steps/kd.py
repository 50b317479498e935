"""`kd`: knowledge distillation (softened logits at temperature T, weight alpha).

Stand-alone (`kd` is the whole recipe): the untrained variant learns from `kd_teacher`'s
baseline with the baseline recipe (`kd_epochs`, default `train_epochs`). After another step: a
copy of the parent model is fine-tuned with the parent itself as teacher.
"""

from __future__ import annotations

from tfopt.compress import distill
from tfopt.core.recipe import KdStep
from tfopt.core.step_records import KdRecord
from tfopt.experiments.steps.base import StepContext, clone, history_summary


class DistillStep:
    kinds = ("kd",)
    needs_parent = True  # unless stand-alone (the trial has no parent)

    def run(self, step: KdStep, model, ctx: StepContext):
        c = ctx.config
        if ctx.trial.parent is None:
            teacher, student = ctx.load_trial_model(ctx.trial.teacher), model
            tconf = ctx.train_config(epochs=c.kd_epochs or c.train_epochs)
        else:
            teacher, student = model, clone(model)
            tconf = ctx.finetune_config(max(1, c.finetune_epochs))
        result = distill.distill(
            student,
            teacher,
            ctx.data.train_ds,
            tconf,
            val_ds=ctx.val_ds,
            workdir=ctx.train_dir,
            temperature=step.temperature,
            alpha=step.alpha,
        )
        return student, KdRecord("kd", history_summary(result))
