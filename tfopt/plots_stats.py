"""Error-bar plots over repeated seeds: mean ± std (ddof=1) per point, saved as PNG.

TensorFlow-free (matplotlib, Agg backend: no display needed). Points are plain tuples, so the
caller decides what a series is (a variant, a recipe):

    points = [("vgg19_v01 pruned", 0.0, [91.2, 90.8]), ("vgg19_v01 pruned", 59.0, [90.9, 91.1]),
              ("vgg19_v04", 0.0, [90.1, 89.7])]
    accuracy_vs_sparsity(points, "plots/accuracy_vs_sparsity.png",
                         reference=("control", [91.0, 90.6]))

A point with one seed is drawn without a bar; the legend gives each series' seed counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from tfopt.stats import summarize

Point = tuple[str, float, Sequence[float]]   # (series label, x, one value per seed)


def errorbar_plot(points: Iterable[Point], path: str, *, xlabel: str, ylabel: str,
                  title: str | None = None, logx: bool = False,
                  reference: tuple[str, Sequence[float]] | None = None) -> str:
    """Plot mean ± std of each point's values, one line per series; returns `path`.

    Args:
      points: (series label, x, values) tuples; values are the per-seed measurements.
      path: PNG file to write (folders are created).
      xlabel, ylabel, title: Axis labels and title.
      logx: Logarithmic x axis (e.g. bytes).
      reference: (label, values) drawn as a horizontal band mean ± std, e.g. the matched
        control, so "flat within noise" can be read off the plot.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[float, object]]] = {}
    for label, x, values in points:
        series.setdefault(str(label), []).append((float(x), summarize(values)))
    if not series:
        raise ValueError(f"errorbar_plot: no points to draw into {path}")
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    if reference is not None:
        ref = summarize(reference[1])
        spread = ref.std or 0.0
        ax.axhspan(ref.mean - spread, ref.mean + spread, color="0.85", zorder=0,
                   label=f"{reference[0]} {ref.text()}")
        ax.axhline(ref.mean, color="0.5", lw=1, zorder=1)
    for label, pts in series.items():
        pts.sort(key=lambda p: p[0])
        xs = [p[0] for p in pts]
        means = [p[1].mean for p in pts]
        errs = [p[1].std or 0.0 for p in pts]
        ns = sorted({p[1].n for p in pts})
        n_text = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}-{ns[-1]}"
        ax.errorbar(xs, means, yerr=errs, marker="o", ms=4, capsize=3, lw=1.2,
                    label=f"{label} ({n_text})")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} vs {xlabel} (mean ± std over seeds)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def accuracy_vs_sparsity(points: Iterable[Point], path: str, **kwargs) -> str:
    """Accuracy (%) vs conv-weight sparsity (%), mean ± std over seeds."""
    return errorbar_plot(points, path, xlabel="sparsity (%)", ylabel="accuracy (%)", **kwargs)


def accuracy_vs_bytes(points: Iterable[Point], path: str, **kwargs) -> str:
    """Accuracy (%) vs model bytes (log axis), mean ± std over seeds."""
    return errorbar_plot(points, path, xlabel="model size (bytes)", ylabel="accuracy (%)",
                         logx=True, **kwargs)


__all__ = ["Point", "accuracy_vs_bytes", "accuracy_vs_sparsity", "errorbar_plot"]
