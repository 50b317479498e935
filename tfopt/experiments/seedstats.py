"""Results over repeated seeds (issue #14): mean ± std (n) per trial, matched-control drops,
significance marks and the baselines' convergence flags. TensorFlow-free (tfopt.stats).

A *group* is one (variant, recipe) over its seeds (`TrialResult.seed`; rows without one count
as seed 0). Its **controlled drop** is measured against its matched control, per seed:

- a compression recipe with n fine-tuning fits (`Recipe.finetune_fits`) -> `control:n` of the
  same variant (the baseline fine-tuned n times with the same plateau recipe);
- a baseline of another variant, or a stand-alone `kd` (trained like a baseline) -> the
  reference variant's baseline (both got the baseline recipe);
- the reference baseline -> itself (0);
- without a control row (an older run, a failed control) -> the variant's own baseline, and
  the group says `controlled=False`.

The **raw drop** is always against the variant's own baseline (what the table showed before).
Drops are paired per seed when both sides have the same seeds (`tfopt.stats.matched_drop`).
Significance mark: "" significant, " (n.s.)" within the spread, " (?)" one seed.
"""

from __future__ import annotations

import dataclasses

from tfopt import stats
from tfopt.core.recipe import parse_recipe
from tfopt.core.results import TrialResult

MARKS = {True: "", False: " (n.s.)", None: " (?)"}


def seed_of(row: TrialResult) -> int:
    return int(row.seed) if row.seed is not None else 0


def groups(rows) -> dict[tuple[str, str], dict[int, TrialResult]]:
    """{(variant, recipe): {seed: ok row}} in first-seen order."""
    out: dict[tuple[str, str], dict[int, TrialResult]] = {}
    for r in rows:
        if r.ok:
            out.setdefault((r.variant, r.recipe), {})[seed_of(r)] = r
    return out


def accuracies(by_seed: dict[int, TrialResult], mode: str | None = None) -> dict[int, float]:
    """{seed: Keras accuracy %} (mode None) or {seed: the `mode` TFLite file's accuracy %}."""
    out = {}
    for s, r in by_seed.items():
        if mode is None:
            acc = r.keras_accuracy_pct
        else:
            t = r.tflite.get(mode)
            acc = t.accuracy_pct if t is not None and t.ok else None
        if acc is not None:
            out[s] = float(acc)
    return out


def reference_of(rows) -> str | None:
    for r in rows:
        if r.reference_variant:
            return r.reference_variant
    return rows[0].variant if rows else None


def control_of(variant: str, recipe: str, reference: str | None
               ) -> tuple[tuple[str, str], bool]:
    """((variant, recipe) of the matched control group, whether it is a true matched control)."""
    try:
        parsed = parse_recipe(recipe)
    except ValueError:
        return (variant, "none"), False
    if parsed.kinds == ("control",):
        return (variant, "none"), False
    fits = parsed.finetune_fits
    if fits == 0:  # a baseline, a stand-alone kd: the reference baseline is the control
        return (reference or variant, "none"), True
    return (variant, f"control:{fits}"), True


@dataclasses.dataclass(frozen=True)
class GroupStats:
    """One (variant, recipe) over its seeds. Accuracies in %, drops in pp."""

    variant: str
    recipe: str
    seeds: tuple[int, ...]
    accuracy: stats.Summary
    int8: stats.Summary | None
    raw_drop: stats.Drop | None  # vs the variant's own baseline
    controlled_drop: stats.Drop | None  # vs the matched control
    control: str  # the control group's recipe ("control:2", "none", ...)
    controlled: bool  # False: no matched control row, fell back to the baseline
    not_converged: tuple[str, ...] = ()  # per seed: "s1: +2.50 pp in the last 3 epochs"

    @property
    def significant(self) -> bool | None:
        d = self.controlled_drop
        return None if d is None else stats.drop_significant(d)


def _drop(control: dict[int, float], values: dict[int, float]) -> stats.Drop | None:
    if not control or not values:
        return None
    return stats.matched_drop(control, values)


def convergence_notes(by_seed: dict[int, TrialResult]) -> tuple[str, ...]:
    """"not converged: +x pp in the last k epochs" per seed of a baseline that still gained."""
    notes = []
    for s, r in sorted(by_seed.items()):
        vals = r.steps[0].values if r.steps else {}
        if vals.get("converged") is False:
            notes.append(f"s{s}: +{float(vals.get('gain_last_k_pp', 0.0)):.2f} pp in the last "
                         f"{vals.get('convergence_k', '?')} epochs")
    return tuple(notes)


def group_stats(rows, mode: str | None = None) -> list[GroupStats]:
    """Every (variant, recipe) group of the ok rows, with its drops (Keras accuracies; with
    `mode`, the candidate's side uses that TFLite file's accuracy, the control stays float)."""
    rows = [r for r in rows if r.ok]
    reference = reference_of(rows)
    g = groups(rows)
    out = []
    for (variant, recipe), by_seed in g.items():
        values = accuracies(by_seed, mode)
        if not values:
            continue
        ctrl_key, matched = control_of(variant, recipe, reference)
        if ctrl_key not in g:
            ctrl_key, matched = (variant, "none"), False
        control = accuracies(g.get(ctrl_key, {}))
        own_base = accuracies(g.get((variant, "none"), {}))
        int8 = accuracies(by_seed, "int8")
        out.append(GroupStats(
            variant, recipe, tuple(sorted(values)), stats.summarize(values.values()),
            stats.summarize(int8.values()) if int8 else None,
            _drop(own_base, values), _drop(control, values), ctrl_key[1], matched,
            convergence_notes(by_seed) if recipe == "none" else ()))
    return out


def _pm(x: stats.Summary | None) -> str:
    return "" if x is None else x.text()


def _drop_text(d: stats.Drop | None, mark: bool = False) -> str:
    if d is None:
        return ""
    spread = f" ± {d.std:.2f}" if d.std is not None else ""
    sig = MARKS[stats.drop_significant(d)] if mark else ""
    return f"{d.mean:+.2f}{spread}{sig}"


def seeds_table(rows) -> list[dict]:
    """report.md's "Across seeds" table: one record per (variant, recipe)."""
    recs = []
    reference = reference_of([r for r in rows if r.ok])
    for gs in group_stats(rows):
        control = gs.control if gs.controlled else f"{gs.control} (no control)"
        if gs.recipe.startswith("control") or (gs.recipe == "none" and gs.variant == reference):
            control = "—"  # a control, or the reference baseline: nothing to compare with
            gs = dataclasses.replace(gs, controlled_drop=None)
        elif gs.recipe == "none":
            control = f"{reference} none"
        recs.append({
            "variant": gs.variant,
            "recipe": gs.recipe,
            "n": gs.accuracy.n,
            "accuracy": _pm(gs.accuracy),
            "int8_accuracy": _pm(gs.int8),
            "drop": _drop_text(gs.raw_drop),
            "control": control,
            "controlled_drop": _drop_text(gs.controlled_drop, mark=True),
            "converged": ("not converged: " + "; ".join(gs.not_converged)) if gs.not_converged
            else ("yes" if gs.recipe == "none" else ""),
        })
    return recs


PRUNED = " pruned"  # suffix of a variant's series label in `sparsity_points`


def sparsity_points(rows, mode: str | None = None
                    ) -> tuple[list, tuple[str, list[float]] | None]:
    """Error-bar points (series, conv sparsity %, accuracies per seed) of every pruning series
    and baseline at 0 %, and the longest control series' values as the reference band.
    Accuracies are Keras's (mode None) or those of each trial's `mode` TFLite file."""
    g = groups([r for r in rows if r.ok])
    points, band = [], None
    for (variant, recipe), by_seed in g.items():
        kinds = {k.split(":")[0] for k in recipe.split("+")}
        accs = list(accuracies(by_seed, mode).values())
        if not accs:
            continue
        if recipe == "none":
            points.append((f"{variant}{PRUNED}", 0.0, accs))
        elif kinds & {"prune_global", "prune_layer", "prune_poly", "prune_const"} and \
                "qat" not in kinds:
            sp = [r.conv_sparsity for r in by_seed.values() if r.conv_sparsity is not None]
            points.append((f"{variant}{PRUNED}", 100.0 * sum(sp) / max(1, len(sp)), accs))
        elif kinds == {"control"}:
            n = parse_recipe(recipe).finetune_fits
            if band is None or n >= band[0]:
                band = (n, accs, variant)
    ref = (f"{band[2]} control (baseline + {band[0]} fine-tunes)", band[1]) if band else None
    return points, ref


def bytes_points(rows, mode: str = "int8") -> list:
    """(variant, .tflite bytes, accuracies per seed) of every non-control group."""
    out = []
    for (variant, recipe), by_seed in groups([r for r in rows if r.ok]).items():
        if recipe.startswith("control"):
            continue
        accs = list(accuracies(by_seed, mode).values())
        sizes = [r.tflite[mode].bytes for r in by_seed.values()
                 if mode in r.tflite and r.tflite[mode].bytes]
        if accs and sizes:
            out.append((f"{variant} {recipe}", float(sum(sizes) / len(sizes)), accs))
    return out


PAPER_LABEL = "{variant} paper (CIFAR-10 test split, 150 GPU epochs)"


def paper_sparsity_points(rows, points) -> list:
    """The paper's pruning points of every variant that has a series in `points`, when the
    rows are CIFAR-10 (`tfopt.core.paper_figures.is_cifar10`); [] otherwise."""
    variants = dict.fromkeys(label[: -len(PRUNED)] for label, _, _ in points
                             if label.endswith(PRUNED))
    return paper_points(rows, variants)


def paper_points(rows, variants) -> list:
    """The paper's pruning points of each of `variants` when the rows are CIFAR-10; [] else."""
    from tfopt.core import paper_figures as paper

    ok = [r for r in rows if r.ok]
    if not ok or not paper.is_cifar10(ok[0].dataset, ok[0].num_classes):
        return []
    return [(PAPER_LABEL.format(variant=v), x, [acc])
            for v in variants for x, acc in paper.pruning_curve(v)]


def write_seed_plots(rows, outdir: str) -> dict[str, str]:
    """accuracy_vs_sparsity.png (with the paper's points beside ours on CIFAR-10) and
    accuracy_vs_bytes.png, with error bars (mean ± std over seeds)."""
    from tfopt import plots_stats

    paths = {}
    points, band = sparsity_points(rows)
    points = points + paper_sparsity_points(rows, points)
    if len(points) > 1:
        paths["accuracy_vs_sparsity"] = plots_stats.accuracy_vs_sparsity(
            points, f"{outdir}/accuracy_vs_sparsity.png", reference=band)
    bpoints = bytes_points(rows)
    if bpoints:
        paths["accuracy_vs_bytes"] = plots_stats.accuracy_vs_bytes(
            bpoints, f"{outdir}/accuracy_vs_bytes.png")
    return paths
