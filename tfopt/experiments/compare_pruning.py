"""Overlay the pruning series of several ablation runs in one plot, e.g. two fine-tuning recipes.

  python -m tfopt.experiments.compare_pruning \\
      --run="lr 1e-3 plateau=runs/cifar10_v13_prune" \\
      --run="one-cycle 0.02=runs/cifar10_v13_prune_oc" \\
      --out=docs/cifar10/v13_pruning_recipes.png [--mode=int8]

Each `--run` is LABEL=WORKDIR (or LABEL=path/to/results.jsonl). A run's series, per variant,
is its baseline at 0 % and every pruning trial at its measured conv sparsity, mean ± std over
seeds (`seedstats.sparsity_points`): Keras accuracy (`--mode=keras`) or that of the trial's int8
file (`--mode=int8`; a baseline converted to float32 only then has no 0 % point). When the runs
are on CIFAR-10 (`tfopt.core.paper_figures.is_cifar10`), the paper's points of each variant are
drawn beside them. Prints the points as a markdown table and writes the PNG.
"""

from __future__ import annotations

import sys

from tfopt.experiments.seedstats import PRUNED, paper_points, sparsity_points

MODES = ("keras", "int8")
_FLAGS = None


def parse_run(spec: str) -> tuple[str, str]:
    """'LABEL=PATH' -> (label, path); the label is everything before the first '='."""
    label, sep, path = spec.partition("=")
    if not sep or not label.strip() or not path.strip():
        raise ValueError(f"--run={spec}: expected LABEL=WORKDIR, e.g. "
                         "--run='one-cycle 0.02=runs/cifar10_v13_prune_oc'")
    return label.strip(), path.strip()


def run_points(rows, mode: str = "keras") -> list[tuple[str, float, list[float]]]:
    """(variant, conv sparsity %, accuracies per seed) of one run's baselines and pruning trials."""
    points, _ = sparsity_points(rows, None if mode == "keras" else mode)
    return [(series[: -len(PRUNED)], x, accs) for series, x, accs in points
            if series.endswith(PRUNED)]


def compare(runs: list[tuple[str, list]], path: str, mode: str = "keras") -> list:
    """Plot every run's series, 'VARIANT LABEL' (and the paper's, on CIFAR-10), into `path`;
    returns the points drawn.

    Args:
      runs: (label, result rows) per run.
      path: PNG to write.
      mode: "keras" or "int8" accuracy.
    """
    from tfopt import plots_stats

    if mode not in MODES:
        raise ValueError(f"--mode={mode}: expected one of {', '.join(MODES)}")
    points, variants = [], {}
    for label, rows in runs:
        got = run_points(rows, mode)
        if not got:
            raise ValueError(f"--run={label}: no pruning trial or baseline with a {mode} "
                             "accuracy in its results")
        for variant, x, accs in got:
            variants.setdefault(variant)
            points.append((f"{variant} {label}", x, accs))
    points += paper_points(runs[0][1], variants)
    plots_stats.accuracy_vs_sparsity(points, path, title=f"{mode} accuracy (%) vs conv sparsity"
                                     " (%), mean ± std over seeds")
    return points


def points_table(points) -> str:
    """Markdown: series, conv sparsity [%], accuracy [%] (mean ± std (n))."""
    from tfopt.stats import summarize

    lines = ["| series | conv sparsity [%] | accuracy [%] |", "|---|---:|---:|"]
    for series, x, accs in sorted(points, key=lambda p: (p[0], p[1])):
        lines.append(f"| {series} | {x:.1f} | {summarize(accs).text()} |")
    return "\n".join(lines)


def _define_flags():
    from absl import flags

    global _FLAGS
    if _FLAGS is not None:
        return _FLAGS
    fv = _FLAGS = flags.FlagValues()
    flags.DEFINE_multi_string("run", None, "LABEL=WORKDIR of one ablation run (repeat).",
                              flag_values=fv)
    flags.DEFINE_string("out", None, "PNG file to write.", flag_values=fv)
    flags.DEFINE_string("mode", "keras", f"Which accuracy: {', '.join(MODES)}.", flag_values=fv)
    flags.mark_flags_as_required(["run", "out"], flag_values=fv)
    return fv


def _main(argv) -> int:
    from tfopt.experiments.report import load_rows

    fv = _define_flags()
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    if not fv.out.lower().endswith(".png"):
        raise ValueError(f"--out={fv.out}: expected a .png path")
    runs = []
    for spec in fv.run:
        label, path = parse_run(spec)
        rows = load_rows(path)
        if not rows:
            raise ValueError(f"--run={spec}: {path} holds no trial rows")
        runs.append((label, rows))
    points = compare(runs, fv.out, fv.mode)
    print(points_table(points))
    print(f"wrote {fv.out}")
    return 0


def main(argv=None) -> int:
    """`python -m tfopt.experiments.compare_pruning --run=LABEL=WORKDIR ... --out=PNG`."""
    from tfopt.core import cli

    return cli.run(_main, argv, flag_values=_define_flags(), doc=__doc__,
                   prog="python -m tfopt.experiments.compare_pruning")


if __name__ == "__main__":
    sys.exit(main())
