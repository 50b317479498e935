"""PNG plots of an ablation run (matplotlib, Agg backend: no display). TensorFlow-free.

Accuracy vs non-zero parameters and vs int8 .tflite bytes (log x, Pareto front in red),
accuracy vs conv sparsity per variant, and OCNNA vs L1 / random ranking at equal RPR.
"""

from __future__ import annotations

import os

from tfopt.core.results import as_results
from tfopt.experiments.tables import ocnna_table, ok_rows, pareto_front, pruning_table


def _si(value: float) -> str:
    """Plain tick label: 950, 12k, 1.5M (no 3x10^5 mathtext)."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{unit}"
    return f"{value:.3g}"


def _log_x_axis(ax, xs) -> None:
    """Log x axis with at most 6 plain labels (1-2-5 steps) and no labelled minor ticks.

    Matplotlib's default labels minor ticks when the data span less than a decade, and those
    labels (3x10^5, 4x10^5) overlap; here the ticks are chosen, and the data's ends are used
    where no 1-2-5 value falls inside."""
    from matplotlib import ticker

    ax.set_xscale("log")
    lo, hi = min(xs), max(xs)
    steps = sorted({m * 10.0**e for e in range(-1, 13) for m in (1, 2, 5)})
    ticks = [t for t in steps if lo <= t <= hi]
    while len(ticks) > 6:
        ticks = ticks[::2]
    if len(ticks) < 2:
        ticks = sorted({float(f"{lo:.2g}"), float(f"{hi:.2g}")})
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: _si(v)))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


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
    _log_x_axis(ax, xs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy [%]")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def write_plots(rows, outdir: str) -> dict[str, str]:
    """PNG plots into `outdir`; returns {name: path}. Skips plots that have no data."""
    plt = _plt()
    os.makedirs(outdir, exist_ok=True)
    rows = as_results(rows)
    ok = ok_rows(rows)
    paths = {}
    if ok:
        fig, ax = plt.subplots(figsize=(6, 4))
        _scatter_pareto(
            ax,
            [max(r.nonzero, 1) for r in ok],
            [r.keras_accuracy_pct for r in ok],
            [r.trial_id for r in ok],
            "non-zero parameters (log)",
        )
        ax.set_title("Accuracy vs parameters")
        paths["accuracy_vs_params"] = _save(fig, plt, outdir, "accuracy_vs_params.png")
    q = [(r, r.int8) for r in ok if r.int8.bytes]
    if q:
        fig, ax = plt.subplots(figsize=(6, 4))
        _scatter_pareto(
            ax,
            [t.bytes for _, t in q],
            [t.accuracy_pct if t.accuracy_pct is not None else r.keras_accuracy_pct for r, t in q],
            [r.trial_id for r, _ in q],
            "int8 .tflite bytes (log)",
        )
        ax.set_title("Accuracy vs int8 model size")
        paths["accuracy_vs_int8_bytes"] = _save(fig, plt, outdir, "accuracy_vs_int8_bytes.png")
    # Over seeds, with error bars (mean ± std) and the matched control's band (issue #14).
    from tfopt.experiments.seedstats import write_seed_plots

    paths.update(write_seed_plots(ok, outdir))
    oc = [o for o in ocnna_table(rows) if "+" not in o["recipe"]]
    if oc:
        series = {}
        for o in sorted(oc, key=lambda o: o["rpr_pct"] or 0):
            series.setdefault(f"{o['variant']} {o['criterion']}", []).append(
                (o["rpr_pct"], o["accuracy_pct"])
            )
        paths["ocnna_vs_baselines"] = _line_plot(
            plt, outdir, "ocnna_vs_baselines", series, "Remaining Parameters Ratio [%]",
            "OCNNA vs L1 / random at equal RPR",
        )
    return paths


def _line_plot(plt, outdir, name, series: dict, xlabel: str, title: str) -> str:
    """One line per label of `series` ({label: [(x, accuracy %), ...]}); returns the PNG path."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, pts in series.items():
        ax.plot([x for x, _ in pts], [y for _, y in pts], "-o", ms=4, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy [%]")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, plt, outdir, f"{name}.png")


def _save(fig, plt, outdir, name):
    path = os.path.join(outdir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
