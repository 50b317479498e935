"""The paper's question, answered from a results file: which model is smallest for a given
maximum accepted accuracy drop (and, beyond the paper, a flash and RAM budget)?

  python -m tfopt.experiments.recommend --results=WORKDIR --max_accuracy_drop=1 \
      [--max_flash_kb=256 --max_arena_kb=64 --metric=params|flops|bytes|latency]
      [--board=nano33ble --reserve=0.2]

`--board` (tfopt.tflite.boards) sets the flash/arena budget (latency for `phone`) left after
the application reserve, unless --max_flash_kb/--max_arena_kb are given, and prints the margin
the recommended model leaves on the board.

A candidate is one converted model: (variant, recipe, TFLite mode) over its seeds. Its accuracy
is the accuracy of the .tflite file (what ships; the Keras accuracy if TFLite accuracy was not
measured), mean over seeds. Its drop is the **controlled drop** (issue #14): its matched
control's Keras accuracy minus that accuracy per seed (`tfopt.experiments.seedstats`: the
baseline fine-tuned as often with the same recipe; the reference baseline for another variant's
baseline), in percentage points; without a control row, the reference baseline's Keras accuracy
(the run's `reference_variant`, by default its first variant). A candidate is accepted iff the
drop's upper bound, mean + std (`tfopt.stats.drop_upper_bound`), is within the budget; the
answer gives the accuracy's lower bound (mean − std, n seeds) and says whether the runner-up is
indistinguishable (accuracies within their combined spread). Control trials are measuring
instruments, not candidates. Flash = .tflite bytes; arena = the
TFLite Micro arena bytes (int8 models only). Metrics: `params` = non-zero parameters (what
pruning removes), `flops` (fvcore convention), `bytes` (.tflite bytes), `latency` (median ms,
one thread). Ties go to the higher accuracy, then the fewer bytes. TensorFlow-free.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from tfopt import stats
from tfopt.core.choices import METRICS, unknown
from tfopt.core.results import TrialResult, as_results, latest, read_results
from tfopt.experiments import seedstats


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One deployable model. Units: bytes, percent, percentage points, milliseconds."""

    trial_id: str
    variant: str
    recipe: str
    mode: str
    accuracy_pct: float
    drop_pp: float
    params: int
    nonzero_params: int
    flops: int
    bytes: int
    gzip_bytes: int | None
    latency_ms: float | None
    arena_bytes: int | None
    path: str | None
    n: int = 1  # seeds
    accuracies: tuple[float, ...] = ()  # per seed (the shipped file's accuracy, %)
    drop_std_pp: float | None = None  # spread of the drop over seeds (None: one seed)
    drop_bound_pp: float | None = None  # mean + std: what the budget is checked against
    controlled: bool = False  # drop vs a matched control (else vs the reference baseline)
    control: str | None = None  # the control's recipe

    @property
    def accuracy_lower_pct(self) -> float:
        """mean − std over seeds (the mean itself for one seed)."""
        return stats.lower_bound(self.accuracies) if self.accuracies else self.accuracy_pct

    @property
    def bound(self) -> float:
        return self.drop_pp if self.drop_bound_pp is None else self.drop_bound_pp

    def metric(self, name: str) -> float | None:
        return {
            "params": self.nonzero_params,
            "flops": self.flops,
            "bytes": self.bytes,
            "latency": self.latency_ms,
        }[name]


@dataclasses.dataclass(frozen=True)
class Recommendation:
    best: Candidate | None
    reason: str
    considered: int
    rejected: dict  # reason -> count
    reference: str
    reference_accuracy_pct: float | None
    runner_up: Candidate | None = None  # the next smallest accepted candidate
    indistinguishable: bool | None = None  # best vs runner-up accuracy (None: one seed)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return d


def reference_of(rows: list[TrialResult]) -> str | None:
    """The reference variant recorded in the rows (or the first variant seen)."""
    for r in rows:
        if r.reference_variant:
            return r.reference_variant
    return rows[0].variant if rows else None


def reference_row(rows: list[TrialResult], reference: str | None) -> TrialResult | None:
    """The reference variant's ok baseline row."""
    return next(
        (r for r in rows if r.variant == reference and r.recipe == "none" and r.ok), None
    )


def reference_accuracy(rows: list[TrialResult], reference: str | None) -> float | None:
    ref = reference_row(rows, reference)
    return None if ref is None else float(ref.keras_accuracy_pct)


def candidates(
    rows: list, reference: str | None = None
) -> tuple[list[Candidate], str, float | None]:
    """Every ok (variant, recipe, mode) group over its seeds with its controlled drop (rows:
    TrialResults, or row dicts of any schema version)."""
    rows = [r for r in latest(as_results(rows)) if r.ok]
    reference = reference or reference_of(rows)
    ref_acc = reference_accuracy(rows, reference)
    groups = seedstats.groups(rows)
    ref_by_seed = seedstats.accuracies(groups.get((reference, "none"), {}))
    out = []
    for (variant, recipe), by_seed in groups.items():
        if recipe.startswith("control"):
            continue
        ctrl_key, matched = seedstats.control_of(variant, recipe, reference)
        control = seedstats.accuracies(groups.get(ctrl_key, {})) if matched else {}
        if not control:
            control, matched = ref_by_seed, False
        first = by_seed[min(by_seed)]
        for mode, t in sorted(first.tflite.items()):
            if not t.ok or t.bytes is None:
                continue
            accs = {}
            for s_, r in by_seed.items():
                tm = r.tflite.get(mode)
                acc = tm.accuracy_pct if tm is not None and tm.ok else None
                acc = r.keras_accuracy_pct if acc is None and tm is not None and tm.ok else acc
                if acc is not None:
                    accs[s_] = float(acc)
            if not accs:
                continue
            if control:
                d = stats.matched_drop(control, accs)
            else:  # no reference row either: the trial's own baseline accuracy
                base = first.baseline_accuracy_pct
                if base is None:
                    continue
                d = stats.matched_drop({0: float(base)}, {0: sum(accs.values()) / len(accs)})
            out.append(_candidate(first, mode, t, accs, d, matched, ctrl_key[1]))
    return out, reference, ref_acc


def _candidate(r: TrialResult, mode: str, t, accs: dict, d, matched: bool, control: str):
    vals = tuple(accs[s] for s in sorted(accs))
    return Candidate(
        trial_id=r.trial_id,
        variant=r.variant,
        recipe=r.recipe,
        mode=mode,
        accuracy_pct=round(sum(vals) / len(vals), 4),
        drop_pp=round(d.mean, 4),
        params=int(r.params),
        nonzero_params=int(r.nonzero),
        flops=int(r.flops),
        bytes=int(t.bytes),
        gzip_bytes=t.gzip_bytes,
        latency_ms=t.latency_1t_median_ms,
        arena_bytes=(r.micro.arena_bytes if mode == "int8" and r.micro.status == "ok" else None),
        path=t.path,
        n=len(vals),
        accuracies=vals,
        drop_std_pp=None if d.std is None else round(d.std, 4),
        drop_bound_pp=round(stats.drop_upper_bound(d), 4),
        controlled=matched,
        control=control if matched else None,
    )


def recommend(
    rows: list,
    *,
    max_accuracy_drop: float,
    max_flash_kb: float | None = None,
    max_arena_kb: float | None = None,
    metric: str = "bytes",
    reference: str | None = None,
    max_latency_ms: float | None = None,
) -> Recommendation:
    """The smallest candidate (by `metric`) whose drop is at most `max_accuracy_drop` pp."""
    if metric not in METRICS:
        raise unknown("metric", metric, METRICS)
    if max_accuracy_drop is None or max_accuracy_drop < 0:
        raise ValueError(f"max_accuracy_drop={max_accuracy_drop!r}; expected >= 0 (pp)")
    cands, reference, ref_acc = candidates(rows, reference)
    rejected: dict[str, int] = {}

    def reject(why):
        rejected[why] = rejected.get(why, 0) + 1

    ok = []
    for c in cands:
        if c.bound > max_accuracy_drop:
            reject(f"accuracy drop (mean + std) > {max_accuracy_drop:g} pp")
        elif max_flash_kb is not None and c.bytes > max_flash_kb * 1024:
            reject(f"flash > {max_flash_kb:g} KiB")
        elif max_arena_kb is not None and c.arena_bytes is None:
            reject("no TFLite Micro arena measured (not int8, or TFLM failed)")
        elif max_arena_kb is not None and c.arena_bytes > max_arena_kb * 1024:
            reject(f"arena > {max_arena_kb:g} KiB")
        elif max_latency_ms is not None and (c.latency_ms is None or c.latency_ms > max_latency_ms):
            reject(f"latency > {max_latency_ms:g} ms or not measured")
        elif c.metric(metric) is None:
            reject(f"{metric} not measured")
        else:
            ok.append(c)
    if not ok:
        why = f"no model meets the constraints among {len(cands)} candidates" + (
            f" ({'; '.join(f'{n}: {k}' for k, n in rejected.items())})" if rejected else ""
        )
        return Recommendation(None, why, len(cands), rejected, reference, ref_acc)
    ranked = sorted(ok, key=lambda c: (c.metric(metric), -c.accuracy_pct, c.bytes, c.trial_id))
    best = ranked[0]
    runner = ranked[1] if len(ranked) > 1 else None
    same = (stats.indistinguishable(best.accuracies, runner.accuracies)
            if runner is not None and best.accuracies and runner.accuracies else None)
    spread = f" ± {best.drop_std_pp:.2f}" if best.drop_std_pp is not None else ""
    against = (f"matched control {best.control}" if best.controlled and best.control != "none"
               else "the reference baseline")
    limits = [f"drop {best.drop_pp:+.2f}{spread} pp (bound {best.bound:+.2f}) vs {against} "
              f"<= {max_accuracy_drop:g} pp"]
    if max_flash_kb is not None:
        limits.append(f"flash {best.bytes / 1024:.1f} KiB <= {max_flash_kb:g} KiB")
    if max_arena_kb is not None:
        limits.append(f"arena {best.arena_bytes / 1024:.1f} KiB <= {max_arena_kb:g} KiB")
    if max_latency_ms is not None:
        limits.append(f"latency {best.latency_ms:.3f} ms <= {max_latency_ms:g} ms")
    reason = (
        f"{best.trial_id} ({best.mode}) has the smallest {metric} "
        f"({_fmt_metric(metric, best.metric(metric))}) of the {len(ok)} of {len(cands)} "
        f"candidates meeting the constraints: {'; '.join(limits)}; accuracy "
        f"{best.accuracy_pct:.2f}% vs reference {reference} {_pct(ref_acc)}"
    )
    return Recommendation(best, reason, len(cands), rejected, reference, ref_acc, runner, same)


def _pct(v):
    return "n/a" if v is None else f"{v:.2f}%"


def _fmt_metric(metric: str, value) -> str:
    if metric == "bytes":
        return f"{value:,} B"
    if metric == "latency":
        return f"{value:.3f} ms"
    return f"{value:,}"


def format_recommendation(rec: Recommendation) -> str:
    if rec.best is None:
        return f"no recommendation: {rec.reason}"
    b = rec.best
    return "\n".join(
        [
            f"recommended: {b.trial_id} [{b.mode}]",
            f"model: variant {b.variant}, recipe {b.recipe}",
            f"why: {rec.reason}",
            f"accuracy: >= {b.accuracy_lower_pct:.2f}% (mean − std, n={b.n}; mean "
            f"{b.accuracy_pct:.2f}%); {rec.reference} baseline {_pct(rec.reference_accuracy_pct)}",
            _drop_line(b),
            _runner_up_line(rec),
            f"params: {b.params:,} (non-zero {b.nonzero_params:,}); FLOPs: {b.flops:,}",
            f"flash: {b.bytes:,} B (gzip {b.gzip_bytes if b.gzip_bytes is not None else 'n/a'} B); "
            f"arena: {b.arena_bytes if b.arena_bytes is not None else 'n/a'} B; "
            "latency (1 thread): "
            f"{'n/a' if b.latency_ms is None else f'{b.latency_ms:.3f} ms'}",
            f"tflite: {b.path}",
        ]
    )


def _drop_line(b: Candidate) -> str:
    spread = f" ± {b.drop_std_pp:.2f}" if b.drop_std_pp is not None else ""
    against = (f"its matched control {b.control}" if b.controlled and b.control != "none"
               else "the reference baseline")
    return (f"controlled drop: {b.drop_pp:+.2f}{spread} pp vs {against}; upper bound "
            f"{b.bound:+.2f} pp")


def _runner_up_line(rec: Recommendation) -> str:
    r = rec.runner_up
    if r is None:
        return "runner-up: none (no other candidate meets the constraints)"
    verdict = {True: "indistinguishable from the recommended model (accuracies within their "
                     "combined spread)",
               False: "distinguishable (accuracies differ by more than their combined spread)",
               None: "cannot tell (one seed)"}[rec.indistinguishable]
    return (f"runner-up: {r.trial_id} [{r.mode}] {r.accuracy_pct:.2f}% (n={r.n}): {verdict}")


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _define_flags():
    """This CLI's own absl FlagValues (defined on first use)."""
    from absl import flags

    global _FLAGS
    if _FLAGS is not None:
        return _FLAGS
    fv = _FLAGS = flags.FlagValues()
    flags.DEFINE_string("results", None, "A WORKDIR of an ablation run, or its results.jsonl.",
                        flag_values=fv)
    flags.DEFINE_float("max_accuracy_drop", None, "Accepted accuracy drop vs the reference "
                       "(pp, >= 0).", flag_values=fv)
    flags.DEFINE_float("max_flash_kb", None, "Largest .tflite in KiB (1024 bytes, > 0).",
                       flag_values=fv)
    flags.DEFINE_float("max_arena_kb", None, "Largest TFLite Micro arena in KiB (> 0).",
                       flag_values=fv)
    flags.DEFINE_string("metric", "bytes", f"What 'smallest' means: {', '.join(METRICS)}.",
                        flag_values=fv)
    flags.DEFINE_string("reference", None, "Reference variant (default: the run's).",
                        flag_values=fv)
    flags.DEFINE_bool("json", False, "Print the answer as JSON.", flag_values=fv)
    flags.DEFINE_string("board", None, "Board profile that sets the budget (tfopt.tflite.boards):"
                        " nano33ble, esp32s3, stm32f746, pico, phone.", flag_values=fv)
    flags.DEFINE_float("reserve", 0.2, "With --board: fraction of SRAM and flash kept for the "
                       "application (in [0, 1)).", flag_values=fv)
    return fv


_FLAGS = None


def _check_flags(fv) -> None:
    from tfopt.core.cli import bad_value

    if not fv.results:
        raise ValueError("--results=WORKDIR is required")
    if not os.path.exists(fv.results):
        raise bad_value("results", fv.results, "an ablation WORKDIR or its results.jsonl "
                        "(no such file or folder)")
    if fv.max_accuracy_drop is None:
        raise ValueError("--max_accuracy_drop=PP is required")
    if not fv.max_accuracy_drop >= 0:
        raise bad_value("max_accuracy_drop", fv.max_accuracy_drop, "a number >= 0 (pp)")
    for name in ("max_flash_kb", "max_arena_kb"):
        value = getattr(fv, name)
        if value is not None and not value > 0:
            raise bad_value(name, value, "a number of KiB > 0")
    if not 0 <= fv.reserve < 1:
        raise bad_value("reserve", fv.reserve, "a fraction in [0, 1)")
    if fv.metric not in METRICS:
        raise unknown("--metric", fv.metric, METRICS)


def _main(argv) -> int:
    from tfopt.core.cli import bad_value as bad_value_

    fv = _define_flags()
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    _check_flags(fv)
    limits = board_limits(fv.board, fv.reserve, fv.max_flash_kb, fv.max_arena_kb)
    rows = read_results(fv.results)
    if not rows:
        raise bad_value_("results", fv.results, "a results file with at least one trial row "
                         "(it holds none that parse)")
    rec = recommend(rows, max_accuracy_drop=fv.max_accuracy_drop, metric=fv.metric,
                    reference=fv.reference, **limits)
    margin = board_margin(fv.board, fv.reserve, rec) if fv.board else None
    if fv.json:
        print(json.dumps({**rec.to_dict(), **({"board": margin} if margin else {})}, indent=2))
    else:
        print(format_recommendation(rec))
        if margin:
            print(f"board: {margin['budget']}\nmargin: {margin['margin']}")
    return 0 if rec.best is not None else 1


def main(argv=None) -> int:
    """`python -m tfopt.experiments.recommend --results=WORKDIR --max_accuracy_drop=PP`;
    argv without the program name; returns the exit status."""
    from tfopt.core import cli

    return cli.run(_main, argv, flag_values=_define_flags(), doc=__doc__,
                   prog="python -m tfopt.experiments.recommend")


def board_limits(board, reserve, max_flash_kb=None, max_arena_kb=None) -> dict:
    """recommend() limits from a board profile; explicit --max_*_kb flags win."""
    limits = {"max_flash_kb": max_flash_kb, "max_arena_kb": max_arena_kb}
    if not board:
        return limits
    from tfopt.tflite import boards

    b = boards.budget(board, reserve)
    if max_flash_kb is None and b.max_flash_bytes is not None:
        limits["max_flash_kb"] = b.max_flash_bytes / 1024
    if max_arena_kb is None and b.max_arena_bytes is not None:
        limits["max_arena_kb"] = b.max_arena_bytes / 1024
    limits["max_latency_ms"] = b.max_latency_ms
    return limits


def board_margin(board, reserve, rec: Recommendation) -> dict:
    """The board budget and what the recommended model leaves of it (bytes, ms)."""
    from tfopt.tflite import boards

    b = boards.budget(board, reserve)
    out = {"budget": b.describe()}
    if rec.best is not None:
        fit = boards.check_fit(b, flash_bytes=rec.best.bytes, arena_bytes=rec.best.arena_bytes,
                               latency_ms=rec.best.latency_ms)
        out.update(margin=boards.format_margin(b, fit), fits=fit.fits,
                   flash_margin_bytes=fit.flash_margin_bytes,
                   arena_margin_bytes=fit.arena_margin_bytes,
                   latency_margin_ms=fit.latency_margin_ms)
    else:
        out["margin"] = "no model fits"
    return out


if __name__ == "__main__":
    sys.exit(main())
