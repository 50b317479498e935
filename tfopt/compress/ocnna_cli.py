"""CLI of OCNNA: `python -m tfopt.compress.ocnna` (this module runs the same way).

    python -m tfopt.compress.ocnna --model=M.keras --dataset=NAME --k=30 --out=DIR

Loads a saved model, scores and simplifies it on N class-balanced training images, measures
the Accuracy Drop on the test split, and writes simplified.keras, report.json and report.md.
Every flag, the model file and the --out folder (writable) are
checked before the model or the data loads; a bad one is one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from absl import flags

from tfopt import modelfile
from tfopt.compress.ocnna import CRITERIA, SCOPES, TAPS
from tfopt.core import cli

FLAGS = flags.FlagValues()

flags.DEFINE_string("model", None, "saved tf_keras model (.keras / .h5 / dir)", flag_values=FLAGS)
flags.DEFINE_string("dataset", None, "tfopt.data source, e.g. fashion_mnist", flag_values=FLAGS)
flags.DEFINE_float("k", None, "percentile in [0, 100]", flag_values=FLAGS)
flags.DEFINE_string("out", None, "output folder (simplified.keras, report.*)", flag_values=FLAGS)
flags.DEFINE_enum("criterion", "ocnna", list(CRITERIA), "filter score", flag_values=FLAGS)
flags.DEFINE_enum("scope", "layer", list(SCOPES), "percentile per layer or global",
                  flag_values=FLAGS)
flags.DEFINE_integer("n_images", 1000, "scoring images (train split, >= 2)", flag_values=FLAGS)
flags.DEFINE_integer("min_filters", 1, "filters always kept per group (>= 1)", flag_values=FLAGS)
flags.DEFINE_enum("tap", "conv", list(TAPS), "where feature maps are read", flag_values=FLAGS)
flags.DEFINE_bool("prune_residual_groups", False, "also prune residual groups", flag_values=FLAGS)
flags.DEFINE_integer("eval_limit", None, "test images for the Accuracy Drop (default: all; "
                     "0 skips it)", flag_values=FLAGS)
flags.DEFINE_integer("finetune_epochs", 0, "fine-tuning epochs after surgery (>= 0)",
                     flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "seed of the image choice and the random criterion",
                     flag_values=FLAGS)
modelfile.define_unsafe_load_flag(FLAGS)
flags.mark_flags_as_required(["model", "dataset", "k", "out"], flag_values=FLAGS)


def check_flags(f=FLAGS) -> None:
    """Every flag, the model file and --out, before anything loads (one-line errors)."""
    if not 0 <= f.k <= 100:
        raise cli.bad_value("k", f.k, "a percentile in [0, 100]")
    if f.n_images < 2:
        raise cli.bad_value("n_images", f.n_images, "an int >= 2 (OCNNA scores on images)")
    if f.min_filters < 1:
        raise cli.bad_value("min_filters", f.min_filters, "an int >= 1")
    if f.eval_limit is not None and f.eval_limit < 0:
        raise cli.bad_value("eval_limit", f.eval_limit, "an int >= 0 (0 skips the evaluation)")
    if f.finetune_epochs < 0:
        raise cli.bad_value("finetune_epochs", f.finetune_epochs, "an int >= 0")
    if f.finetune_epochs > 0 and f.eval_limit == 0:
        raise cli.bad_value("finetune_epochs", f.finetune_epochs,
                            "0 with --eval_limit=0 (the fine-tuned drop needs the test split)")
    if not os.path.exists(f.model):
        raise FileNotFoundError(2, "no such model file or folder", f.model)
    try:
        modelfile.check_safe(f.model, unsafe_load=f.unsafe_load)
    except KeyError as err:
        raise ValueError(f"{f.model}: not a Keras model file ({err.args[0]!r} missing)") from None
    out = f.out   # created (writability probe) only once everything else passed
    cli.check_writable_dir("out", out)


def _load_model(path: str, unsafe_load: bool):
    from tfopt._keras import keras

    try:
        return keras.models.load_model(path, compile=False, safe_mode=not unsafe_load)
    except (OSError, ValueError, KeyError) as err:
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise ValueError(f"{path}: cannot load as a Keras model ({first})") from err


def _run(argv: Sequence[str]) -> int:
    """Long because it is the whole pipeline: check, load, score, simplify, evaluate, write."""
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {list(argv[1:])}; every setting is a --flag")
    f = FLAGS
    check_flags(f)
    from tfopt import data
    from tfopt.compress.ocnna import balanced_subset, simplify
    from tfopt.compress.ocnna_eval import evaluate_drop, finetune
    from tfopt.compress.ocnna_report import _json_default

    model = _load_model(f.model, f.unsafe_load)
    h, w, c = model.input_shape[1:4]
    prep = dict(image_size=(h, w), to_rgb=(c == 3))
    x, y, info = data.load_arrays(f.dataset, "train", seed=f.seed, **prep)
    outputs = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if outputs and outputs > 1 and outputs != info.num_classes:
        raise cli.bad_value("dataset", f.dataset, f"a dataset with the model's {outputs} "
                            f"classes (it has {info.num_classes})")
    images, _ = balanced_subset(x, y, f.n_images, seed=f.seed)
    small, report = simplify(model, images, k=f.k, scope=f.scope, criterion=f.criterion,
                             min_filters=f.min_filters, tap=f.tap,
                             prune_residual_groups=f.prune_residual_groups, seed=f.seed)
    small.save(os.path.join(f.out, "simplified.keras"))   # the work is kept before evaluation
    if f.eval_limit != 0:
        xt, yt, _ = data.load_arrays(f.dataset, "test", limit=f.eval_limit, **prep)
        evaluate_drop(model, small, (xt, yt), report)
        if f.finetune_epochs > 0:
            from tfopt import train
            ds, _ = data.load(f.dataset, "train", augment=True, seed=f.seed, **prep)
            finetune(small, ds, train.TrainConfig(epochs=f.finetune_epochs, optimizer="adam",
                                                  max_lr=1e-3, seed=f.seed))
            evaluate_drop(model, small, (xt, yt), report, finetuned=True)
            small.save(os.path.join(f.out, "simplified.keras"))
    with open(os.path.join(f.out, "report.json"), "w") as fh:
        json.dump(report.to_dict(), fh, indent=1, default=_json_default)
    with open(os.path.join(f.out, "report.md"), "w") as fh:
        fh.write(report.to_markdown())
    print(report.to_markdown())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfopt.compress.ocnna --model=M.keras --dataset=NAME --k=30 --out=DIR`."""
    return cli.run(_run, argv, flag_values=FLAGS, doc=__doc__,
                   prog="python -m tfopt.compress.ocnna")


if __name__ == "__main__":
    sys.exit(main())
