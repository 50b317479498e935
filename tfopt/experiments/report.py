"""results.jsonl -> report.md, CSV tables, PNG plots and a TensorBoard HParams view.

Rebuilt from the results file alone (never from a driver's memory), so it works on a finished,
a resumed or a half-finished run, and in the notebook:

  from tfopt import report          # this module (tfopt.experiments.report)
  report.write_report("runs/fashion_mnist_quick")

The tables are built by `tfopt.experiments.tables`, the plots by `tfopt.experiments.plots`
(both re-exported here). Rows are read through `tfopt.core.results` (TrialResult, any schema
version). TensorFlow is imported only for the optional HParams export.
"""

from __future__ import annotations

import csv
import dataclasses
import os

from tfopt.core.results import TrialResult, as_results, latest, read_results
from tfopt.experiments.plots import write_plots  # noqa: F401  (re-exported)
from tfopt.experiments.recommend import format_recommendation, recommend, reference_accuracy
from tfopt.experiments.recommend import reference_of
from tfopt.experiments.tables import (  # noqa: F401  (re-exported)
    RECOMMEND_DROPS_PP,
    TECHNIQUE_TABLE_ROWS,
    flat_results,
    ocnna_table,
    ok_rows,
    pareto_front,
    pruning_table,
    quantization_table,
    recommend_table,
    summary_table,
    technique_table,
)


def _seeds_records(rows) -> list[dict]:
    from tfopt.experiments.seedstats import seeds_table

    return seeds_table(as_results(rows))


def load_rows(path: str) -> list[TrialResult]:
    """Latest row per trial from a WORKDIR or a results.jsonl file."""
    return latest(read_results(path))


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


def _skipped_count(rows) -> str:
    n = sum(r.status == "skipped" for r in rows)
    return f", {n} skipped (do not fit the --board)" if n else ""


def board_skipped_section(rows) -> list[str]:
    """'## Skipped by the board pre-pass' (tfopt.experiments.board_fit), or nothing."""
    skipped = [dataclasses.asdict(r) for r in rows if r.status == "skipped"]
    if not skipped:
        return []
    return ["## Skipped by the board pre-pass\n", markdown_table(
        skipped, [("trial_id", "trial", 0), ("width_multiplier", "width", 3), ("error", "reason", 0)])]


def render_markdown(rows, plots: dict | None = None, title: str = "") -> str:
    """report.md's text. Long because it lays out every section of the report in order."""
    rows = as_results(rows)
    ok = ok_rows(rows)
    failed = [r for r in rows if not r.ok and r.status != "skipped"]
    reference = reference_of(ok)
    ref_acc = reference_accuracy(ok, reference)
    parts = [
        f"# {title or 'Ablation report'}\n",
        f"{len(ok)} trials ok, {len(failed)} failed{_skipped_count(rows)}. Reference baseline: `{reference}` "
        f"(Keras accuracy {_fmt(ref_acc)}%). [%] columns are relative to it; size [MB] is the "
        "Keras weights file (2^20 bytes); FLOPs follow fvcore (1 multiply-add = 1 FLOP).\n",
    ]
    parts += _seeds_section(rows)
    first_seed = min((r.seed or 0 for r in rows), default=0)  # architecture: one seed suffices
    techniques, variants, cells = technique_table([r for r in rows if (r.seed or 0) == first_seed])
    if variants:
        parts.append("## Techniques per variant (baselines)\n")
        lines = [
            "| | " + " | ".join(f"`{v}`" for v in variants) + " |",
            "|---|" + "|".join(":---:" for _ in variants) + "|",
        ]
        for k in techniques + list(TECHNIQUE_TABLE_ROWS):
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
                ("bytes_breakdown", "bytes: W weights · Q quant. · S strings · M metadata · "
                 "G graph · D duplicates [B]", 0),
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
                [dataclasses.asdict(r) for r in failed],
                [
                    ("trial_id", "trial", 0),
                    ("error", "error", 0),
                    ("traceback_path", "traceback", 0),
                ],
            )
        )
    parts += board_skipped_section(rows)
    if plots:
        parts.append("## Plots\n")
        for name, path in plots.items():
            parts.append(f"![{name}](plots/{os.path.basename(path)})\n")
    return "\n".join(parts)


def _seeds_section(rows) -> list[str]:
    """"Across seeds": mean ± std (n), raw and matched-control drops, significance, convergence."""
    from tfopt.experiments.seedstats import seeds_table

    recs = seeds_table(rows)
    if not recs:
        return []
    text = (
        "## Across seeds (mean ± std (n); drops in pp, + = worse)\n\n"
        "drop = the variant's own baseline − this, paired per seed; controlled drop = its "
        "matched control − this: `control:n` is the baseline fine-tuned n times with the same "
        "plateau recipe (so pruning step n, or any recipe with n fine-tuning fits, is compared "
        "with equal training); another variant's baseline is compared with the reference "
        "baseline. (n.s.): not significant (|drop| <= its spread); (?): one seed. Accuracies: "
        "the test split, evaluated once per model; early stopping watched the held-out split.\n"
    )
    table = markdown_table(recs, [
        ("variant", "variant", 0),
        ("recipe", "recipe", 0),
        ("n", "seeds", 0),
        ("accuracy", "accuracy [%]", 0),
        ("int8_accuracy", "int8 acc. [%]", 0),
        ("drop", "drop vs baseline", 0),
        ("control", "control", 0),
        ("controlled_drop", "controlled drop", 0),
        ("converged", "converged", 0),
    ])
    return [text, table]


def write_hparams(rows, logdir: str) -> str:
    """One HParams run per ok trial (variant, recipe, width -> accuracies, bytes, params)."""
    from tfopt.core.env import import_tensorflow

    tf = import_tensorflow()
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
        vals = {
            "keras_accuracy_pct": r.keras_accuracy_pct,
            "accuracy_drop_pp": r.accuracy_drop_pp,
            "nonzero_params": r.nonzero_params,
            "flops": r.flops,
            "int8_bytes": r.int8.bytes,
            "int8_accuracy_pct": r.int8.accuracy_pct,
        }
        with tf.summary.create_file_writer(os.path.join(logdir, r.trial_id)).as_default():
            hp.hparams(
                {
                    "variant": r.variant,
                    "recipe": r.recipe,
                    "width_multiplier": float(r.width_multiplier or 1.0),
                },
                trial_id=r.trial_id,
            )
            for k, v in vals.items():
                if v is not None:
                    tf.summary.scalar(k, float(v), step=0)
    return logdir


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
        ("seeds", _seeds_records(rows)),
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
