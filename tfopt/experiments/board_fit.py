"""The ablation driver's `--board` pre-pass: which variants can fit the board, before training.

  python -m tfopt.experiments.ablation --flagfile=... --board=nano33ble [--board_reserve=0.2]

Every variant of the run is built untrained at its width (`ExperimentConfig.width_of`: the
`--variant_widths` entry, else `--width_multiplier`), converted to int8 and loaded in TFLite
Micro exactly as `python -m tfopt.experiments.fit` does (`fit.measure`; the bytes and the arena
do not depend on the weight values). A variant whose int8 flash or arena exceeds the board's
budget (after the reserve) is not trained: each of its trials gets a results row with status
`skipped` and the reason, e.g. `skipped: does not fit nano33ble: arena 323.3 KiB > 204.8 KiB`;
the report lists them apart from failures. The rows measured are cached in
WORKDIR/board_fit.fit.jsonl (a resume re-measures nothing). A variant that is only a
dependency of a kept trial (a `kd` teacher) is trained anyway: it never goes to the board.
"""

from __future__ import annotations

import json
import os

from tfopt.core.results import TrialResult
from tfopt.experiments import fit
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial
from tfopt.tflite import boards

CACHE_NAME = "board_fit.cfg"  # fit.FitSpec.cache_path makes it board_fit.fit.jsonl


def input_facts(config: ExperimentConfig) -> tuple[tuple[int, int, int], int]:
    """(H, W, C) and number of classes of the run's models (one test image is opened)."""
    from tfopt import data as tfdata

    pre = {"image_size": (config.image_size,) * 2 if config.image_size else None,
           "to_rgb": config.to_rgb, "data_dir": config.data_dir}
    _, info = tfdata.load(config.dataset, "test", limit=1,
                          **{k: v for k, v in pre.items() if v not in (None, False)})
    return tuple(int(d) for d in info.image_shape), int(info.num_classes)


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def skip_reason(budget: boards.Budget, row: dict) -> str | None:
    """None when the measured row fits; else 'does not fit BOARD: arena X KB > Y KB[; ...]'."""
    if row.get("status") == "failed":
        return None  # not measurable here: let the trial run and fail (or not) for itself
    if fit.fit_of(budget, row).fits:
        return None
    flash, arena = fit.lower_bounds(row)
    parts = []
    if flash is not None and budget.max_flash_bytes is not None and flash > budget.max_flash_bytes:
        parts.append(f"flash {_kb(flash)} > {_kb(budget.max_flash_bytes)}")
    if arena is not None and budget.max_arena_bytes is not None and arena > budget.max_arena_bytes:
        parts.append(f"arena {_kb(arena)} > {_kb(budget.max_arena_bytes)}")
    lat = row.get("latency_1t_median_ms")
    if lat is not None and budget.max_latency_ms is not None and lat > budget.max_latency_ms:
        parts.append(f"latency {lat:.2f} ms > {budget.max_latency_ms:g} ms")
    return f"does not fit {budget.board.name}: " + ("; ".join(parts) or "over budget")


def misfits(config: ExperimentConfig, *, log=print) -> dict[str, str]:
    """{variant: reason} for the variants of `config` that cannot fit `config.board`."""
    budget = boards.budget(config.board, config.board_reserve)
    shape, classes = input_facts(config)
    spec = fit.FitSpec(config.board, tuple(config.variants), (), shape, classes,
                       config.board_reserve, os.path.join(config.workdir, CACHE_NAME),
                       seed=config.seed)
    cache = fit.read_cache(spec.cache_path)
    log(f"board pre-pass: {budget.describe()}; {len(config.variants)} variants "
        f"(input {'x'.join(map(str, shape))}, {classes} classes)")
    out: dict[str, str] = {}
    for i, variant in enumerate(config.variants, 1):
        width = config.width_of(variant)
        key = fit.cache_key(variant, width, shape, classes)
        cached = fit.reusable(cache.get(key), budget)
        row = cache[key] if cached else fit.measure(
            variant, width, spec, budget.max_flash_bytes,
            latency=budget.max_latency_ms is not None)
        if not cached:
            with open(spec.cache_path, "a") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")
        log(fit.progress_line(i, len(config.variants), row, budget, cached))
        reason = skip_reason(budget, row)
        if reason:
            out[variant] = reason
    return out


def split_trials(trials: list[Trial], skip: dict[str, str]) -> tuple[list[Trial], list[Trial]]:
    """(trials to run, trials skipped): a skipped variant's trials go, except those a kept
    trial depends on (e.g. a kd teacher's baseline)."""
    by_id = {t.id: t for t in trials}
    keep = {t.id for t in trials if t.variant not in skip}
    stack = list(keep)
    while stack:
        for dep in by_id[stack.pop()].deps:
            if dep not in keep:
                keep.add(dep)
                stack.append(dep)
    return [t for t in trials if t.id in keep], [t for t in trials if t.id not in keep]


def skipped_row(trial: Trial, reason: str, config: ExperimentConfig) -> TrialResult:
    return TrialResult(trial.id, trial.variant, trial.recipe.spec(), "skipped",
                       requested=trial.requested, error=f"skipped: {reason}",
                       width_multiplier=config.width_of(trial.variant),
                       config_fingerprint=config.fingerprint())


def apply_board(config: ExperimentConfig, trials: list[Trial], store, *, log=print) -> list[Trial]:
    """The ablation hook: measure, record a `skipped` row per dropped trial (once: not again
    while its latest row already says so), and return the trials to run."""
    skip = misfits(config, log=log)
    run, dropped = split_trials(trials, skip)
    latest = {r.trial_id: r for r in store.rows()}
    for t in dropped:
        row = skipped_row(t, skip[t.variant], config)
        old = latest.get(t.id)
        if old is None or (old.status, old.error) != (row.status, row.error):
            store.append(row)
    if dropped:
        log(f"board pre-pass: {len(dropped)} trials of {len(skip)} variants skipped: "
            + "; ".join(f"{v}: {r}" for v, r in skip.items()))
    return run
