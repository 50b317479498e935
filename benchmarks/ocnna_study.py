"""OCNNA vs L1-norm vs random filter ranking on Fashion-MNIST (measured study).

Run: .venv/bin/python benchmarks/ocnna_study.py --out=docs/ocnna_study
Expect: ~10 min on 2 shared CPU cores -> DIR/{results.json, table.md, ocnna_study.png}
(the trained base model is cached in --workdir, so a re-run skips training).

Protocol (all seeded):
- data: Fashion-MNIST resized to 32x32, grey -> RGB, normalised (`tfopt.data`); the first
  --train_limit images of a seeded shuffle of the training split, the first --test_limit of
  the test split;
- base model: the registry's VGG-16 (`--variant`, width multiplier `--width`), trained
  --epochs epochs with the project recipe (SGD one-cycle);
- for each criterion (ocnna, l1, random) and k in --ks: `simplify(k=k, scope="layer")`
  (OCNNA scores on --n_images class-balanced training images), test accuracy right after
  surgery; then BatchNorm statistics re-estimated on the same images
  (`ocnna.recalibrate_batchnorm`, no training) and test accuracy; then --finetune_epochs
  epochs of fine-tuning (SGD, constant LR) on the first --finetune_limit training images and
  test accuracy again. With scope="layer" all criteria remove the same number of filters per
  layer, so they are compared at equal Remaining Parameters Ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

CRITERIA = ("ocnna", "l1", "random")


def _dataset(x, y, batch, shuffle_seed=None):
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(2)


def run(args) -> list[dict]:
    import tfopt
    from tfopt import data, train
    from tfopt._keras import keras
    from tfopt.compress import ocnna

    prep = dict(image_size=32, to_rgb=True)
    x, y, info = data.load_arrays("fashion_mnist", "train", limit=args.train_limit,
                                  seed=args.seed, **prep)
    xt, yt, _ = data.load_arrays("fashion_mnist", "test", limit=args.test_limit,
                                 seed=args.seed, **prep)
    train_ds = _dataset(x, y, 128, shuffle_seed=args.seed)
    test = (xt, yt)
    os.makedirs(args.workdir, exist_ok=True)
    base_path = os.path.join(args.workdir, f"{args.variant}_w{args.width}_e{args.epochs}.keras")
    t0 = time.perf_counter()
    if os.path.exists(base_path):
        model = keras.models.load_model(base_path, compile=False)
        train_s = None
    else:
        keras.utils.set_random_seed(args.seed)
        model = tfopt.build_model(args.variant, num_classes=info.num_classes,
                                  width_multiplier=args.width)
        train.fit(model, train_ds, train.TrainConfig(epochs=args.epochs, seed=args.seed,
                                                     verbose=0))
        model.save(base_path)
        train_s = time.perf_counter() - t0
    base_acc = ocnna.accuracy(model, test)
    print(f"base {args.variant} w={args.width}: {model.count_params():,} params, test acc "
          f"{100 * base_acc:.2f} % (train {train_s and round(train_s)} s)", flush=True)
    rows = []
    for k, seed, criterion in ((k, s, c) for k in args.ks for s in args.seeds for c in CRITERIA):
        images, _ = ocnna.balanced_subset(x, y, args.n_images, seed=seed)
        t0 = time.perf_counter()
        small, rep = ocnna.simplify(model, images, k=k, criterion=criterion, seed=seed)
        rep.accuracy_original = base_acc
        rep.accuracy_simplified = ocnna.accuracy(small, test)
        ocnna.recalibrate_batchnorm(small, images)
        acc_recal = ocnna.accuracy(small, test)
        keras.utils.set_random_seed(seed)
        if args.finetune_epochs > 0:
            ft_ds = _dataset(x[:args.finetune_limit], y[:args.finetune_limit], 128,
                             shuffle_seed=seed)
            train.fit(small, ft_ds, train.TrainConfig(
                epochs=args.finetune_epochs, optimizer="sgd", lr=args.finetune_lr,
                seed=seed, verbose=0))
            rep.accuracy_finetuned = ocnna.accuracy(small, test)
        row = dict(criterion=criterion, k=k, seed=seed, rpr=rep.rpr,
                   total_param_ratio=rep.total_param_ratio, flops_ratio=rep.flops_ratio,
                   params=rep.params_after,
                   acc_original=100 * base_acc, acc_pruned=100 * rep.accuracy_simplified,
                   acc_recalibrated=100 * acc_recal,
                   acc_finetuned=(None if rep.accuracy_finetuned is None
                                  else 100 * rep.accuracy_finetuned),
                   drop_pp=rep.accuracy_drop_pp, drop_finetuned_pp=rep.accuracy_drop_finetuned_pp,
                   scoring_s=rep.scoring_seconds, seconds=time.perf_counter() - t0)
        rows.append(row)
        print(json.dumps({kk: (round(v, 3) if isinstance(v, float) else v)
                          for kk, v in row.items()}), flush=True)
    return rows


def table(rows) -> str:
    lines = ["| k | criterion | seed | RPR % | FLOPs % | acc. after surgery % | drop pp | "
             "acc. after BN re-estimate % | acc. after fine-tune % | drop after FT pp |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ft = "-" if r["acc_finetuned"] is None else f"{r['acc_finetuned']:.2f}"
        dft = "-" if r["drop_finetuned_pp"] is None else f"{r['drop_finetuned_pp']:+.2f}"
        lines.append(f"| {r['k']:g} | {r['criterion']} | {r.get('seed', 0)} | {r['rpr']:.1f} | "
                     f"{r['flops_ratio']:.1f} | {r['acc_pruned']:.2f} | {r['drop_pp']:+.2f} | "
                     f"{r['acc_recalibrated']:.2f} | "
                     f"{ft} | {dft} |")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    for ax, key, title in ((axes[0], "acc_pruned", "right after surgery"),
                           (axes[1], "acc_recalibrated", "after BN re-estimate"),
                           (axes[2], "acc_finetuned", "after fine-tuning")):
        for criterion, marker in zip(CRITERIA, "osx"):
            pts = [(r["rpr"], r[key]) for r in rows if r["criterion"] == criterion
                   and r[key] is not None and r.get("seed", 0) == rows[0].get("seed", 0)]
            if pts:
                ax.plot(*zip(*pts), marker=marker, label=criterion)
        ax.axhline(rows[0]["acc_original"], color="grey", ls="--", lw=1, label="original")
        ax.set_xlabel("Remaining Parameters Ratio (% trainable params)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Fashion-MNIST test accuracy (%)")
    axes[2].legend()
    fig.suptitle("OCNNA vs L1 vs random filter ranking (k = 10, 30, 50)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/ocnna_study")
    p.add_argument("--workdir", default="/tmp/ocnna_study")
    p.add_argument("--variant", default="vgg16")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--train_limit", type=int, default=10000)
    p.add_argument("--test_limit", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n_images", type=int, default=1000)
    p.add_argument("--ks", type=float, nargs="+", default=[10, 30, 50])
    p.add_argument("--finetune_epochs", type=int, default=1)
    p.add_argument("--finetune_lr", type=float, default=0.005)
    p.add_argument("--finetune_limit", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0, help="data slice and base-model seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="per-cell seeds: scoring images, random ranking, fine-tune order")
    args = p.parse_args(argv)
    rows = run(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(dict(settings=vars(args), rows=rows), f, indent=1)
    md = table(rows)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(md)
    plot(rows, os.path.join(args.out, "ocnna_study.png"))
    print(md)


if __name__ == "__main__":
    main()
