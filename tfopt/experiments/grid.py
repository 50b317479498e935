"""The grid of an ablation run: which trials exist and which trial each one builds on.

A trial is (variant, recipe, seed). Every recipe is expanded into the chain of trials it is built
from (see `Recipe.expand`): the variant's baseline `none` (trained once, reused by every trial
of the variant), each step of a pruning series, and so on. A stand-alone `kd` recipe also needs
the teacher variant's baseline. Trials are returned in dependency order; duplicates collapse.

Seeds (`config.seeds`): the whole grid is planned once per seed, seed by seed; every trial of
seed s starts from baseline seed s. Seed 0 keeps the plain id (`vgg19_v01__none`, so a
single-seed workdir resumes as before); seed s > 0 appends `__s<s>`.

Matched controls (issue #14): every variant with a compression recipe that fine-tunes also gets
`control:M` (expanded to control:1..M), M = the most fine-tuning fits of its recipes
(`Recipe.finetune_fits`); a recipe with n fits is paired with `control:n` of the same seed.
With `finetune_epochs=0` nothing fine-tunes and no control is added.
"""

from __future__ import annotations

import dataclasses

from tfopt.core.results import TrialResult
from tfopt.core.recipe import NONE_RECIPE, Recipe, parse_recipe
from tfopt.experiments.config import ExperimentConfig
from tfopt.models.spec import spec_slug


def trial_id(variant: str, recipe: Recipe | str, seed: int = 0) -> str:
    """'tiny_cnn__prune_global_0.2_0.36' (filesystem-safe, unique within a workdir); a technique
    combination contributes its slug: 'resnet101[block=ghost,attention=se]' + 'none' ->
    'resnet101.block-ghost.attention-se__none'; seed s > 0 appends '__s<s>'."""
    suffix = f"__s{seed}" if seed else ""
    return f"{spec_slug(variant)}__{parse_recipe(recipe).id}{suffix}"


def control_recipe(recipe: Recipe) -> Recipe | None:
    """The matched control of `recipe` (`control:n`, n = its fine-tuning fits), or None when it
    is not a compression trial that fine-tunes (a baseline, a stand-alone kd, a control)."""
    if recipe.kinds == ("control",) or recipe.finetune_fits == 0:
        return None
    return parse_recipe(f"control:{recipe.finetune_fits}")


@dataclasses.dataclass(frozen=True)
class Trial:
    """One cell of the grid.

    Attributes:
      id: Unique id (`trial_id`), also the name of its folder under WORKDIR/trials/.
      variant: Zoo id or canonical technique-combination spec (tfopt.models.spec).
      recipe: The recipe (parsed once; `str(recipe)` is its canonical spec).
      parent: Trial whose output model this one starts from (None for a baseline).
      baseline: The variant's baseline trial (accuracy drop and Remaining Parameters Ratio are
        measured against it); equals `id` for a baseline.
      teacher: Trial whose model teaches a `kd` step (None without kd).
      requested: True if the user listed this recipe; False if it was added as a prerequisite.
      seed: The seed of this trial (init, data order, OCNNA images, calibration).
      control: The matched-control trial of a compression trial (same variant and seed).
    """

    id: str
    variant: str
    recipe: Recipe
    parent: str | None
    baseline: str
    teacher: str | None = None
    requested: bool = True
    seed: int = 0
    control: str | None = None

    @property
    def deps(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(
                d for d in (self.parent, self.baseline, self.teacher) if d and d != self.id
            )
        )

    def failed(self, error: str, **fields) -> TrialResult:
        """This trial's failed row (the one shape: `TrialResult.failed`)."""
        fields = {"seed": self.seed, "control_trial": self.control, **fields}
        return TrialResult.failed(
            self.id, self.variant, self.recipe.spec(), error, requested=self.requested, **fields
        )

    def to_dict(self) -> dict:
        """Plain JSON types (the recipe as its spec)."""
        return {**dataclasses.asdict(self), "recipe": self.recipe.spec()}


def plan(config: ExperimentConfig) -> list[Trial]:
    """All trials of `config`, seed by seed, each after the trials it depends on."""
    out: list[Trial] = []
    for seed in config.seeds:
        out += _plan_seed(config, seed)
    return out


def _with_controls(config: ExperimentConfig, variant: str) -> list[Recipe]:
    """The variant's requested recipes, plus its matched control series if one is needed."""
    recipes = [r for r in config.recipes if variant in config.variants_for(r)]
    fits = [r.finetune_fits for r in recipes if control_recipe(r) is not None]
    if config.finetune_epochs == 0:  # nothing fine-tunes: the baseline is the control
        fits = []
    if fits and not any(r.kinds == ("control",) and r.finetune_fits >= max(fits) for r in recipes):
        recipes.append(parse_recipe(f"control:{max(fits)}"))
    return recipes


def _plan_seed(config: ExperimentConfig, seed: int) -> list[Trial]:
    """The trials of one seed (long because the kd/teacher wiring reads best in one place)."""
    trials: dict[str, Trial] = {}
    requested = {r.spec() for r in config.recipes}

    def add(variant: str, recipe: Recipe, is_requested: bool) -> str:
        tid = trial_id(variant, recipe, seed)
        if tid in trials:
            if is_requested and not trials[tid].requested:
                trials[tid] = dataclasses.replace(trials[tid], requested=True)
            return tid
        base_id = trial_id(variant, NONE_RECIPE, seed)
        if recipe.is_baseline:
            trials[tid] = Trial(tid, variant, recipe, None, tid, None, is_requested, seed)
            return tid
        add(variant, NONE_RECIPE, False)
        parent = recipe.parent()
        teacher = None
        if recipe.last.kind == "kd":
            if len(recipe.steps) == 1:  # stand-alone: trained from scratch, teacher's baseline
                teacher = add(config.kd_teacher, NONE_RECIPE, False)
                parent_id = None
            else:  # recovery: the step's input model teaches
                parent_id = add(variant, parent, False)
                teacher = parent_id
        else:
            parent_id = add(variant, parent, False)
        ctrl = control_recipe(recipe)
        control = trial_id(variant, ctrl, seed) if ctrl is not None else None
        trials[tid] = Trial(tid, variant, recipe, parent_id, base_id, teacher, is_requested,
                            seed, control)
        return tid

    for variant in config.variants:
        for recipe in _with_controls(config, variant):
            for prefix in recipe.expand()[:-1]:
                add(variant, prefix, False)
            add(variant, recipe, recipe.spec() in requested)
    # Baselines first (they are the most expensive and everything needs them), then the rest in
    # dependency order -- insertion order already is one.
    ordered = [t for t in trials.values() if t.parent is None and t.teacher is None]
    ordered += [t for t in trials.values() if not (t.parent is None and t.teacher is None)]
    return _topological(ordered)


def _topological(trials: list[Trial]) -> list[Trial]:
    by_id = {t.id: t for t in trials}
    out: list[Trial] = []
    seen: set[str] = set()

    def visit(t: Trial):
        if t.id in seen:
            return
        seen.add(t.id)
        for d in t.deps:
            visit(by_id[d])
        out.append(t)

    for t in trials:
        visit(t)
    return out
