"""TrialResults -> the paper's tables (lists of dicts; rendering is in `report`). TensorFlow-free.

Tables (Sobolewski & Szyc): technique check-marks per variant with params [M], params [%],
FLOPs [M], FLOPs [%], size [MB], accuracy [%]; the pruning table per variant (sparsity, non-zero
count, accuracy); the quantization table (mode, bytes, accuracy, latency, arena); OCNNA vs its
L1/random baselines; and the smallest model for accepted drops of 0.5 / 1 / 2 / 5 pp.
Units: [M] = millions, [%] = of the reference baseline, [MB] = 2^20 bytes of the Keras weights
file, accuracy in percent, drops in percentage points.

Every public function takes TrialResults or row dicts of any schema version (`as_results`).
"""

from __future__ import annotations

import math

from tfopt.core.choices import OCNNA_KINDS, PRUNE_KINDS
from tfopt.core.recipe import OcnnaStep, parse_step
from tfopt.core.results import TrialResult, as_results
from tfopt.experiments.recommend import recommend, reference_of, reference_row

RECOMMEND_DROPS_PP = (0.5, 1.0, 2.0, 5.0)


def ok_rows(rows) -> list[TrialResult]:
    return [r for r in as_results(rows) if r.ok]


def _mb(nbytes):
    return None if nbytes is None else nbytes / 2**20


def _reference(rows: list[TrialResult]) -> TrialResult | None:
    return reference_row(rows, reference_of(rows))


def summary_table(rows) -> list[dict]:
    """One line per ok trial: size, cost and accuracy, with % of the reference baseline."""
    rows = ok_rows(rows)
    ref = _reference(rows)
    out = []
    for r in rows:
        t8 = r.int8
        out.append(
            {
                "trial": r.trial_id,
                "variant": r.variant,
                "recipe": r.recipe,
                "params_M": r.params / 1e6,
                "nonzero_M": r.nonzero / 1e6,
                "params_pct": 100.0 * r.nonzero / ref.params if ref else None,
                "flops_M": r.flops / 1e6,
                "flops_pct": 100.0 * r.flops / ref.flops if ref and ref.flops else None,
                "size_MB": _mb(r.keras_weights_bytes),
                "accuracy_pct": r.keras_accuracy_pct,
                "drop_pp": (ref.keras_accuracy_pct - r.keras_accuracy_pct) if ref else None,
                "int8_bytes": t8.bytes,
                "int8_accuracy_pct": t8.accuracy_pct,
                "rpr_pct": r.rpr_pct,
                "wall_time_s": r.wall_time_s,
            }
        )
    return out


TECHNIQUE_TABLE_ROWS = ("params [M]", "params [%]", "FLOPs [M]", "FLOPs [%]", "size [MB]",
                        "accuracy [%]")


def technique_table(rows) -> tuple[list[str], list[str], dict]:
    """The paper's check-mark table over the baselines: (technique names, variants, cells)."""
    ok = ok_rows(rows)
    base = [r for r in ok if r.recipe == "none"]
    ref = _reference(ok)
    techniques: list[str] = []
    for r in base:
        techniques += [k for k in r.techniques if k not in techniques]
    variants = [r.variant for r in base]
    cells: dict = {}
    for r in base:
        v = r.variant
        for k in techniques:
            cells[(k, v)] = _check(r.techniques.get(k))
        cells[("params [M]", v)] = f"{r.params / 1e6:.3f}"
        cells[("params [%]", v)] = f"{100 * r.params / ref.params:.2f}" if ref else ""
        cells[("FLOPs [M]", v)] = f"{r.flops / 1e6:.2f}"
        cells[("FLOPs [%]", v)] = f"{100 * r.flops / ref.flops:.2f}" if ref and ref.flops else ""
        cells[("size [MB]", v)] = f"{_mb(r.keras_weights_bytes or 0):.3f}"
        cells[("accuracy [%]", v)] = f"{r.keras_accuracy_pct:.2f}"
    return techniques, variants, cells


def _check(value) -> str:
    if value is True:
        return "✓"
    if value in (False, None, 0, 0.0, 1, "", "none", "standard", "default"):
        return ""
    return str(value)


def pruning_table(rows) -> list[dict]:
    """Per variant: its baseline, then every pruning trial ordered by sparsity."""
    rows = ok_rows(rows)
    out = []
    for variant in dict.fromkeys(r.variant for r in rows):
        vrows = [r for r in rows if r.variant == variant]
        pruned = [
            r for r in vrows if any(k in PRUNE_KINDS for k in r.kinds) and "qat" not in r.kinds
        ]
        if not pruned:
            continue
        base = next((r for r in vrows if r.recipe == "none"), None)
        pruned.sort(key=lambda r: (r.recipe.split(":")[0], r.conv_sparsity or 0))
        for r in ([base] if base else []) + pruned:
            out.append(
                {
                    "variant": variant,
                    "recipe": r.recipe,
                    "target_sparsity_pct": 100 * r.target_sparsity if r.target_sparsity else 0.0,
                    "conv_sparsity_pct": 100 * (r.conv_sparsity or 0.0),
                    "nonzero": (
                        r.paper_nonzero_params if r.paper_nonzero_params is not None else r.nonzero
                    ),
                    "accuracy_pct": r.keras_accuracy_pct,
                    "int8_accuracy_pct": r.int8.accuracy_pct,
                    "int8_gzip_bytes": r.int8.gzip_bytes,
                }
            )
    return out


# Order and short names of `tfopt.tflite.inspect.bytes_by_category` in the report column.
BREAKDOWN_KEYS = (("weights", "W"), ("quantization", "Q"), ("strings", "S"), ("metadata", "M"),
                  ("structure", "G"), ("duplicates", "D"))


def bytes_breakdown(inspect: dict | None) -> str | None:
    """'W 138,131 · Q 9,276 · S 40 · M 631 · G 51,890' (B; weights, quantization, strings,
    metadata, graph structure, duplicates -- the last only when not 0) or None."""
    cats = (inspect or {}).get("bytes_by_category")
    if not cats:
        return None
    return " · ".join(f"{short} {cats[key]:,}" for key, short in BREAKDOWN_KEYS
                      if key in cats and (key != "duplicates" or cats[key]))


def quantization_table(rows) -> list[dict]:
    """One line per (trial, TFLite mode): bytes, gzip bytes, accuracy, latency, arena."""
    out = []
    for r in ok_rows(rows):
        for mode, t in r.tflite.items():
            out.append(
                {
                    "trial": r.trial_id,
                    "variant": r.variant,
                    "recipe": r.recipe,
                    "mode": mode,
                    "status": t.status,
                    "bytes": t.bytes,
                    "gzip_bytes": t.gzip_bytes,
                    "accuracy_pct": t.accuracy_pct,
                    "keras_accuracy_pct": r.keras_accuracy_pct,
                    "latency_ms": t.latency_1t_median_ms,
                    "latency_p90_ms": t.latency_1t_p90_ms,
                    "bytes_breakdown": bytes_breakdown(t.inspect),
                    "arena_bytes": r.micro.arena_bytes if mode == "int8" else None,
                    "micro_status": r.micro.status if mode == "int8" else None,
                    "error": t.error,
                }
            )
    return out


def ocnna_table(rows) -> list[dict]:
    """OCNNA vs L1 vs random filter ranking, per variant and k (equal k ~ equal RPR)."""
    out = []
    for r in ok_rows(rows):
        if not any(k in OCNNA_KINDS for k in r.kinds):
            continue
        first = parse_step(r.recipe.split("+")[0])
        if not isinstance(first, OcnnaStep):
            continue
        out.append(
            {
                "variant": r.variant,
                "recipe": r.recipe,
                "criterion": first.kind,
                "k": f"{first.k:g}",
                "rpr_pct": r.rpr_pct,
                "flops_ratio_pct": r.flops_ratio_pct,
                "accuracy_pct": r.keras_accuracy_pct,
                "drop_pp": r.accuracy_drop_pp,
            }
        )
    return sorted(
        out, key=lambda d: (d["variant"], d["recipe"].count("+"), float(d["k"]), d["criterion"])
    )


def recommend_table(rows, drops=RECOMMEND_DROPS_PP, metrics=("bytes", "params")) -> list[dict]:
    """The recommender's answer for each accepted drop and each meaning of 'smallest'."""
    rows = as_results(rows)
    out = []
    for metric in metrics:
        for drop in drops:
            b = recommend(rows, max_accuracy_drop=drop, metric=metric).best
            out.append(
                {
                    "max_drop_pp": drop,
                    "metric": metric,
                    "trial": b.trial_id if b else None,
                    "mode": b.mode if b else None,
                    "accuracy_pct": b.accuracy_pct if b else None,
                    "drop_pp": b.drop_pp if b else None,
                    "nonzero_params": b.nonzero_params if b else None,
                    "bytes": b.bytes if b else None,
                    "arena_bytes": b.arena_bytes if b else None,
                    "path": b.path if b else None,
                }
            )
    return out


def flat_results(rows) -> list[dict]:
    """Rows flattened to one CSV-friendly dict per trial (tflite_<mode>_<key>, micro_<key>)."""
    out = []
    for r in as_results(rows):
        d = r.to_dict()
        flat = {k: v for k, v in d.items() if not isinstance(v, (dict, list))}
        for mode, t in d["tflite"].items():
            flat.update({f"tflite_{mode}_{k}": v for k, v in t.items()
                         if not isinstance(v, (list, dict))})
            seen = t.get("inspect") or {}
            flat.update({f"tflite_{mode}_bytes_{k}": v
                         for k, v in (seen.get("bytes_by_category") or {}).items()})
            flat.update({f"tflite_{mode}_{k}": seen[k] for k in ("num_ops", "peak_bytes")
                         if k in seen})
        flat.update({f"micro_{k}": v for k, v in d["micro"].items() if not isinstance(v, list)})
        out.append(flat)
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (smaller x and higher y are better), sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return front
