"""Trial steps: one step type per recipe kind, registered here (`STEPS`, kind -> step).

Each step type has `kinds` (the recipe kinds it runs), `needs_parent` (whether it starts from
the parent trial's model rather than the untrained variant) and
`run(recipe_step, model, ctx) -> (model, StepRecord)`. A trial runs the last step of its recipe
on its parent's model (`tfopt.experiments.runner`). Importing this package imports TensorFlow.
"""

from __future__ import annotations

from tfopt.core.choices import RECIPE_STEP_KINDS
from tfopt.experiments.steps.base import StepContext
from tfopt.experiments.steps.control import ControlFinetuneStep
from tfopt.experiments.steps.kd import DistillStep
from tfopt.experiments.steps.ocnna import FilterPruneStep
from tfopt.experiments.steps.prune import PruneScheduleStep, PruneSeriesStep
from tfopt.experiments.steps.qat import QuantizeStep
from tfopt.experiments.steps.train import TrainStep

STEP_TYPES = (TrainStep, PruneSeriesStep, PruneScheduleStep, QuantizeStep, FilterPruneStep,
              DistillStep, ControlFinetuneStep)
STEPS = {kind: step_type() for step_type in STEP_TYPES for kind in step_type.kinds}
if set(STEPS) != set(RECIPE_STEP_KINDS):  # a new recipe kind needs a step type
    raise ImportError(f"steps for {sorted(set(RECIPE_STEP_KINDS) ^ set(STEPS))} missing or extra")

__all__ = ["STEPS", "STEP_TYPES", "StepContext"]
