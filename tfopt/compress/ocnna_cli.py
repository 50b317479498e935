"""CLI of OCNNA: `python -m tfopt.compress.ocnna` (this module runs the same way).

Loads a saved model, scores and simplifies it on N class-balanced training images, measures
the Accuracy Drop on the test split, and writes simplified.keras, report.json and report.md.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Sequence

from tfopt import modelfile
from tfopt._keras import keras
from tfopt.compress import ocnna
from tfopt.compress.ocnna import CRITERIA, SCOPES, TAPS, balanced_subset, simplify
from tfopt.compress.ocnna_eval import evaluate_drop, finetune
from tfopt.compress.ocnna_report import _json_default


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfopt.compress.ocnna --model=M.keras --dataset=NAME --k=30 --out=DIR`."""
    p = argparse.ArgumentParser(prog="python -m tfopt.compress.ocnna",
                                description=ocnna.__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="saved tf_keras model (.keras / .h5 / dir)")
    p.add_argument("--dataset", required=True, help="tfopt.data source, e.g. fashion_mnist")
    p.add_argument("--k", type=float, required=True, help="percentile in [0, 100]")
    p.add_argument("--out", required=True, help="output folder (simplified.keras, report.*)")
    p.add_argument("--criterion", default="ocnna", choices=CRITERIA)
    p.add_argument("--scope", default="layer", choices=SCOPES)
    p.add_argument("--n_images", type=int, default=1000, help="scoring images (train split)")
    p.add_argument("--min_filters", type=int, default=1)
    p.add_argument("--tap", default="conv", choices=TAPS)
    p.add_argument("--prune_residual_groups", action="store_true")
    p.add_argument("--eval_limit", type=int, default=None,
                   help="test images for the Accuracy Drop (default: all; 0 skips it)")
    p.add_argument("--finetune_epochs", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    modelfile.add_unsafe_load_flag(p)
    args = p.parse_args(argv)
    from tfopt import data

    modelfile.check_safe_or_exit(args.model, unsafe_load=args.unsafe_load)
    model = keras.models.load_model(args.model, compile=False, safe_mode=not args.unsafe_load)
    h, w, c = model.input_shape[1:4]
    prep = dict(image_size=(h, w), to_rgb=(c == 3))
    x, y, _ = data.load_arrays(args.dataset, "train", seed=args.seed, **prep)
    images, _ = balanced_subset(x, y, args.n_images, seed=args.seed)
    small, report = simplify(model, images, k=args.k, scope=args.scope,
                             criterion=args.criterion, min_filters=args.min_filters,
                             tap=args.tap, prune_residual_groups=args.prune_residual_groups,
                             seed=args.seed)
    if args.eval_limit != 0:
        xt, yt, _ = data.load_arrays(args.dataset, "test", limit=args.eval_limit, **prep)
        evaluate_drop(model, small, (xt, yt), report)
        if args.finetune_epochs > 0:
            from tfopt import train
            ds, _ = data.load(args.dataset, "train", augment=True, seed=args.seed, **prep)
            finetune(small, ds, train.TrainConfig(epochs=args.finetune_epochs, optimizer="adam",
                                                  max_lr=1e-3, seed=args.seed))
            evaluate_drop(model, small, (xt, yt), report, finetuned=True)
    os.makedirs(args.out, exist_ok=True)
    small.save(os.path.join(args.out, "simplified.keras"))
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report.to_dict(), f, indent=1, default=_json_default)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report.to_markdown())
    print(report.to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
