"""results.jsonl -> report.md, CSV tables, PNG plots and a TensorBoard HParams view.

Rebuilt from the results file alone (never from a driver's memory), so it works on a finished,
a resumed or a half-finished run, and in the notebook:

  from tfopt import report
  report.write_report("runs/fashion_mnist_quick")

Tables (the paper's, Sobolewski & Szyc): technique check-marks per variant with params [M],
params [%], FLOPs [M], FLOPs [%], size [MB], accuracy [%]; the pruning table per variant
(sparsity, non-zero count, accuracy); the quantization table (mode, bytes, accuracy, latency,
arena); OCNNA vs its L1/random baselines; and the smallest model for accepted drops of
0.5 / 1 / 2 / 5 pp. Units: [M] = millions, [%] = of the reference baseline, [MB] = 2^20 bytes
of the Keras weights file, accuracy in percent, drops in percentage points.
Plotting uses matplotlib's Agg backend (no display). TensorFlow is imported only for the
optional HParams export.
"""

from __future__ import annotations

import csv
import math
import os

from tfopt.experiments.recommend import (
    format_recommendation,
    recommend,
    reference_accuracy,
    reference_of,
)
from tfopt.experiments.store import latest_rows, read_results

RECOMMEND_DROPS_PP = (0.5, 1.0, 2.0, 5.0)
PRUNE_KINDS = ("prune_global", "prune_layer", "prune_poly", "prune_const")
OCNNA_KINDS = ("ocnna", "ocnna_l1", "ocnna_random")


# --------------------------------------------------------------------------------------------
# rows -> tables (lists of dicts; rendering is separate)
# --------------------------------------------------------------------------------------------


def load_rows(path: str) -> list[dict]:
    """Latest row per trial from a WORKDIR or a results.jsonl file."""
    return latest_rows(read_results(path))


def ok_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("status") == "ok"]


def _ref_row(rows, reference):
    return next(
        (
            r
            for r in rows
            if r.get("variant") == reference
            and r.get("recipe") == "none"
            and r.get("status") == "ok"
        ),
        None,
    )


def _mb(nbytes):
    return None if nbytes is None else nbytes / 2**20


def _steps(row) -> list[str]:
    return row.get("recipe_steps") or [s.split(":")[0] for s in row.get("recipe", "").split("+")]


def summary_table(rows: list[dict]) -> list[dict]:
    """One line per ok trial: size, cost and accuracy, with % of the reference baseline."""
    rows = ok_rows(rows)
    reference = reference_of(rows)
    ref = _ref_row(rows, reference)
    out = []
    for r in rows:
        t8 = (r.get("tflite") or {}).get("int8") or {}
        out.append(
            {
                "trial": r["trial_id"],
                "variant": r["variant"],
                "recipe": r["recipe"],
                "params_M": r["params"] / 1e6,
                "nonzero_M": r.get("nonzero_params", r["params"]) / 1e6,
                "params_pct": 100.0 * r.get("nonzero_params", r["params"]) / ref["params"]
                if ref
                else None,
                "flops_M": r["flops"] / 1e6,
                "flops_pct": 100.0 * r["flops"] / ref["flops"] if ref and ref["flops"] else None,
                "size_MB": _mb(r.get("keras_weights_bytes")),
                "accuracy_pct": r["keras_accuracy_pct"],
                "drop_pp": (ref["keras_accuracy_pct"] - r["keras_accuracy_pct"]) if ref else None,
                "int8_bytes": t8.get("bytes"),
                "int8_accuracy_pct": t8.get("accuracy_pct"),
                "rpr_pct": r.get("rpr_pct"),
                "wall_time_s": r.get("wall_time_s"),
            }
        )
    return out


def technique_table(rows: list[dict]) -> tuple[list[str], list[str], dict]:
    """The paper's check-mark table over the baselines: (technique names, variants, cells)."""
    base = [r for r in ok_rows(rows) if r.get("recipe") == "none"]
    reference = reference_of(ok_rows(rows))
    ref = _ref_row(rows, reference)
    techniques: list[str] = []
    for r in base:
        for k in r.get("techniques") or {}:
            if k not in techniques:
                techniques.append(k)
    variants = [r["variant"] for r in base]
    cells: dict = {}
    for r in base:
        tech = r.get("techniques") or {}
        for k in techniques:
            cells[(k, r["variant"])] = _check(tech.get(k))
        cells[("params [M]", r["variant"])] = f"{r['params'] / 1e6:.3f}"
        cells[("params [%]", r["variant"])] = (
            f"{100 * r['params'] / ref['params']:.2f}" if ref else ""
        )
        cells[("FLOPs [M]", r["variant"])] = f"{r['flops'] / 1e6:.2f}"
        cells[("FLOPs [%]", r["variant"])] = (
            f"{100 * r['flops'] / ref['flops']:.2f}" if ref and ref["flops"] else ""
        )
        cells[("size [MB]", r["variant"])] = f"{_mb(r.get('keras_weights_bytes')):.3f}"
        cells[("accuracy [%]", r["variant"])] = f"{r['keras_accuracy_pct']:.2f}"
    return techniques, variants, cells


def _check(value) -> str:
    if value is True:
        return "✓"
    if value in (False, None, 0, 0.0, 1, "", "none", "standard", "default"):
        return ""
    return str(value)


def pruning_table(rows: list[dict]) -> list[dict]:
    """Per variant: its baseline, then every pruning trial ordered by sparsity."""
    rows = ok_rows(rows)
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        vrows = [r for r in rows if r["variant"] == variant]
        pruned = [
            r for r in vrows if any(k in PRUNE_KINDS for k in _steps(r)) and "qat" not in _steps(r)
        ]
        if not pruned:
            continue
        base = next((r for r in vrows if r["recipe"] == "none"), None)
        for r in ([base] if base else []) + sorted(
            pruned, key=lambda r: (r["recipe"].split(":")[0], r.get("conv_sparsity") or 0)
        ):
            t8 = (r.get("tflite") or {}).get("int8") or {}
            out.append(
                {
                    "variant": variant,
                    "recipe": r["recipe"],
                    "target_sparsity_pct": (
                        100 * r["target_sparsity"] if r.get("target_sparsity") else 0.0
                    ),
                    "conv_sparsity_pct": 100 * (r.get("conv_sparsity") or 0.0),
                    "nonzero": r.get("paper_nonzero_params", r.get("nonzero_params")),
                    "accuracy_pct": r["keras_accuracy_pct"],
                    "int8_accuracy_pct": t8.get("accuracy_pct"),
                    "int8_gzip_bytes": t8.get("gzip_bytes"),
                }
            )
    return out


def quantization_table(rows: list[dict]) -> list[dict]:
    """One line per (trial, TFLite mode): bytes, gzip bytes, accuracy, latency, arena."""
    out = []
    for r in ok_rows(rows):
        micro = r.get("micro") or {}
        for mode, t in (r.get("tflite") or {}).items():
            out.append(
                {
                    "trial": r["trial_id"],
                    "variant": r["variant"],
                    "recipe": r["recipe"],
                    "mode": mode,
                    "status": t.get("status"),
                    "bytes": t.get("bytes"),
                    "gzip_bytes": t.get("gzip_bytes"),
                    "accuracy_pct": t.get("accuracy_pct"),
                    "keras_accuracy_pct": r["keras_accuracy_pct"],
                    "latency_ms": t.get("latency_1t_median_ms"),
                    "latency_p90_ms": t.get("latency_1t_p90_ms"),
                    "arena_bytes": micro.get("arena_bytes") if mode == "int8" else None,
                    "micro_status": micro.get("status") if mode == "int8" else None,
                    "error": t.get("error"),
                }
            )
    return out


def ocnna_table(rows: list[dict]) -> list[dict]:
    """OCNNA vs L1 vs random filter ranking, per variant and k (equal k ~ equal RPR)."""
    out = []
    for r in ok_rows(rows):
        kinds = _steps(r)
        if not any(k in OCNNA_KINDS for k in kinds):
            continue
        first = r["recipe"].split("+")[0]
        out.append(
            {
                "variant": r["variant"],
                "recipe": r["recipe"],
                "criterion": first.split(":")[0],
                "k": first.split("k=")[-1].split(",")[0],
                "rpr_pct": r.get("rpr_pct"),
                "flops_ratio_pct": r.get("flops_ratio_pct"),
                "accuracy_pct": r["keras_accuracy_pct"],
                "drop_pp": r.get("accuracy_drop_pp"),
            }
        )
    return sorted(
        out, key=lambda d: (d["variant"], d["recipe"].count("+"), float(d["k"]), d["criterion"])
    )


def recommend_table(rows: list[dict], drops=RECOMMEND_DROPS_PP, metrics=("bytes", "params")):
    out = []
    for metric in metrics:
        for drop in drops:
            rec = recommend(rows, max_accuracy_drop=drop, metric=metric)
            b = rec.best
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


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (smaller x and higher y are better), sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return front


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def _fmt(v, nd=2):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown_table(records: list[dict], columns: list[tuple[str, str, int]]) -> str:
    """columns: (key, header, decimals)."""
    if not records:
        return "_(none)_\n"
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(columns))) + "|"
    lines = [head, sep]
    for rec in records:
        lines.append("| " + " | ".join(_fmt(rec.get(k), nd) for k, _, nd in columns) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: str, records: list[dict]) -> None:
    keys: list[str] = []
    for rec in records:
        keys += [k for k in rec if k not in keys]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for rec in records:
            w.writerow(rec)


def flat_results(rows: list[dict]) -> list[dict]:
    """results.jsonl flattened to one CSV-friendly dict per trial (tflite_<mode>_<key>)."""
    out = []
    for r in rows:
        flat = {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
        for mode, t in (r.get("tflite") or {}).items():
            for k, v in t.items():
                if not isinstance(v, (dict, list)):
                    flat[f"tflite_{mode}_{k}"] = v
        for k, v in (r.get("micro") or {}).items():
            if not isinstance(v, (dict, list)):
                flat[f"micro_{k}"] = v
        out.append(flat)
    return out


def render_markdown(rows: list[dict], plots: dict | None = None, title: str = "") -> str:
    ok = ok_rows(rows)
    failed = [r for r in rows if r.get("status") != "ok"]
    reference = reference_of(ok)
    ref_acc = reference_accuracy(ok, reference)
    parts = [
        f"# {title or 'Ablation report'}\n",
        f"{len(ok)} trials ok, {len(failed)} failed. Reference baseline: `{reference}` "
        f"(Keras accuracy {_fmt(ref_acc)}%). [%] columns are relative to it; size [MB] is the "
        "Keras weights file (2^20 bytes); FLOPs follow fvcore (1 multiply-add = 1 FLOP).\n",
    ]
    techniques, variants, cells = technique_table(rows)
    if variants:
        parts.append("## Techniques per variant (baselines)\n")
        lines = [
            "| | " + " | ".join(f"`{v}`" for v in variants) + " |",
            "|---|" + "|".join(":---:" for _ in variants) + "|",
        ]
        for k in techniques + [
            "params [M]",
            "params [%]",
            "FLOPs [M]",
            "FLOPs [%]",
            "size [MB]",
            "accuracy [%]",
        ]:
            lines.append(f"| {k} | " + " | ".join(cells.get((k, v), "") for v in variants) + " |")
        parts.append("\n".join(lines) + "\n")
    parts.append("## All trials\n")
    parts.append(
        markdown_table(
            summary_table(rows),
            [
                ("variant", "variant", 0),
                ("recipe", "recipe", 0),
                ("params_M", "params [M]", 4),
                ("params_pct", "non-zero params [%]", 2),
                ("flops_M", "FLOPs [M]", 3),
                ("flops_pct", "FLOPs [%]", 2),
                ("size_MB", "size [MB]", 3),
                ("accuracy_pct", "accuracy [%]", 2),
                ("drop_pp", "drop [pp]", 2),
                ("int8_bytes", "int8 [B]", 0),
                ("int8_accuracy_pct", "int8 acc. [%]", 2),
                ("wall_time_s", "time [s]", 0),
            ],
        )
    )
    prune = pruning_table(rows)
    if prune:
        parts.append(
            "## Pruning (per variant; non-zero = remaining conv weights + dense weights)\n"
        )
        parts.append(
            markdown_table(
                prune,
                [
                    ("variant", "variant", 0),
                    ("recipe", "recipe", 0),
                    ("target_sparsity_pct", "target sparsity [%]", 1),
                    ("conv_sparsity_pct", "conv sparsity [%]", 2),
                    ("nonzero", "non-zero", 0),
                    ("accuracy_pct", "accuracy [%]", 2),
                    ("int8_accuracy_pct", "int8 acc. [%]", 2),
                    ("int8_gzip_bytes", "int8 gzip [B]", 0),
                ],
            )
        )
    parts.append(
        "## Quantization (TFLite; latency = median of interpreter invocations, 1 thread)\n"
    )
    parts.append(
        markdown_table(
            quantization_table(rows),
            [
                ("variant", "variant", 0),
                ("recipe", "recipe", 0),
                ("mode", "mode", 0),
                ("bytes", "bytes", 0),
                ("gzip_bytes", "gzip bytes", 0),
                ("accuracy_pct", "accuracy [%]", 2),
                ("keras_accuracy_pct", "Keras acc. [%]", 2),
                ("latency_ms", "latency [ms]", 3),
                ("arena_bytes", "TFLM arena [B]", 0),
                ("micro_status", "TFLM", 0),
            ],
        )
    )
    oc = ocnna_table(rows)
    if oc:
        parts.append("## OCNNA vs filter-ranking baselines (same k -> comparable RPR)\n")
        parts.append(
            markdown_table(
                oc,
                [
                    ("variant", "variant", 0),
                    ("recipe", "recipe", 0),
                    ("criterion", "criterion", 0),
                    ("k", "k", 0),
                    ("rpr_pct", "RPR [%]", 2),
                    ("flops_ratio_pct", "FLOPs [%]", 2),
                    ("accuracy_pct", "accuracy [%]", 2),
                    ("drop_pp", "drop [pp]", 2),
                ],
            )
        )
    parts.append("## Smallest model for an accepted accuracy drop (vs the reference baseline)\n")
    parts.append(
        markdown_table(
            recommend_table(rows),
            [
                ("max_drop_pp", "max drop [pp]", 1),
                ("metric", "smallest by", 0),
                ("trial", "trial", 0),
                ("mode", "mode", 0),
                ("accuracy_pct", "accuracy [%]", 2),
                ("drop_pp", "drop [pp]", 2),
                ("nonzero_params", "non-zero params", 0),
                ("bytes", "flash [B]", 0),
                ("arena_bytes", "arena [B]", 0),
            ],
        )
    )
    rec = recommend(rows, max_accuracy_drop=1.0, metric="bytes")
    parts.append(
        "Answer for 1 pp (`python -m tfopt.experiments.recommend --results=WORKDIR "
        "--max_accuracy_drop=1`):\n\n```\n" + format_recommendation(rec) + "\n```\n"
    )
    if failed:
        parts.append("## Failed trials\n")
        parts.append(
            markdown_table(
                failed,
                [
                    ("trial_id", "trial", 0),
                    ("error", "error", 0),
                    ("traceback_path", "traceback", 0),
                ],
            )
        )
    if plots:
        parts.append("## Plots\n")
        for name, path in plots.items():
            parts.append(f"![{name}](plots/{os.path.basename(path)})\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scatter_pareto(ax, xs, ys, labels, xlabel):
    idx = pareto_front(list(zip(xs, ys)))
    ax.scatter(xs, ys, s=18, alpha=0.7, label="trials")
    fx = [xs[i] for i in idx]
    fy = [ys[i] for i in idx]
    ax.plot(fx, fy, "r-o", ms=5, label="Pareto front")
    for i in idx:
        ax.annotate(
            labels[i], (xs[i], ys[i]), fontsize=6, xytext=(3, 3), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy [%]")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def write_plots(rows: list[dict], outdir: str) -> dict[str, str]:
    """PNG plots into `outdir`; returns {name: path}. Skips plots that have no data."""
    plt = _plt()
    os.makedirs(outdir, exist_ok=True)
    ok = ok_rows(rows)
    paths = {}
    if ok:
        fig, ax = plt.subplots(figsize=(6, 4))
        _scatter_pareto(
            ax,
            [max(r.get("nonzero_params", r["params"]), 1) for r in ok],
            [r["keras_accuracy_pct"] for r in ok],
            [r["trial_id"] for r in ok],
            "non-zero parameters (log)",
        )
        ax.set_title("Accuracy vs parameters")
        paths["accuracy_vs_params"] = _save(fig, plt, outdir, "accuracy_vs_params.png")
    q = [
        (r, r["tflite"]["int8"]) for r in ok if (r.get("tflite") or {}).get("int8", {}).get("bytes")
    ]
    if q:
        fig, ax = plt.subplots(figsize=(6, 4))
        _scatter_pareto(
            ax,
            [t["bytes"] for _, t in q],
            [t.get("accuracy_pct", r["keras_accuracy_pct"]) for r, t in q],
            [r["trial_id"] for r, _ in q],
            "int8 .tflite bytes (log)",
        )
        ax.set_title("Accuracy vs int8 model size")
        paths["accuracy_vs_int8_bytes"] = _save(fig, plt, outdir, "accuracy_vs_int8_bytes.png")
    prune = pruning_table(rows)
    if prune:
        fig, ax = plt.subplots(figsize=(6, 4))
        for variant in dict.fromkeys(p["variant"] for p in prune):
            pts = [p for p in prune if p["variant"] == variant]
            ax.plot(
                [p["conv_sparsity_pct"] for p in pts],
                [p["accuracy_pct"] for p in pts],
                "-o",
                ms=4,
                label=variant,
            )
        ax.set_xlabel("conv weight sparsity [%]")
        ax.set_ylabel("accuracy [%]")
        ax.set_title("Accuracy vs sparsity")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        paths["accuracy_vs_sparsity"] = _save(fig, plt, outdir, "accuracy_vs_sparsity.png")
    oc = [o for o in ocnna_table(rows) if "+" not in o["recipe"]]
    if oc:
        fig, ax = plt.subplots(figsize=(6, 4))
        for variant, crit in dict.fromkeys((o["variant"], o["criterion"]) for o in oc):
            pts = sorted(
                (o for o in oc if (o["variant"], o["criterion"]) == (variant, crit)),
                key=lambda o: o["rpr_pct"] or 0,
            )
            ax.plot(
                [o["rpr_pct"] for o in pts],
                [o["accuracy_pct"] for o in pts],
                "-o",
                ms=4,
                label=f"{variant} {crit}",
            )
        ax.set_xlabel("Remaining Parameters Ratio [%]")
        ax.set_ylabel("accuracy [%]")
        ax.set_title("OCNNA vs L1 / random at equal RPR")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        paths["ocnna_vs_baselines"] = _save(fig, plt, outdir, "ocnna_vs_baselines.png")
    return paths


def _save(fig, plt, outdir, name):
    path = os.path.join(outdir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# TensorBoard HParams
# --------------------------------------------------------------------------------------------


def write_hparams(rows: list[dict], logdir: str) -> str:
    """One HParams run per ok trial (variant, recipe, width -> accuracies, bytes, params)."""
    import tfopt  # noqa: F401
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    metrics = [
        "keras_accuracy_pct",
        "accuracy_drop_pp",
        "nonzero_params",
        "flops",
        "int8_bytes",
        "int8_accuracy_pct",
    ]
    with tf.summary.create_file_writer(logdir).as_default():
        hp.hparams_config(
            hparams=[hp.HParam("variant"), hp.HParam("recipe"), hp.HParam("width_multiplier")],
            metrics=[hp.Metric(m) for m in metrics],
        )
    for r in ok_rows(rows):
        t8 = (r.get("tflite") or {}).get("int8") or {}
        vals = {
            "keras_accuracy_pct": r["keras_accuracy_pct"],
            "accuracy_drop_pp": r.get("accuracy_drop_pp"),
            "nonzero_params": r.get("nonzero_params"),
            "flops": r.get("flops"),
            "int8_bytes": t8.get("bytes"),
            "int8_accuracy_pct": t8.get("accuracy_pct"),
        }
        with tf.summary.create_file_writer(os.path.join(logdir, r["trial_id"])).as_default():
            hp.hparams(
                {
                    "variant": r["variant"],
                    "recipe": r["recipe"],
                    "width_multiplier": float(r.get("width_multiplier") or 1.0),
                },
                trial_id=r["trial_id"],
            )
            for k, v in vals.items():
                if v is not None:
                    tf.summary.scalar(k, float(v), step=0)
    return logdir


# --------------------------------------------------------------------------------------------


def write_report(
    workdir_or_results: str,
    outdir: str | None = None,
    *,
    plots: bool = True,
    tensorboard: bool = True,
    title: str = "",
) -> dict[str, str]:
    """Write report.md, results.csv, quantization.csv, pruning.csv, plots/*.png and HParams.

    Args:
      workdir_or_results: A WORKDIR (reads WORKDIR/results.jsonl) or a results.jsonl path.
      outdir: Where to write (default: the WORKDIR, or the results file's folder).
    Returns:
      {"markdown": path, "csv": path, ...} of everything written.
    """
    rows = load_rows(workdir_or_results)
    if outdir is None:
        outdir = (
            workdir_or_results
            if os.path.isdir(workdir_or_results)
            else os.path.dirname(os.path.abspath(workdir_or_results))
        )
    os.makedirs(outdir, exist_ok=True)
    paths: dict[str, str] = {}
    plot_paths = write_plots(rows, os.path.join(outdir, "plots")) if plots else {}
    paths.update({f"plot_{k}": v for k, v in plot_paths.items()})
    for name, records in (
        ("results", flat_results(rows)),
        ("summary", summary_table(rows)),
        ("pruning", pruning_table(rows)),
        ("quantization", quantization_table(rows)),
        ("ocnna", ocnna_table(rows)),
        ("recommend", recommend_table(rows)),
    ):
        if records:
            p = os.path.join(outdir, f"{name}.csv")
            write_csv(p, records)
            paths[f"csv_{name}" if name != "results" else "csv"] = p
    md = os.path.join(outdir, "report.md")
    text = render_markdown(rows, plot_paths, title)
    with open(md, "w", encoding="utf-8") as f:
        f.write(text)
    paths["markdown"] = md
    if tensorboard and ok_rows(rows):
        paths["hparams"] = write_hparams(rows, os.path.join(outdir, "tensorboard", "hparams"))
    return paths
