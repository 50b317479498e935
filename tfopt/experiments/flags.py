"""Every command-line flag of the ablation driver, and `config_from_flags()`.

This module is the only code that reads `FLAGS`. It imports no TensorFlow, so a bad flagfile
(unknown variant, sparsity 1.2, epochs 0, missing dataset, unwritable workdir) fails with one
line in well under a second, before any training.

Flagfiles: one flag per line, `#` comment lines, nested `--flagfile=`, later flags win. A
comment after a flag on the same line is refused (`tfopt.core.cli`: absl would keep it in the
value). `--epochs`, `--batch_size`, `--optimizer`, `--max_lr`, `--weight_decay`, `--augment` and
`--limit` (the names of `python -m tfopt.train`) are aliases of the `--train_*` flags.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import flags

from tfopt.core import cli
from tfopt.core.choices import TRAIN_FLAG_SPELLINGS
from tfopt.core.env import TF_LOG_LEVELS
from tfopt.experiments import config as cfg
from tfopt.models.spec import split_variant_list

FLAGS = flags.FLAGS

# ---- the grid -----------------------------------------------------------------------------
flags.DEFINE_list(
    "variants",
    None,
    "Zoo variant ids or technique combinations, e.g. resnet101_v01,resnet101_v13,"
    "resnet101[block=ghost,attention=se] (fields: tfopt.models.spec).",
)
flags.DEFINE_multi_string(
    "recipes",
    None,
    "Compression recipes (repeat the flag or join with commas): none, prune_global:0.2,0.36,..., "
    "prune_layer:..., prune_poly:0.8, prune_const:0.5, qat, ocnna:k=30, ocnna_l1:k=30, "
    "ocnna_random:k=30, kd; steps chain with '+', e.g. prune_global:0.2,0.36+qat.",
)
flags.DEFINE_list(
    "compress_variants",
    None,
    "Variants that get the compression recipes (default: all of --variants); the "
    "others only get their baseline ('none'), for the architecture table.",
)
flags.DEFINE_string("workdir", None, "Output directory (results.jsonl, models, report.md, plots).")
flags.DEFINE_string(
    "reference_variant",
    None,
    "Variant whose baseline accuracy every drop is also measured against "
    "(default: the first of --variants).",
)
# ---- data ---------------------------------------------------------------------------------
flags.DEFINE_string(
    "dataset",
    "fashion_mnist",
    "Data source: fashion_mnist, cifar10, cifar100, imagenet2012, a prepared "
    "tfds name, folder:PATH, synthetic.",
)
flags.DEFINE_string("data_dir", None, "Where the dataset lives (tfds data_dir).")
flags.DEFINE_integer("image_size", None, "Resize images to this many pixels square (None: native).")
flags.DEFINE_bool("to_rgb", False, "Replicate grey images to 3 channels.")
flags.DEFINE_integer("train_limit", None, "Use only this many training images.")
flags.DEFINE_integer("test_limit", None, "Evaluate on only this many test images.")
# ---- model + training ---------------------------------------------------------------------
flags.DEFINE_float("width_multiplier", 1.0, "Scales every channel count of the zoo models.")
flags.DEFINE_list(
    "variant_widths",
    None,
    "Per-variant width multiplier, VARIANT:WIDTH items, e.g. vgg19_v04:0.25,resnet101_v13:0.5 "
    "(each variant also in --variants; the others use --width_multiplier). "
    "`python -m tfopt.experiments.fit` writes it.",
)
flags.DEFINE_integer("train_epochs", 150, "Baseline training epochs.")
flags.DEFINE_integer("train_batch_size", 128, "Batch size (images).")
flags.DEFINE_string(
    "train_optimizer", "sgd_onecycle", f"Training recipe: {', '.join(cfg.OPTIMIZERS)}."
)
flags.DEFINE_float("train_max_lr", 0.0125, "Peak learning rate.")
flags.DEFINE_float("train_weight_decay", 2e-5, "Coupled L2 weight decay.")
flags.DEFINE_bool("train_augment", True, "Random crop + flip while training.")
flags.DEFINE_integer("seed", 0, "Seed for data order, initialisation, OCNNA image choice "
                     "(one seed; see --seeds).")
flags.DEFINE_list(
    "seeds",
    None,
    "Seeds, e.g. 0,1,2: every trial runs once per seed, one results row each; the report "
    "shows mean ± std (n) (default: --seed alone).",
)
flags.DEFINE_float(
    "val_fraction",
    1 / 11,
    "Held-out validation tail of the (limited) train split (stratified for folder:PATH); early "
    "stopping and the plateau recipe watch it, never the test split. 0: none (no early stop).",
)
flags.DEFINE_integer(
    "train_patience",
    3,
    "Baseline early stopping: stop after this many epochs without a better held-out "
    "accuracy and restore the best weights (--train_epochs is the cap); 0: off.",
)
# ---- compression --------------------------------------------------------------------------
flags.DEFINE_integer(
    "finetune_epochs",
    1,
    "Cap of every fine-tuning fit (per pruning step, control step, after OCNNA surgery, kd "
    "recovery): the paper's plateau recipe (ReduceLROnPlateau + early stopping).",
)
flags.DEFINE_integer(
    "finetune_patience",
    2,
    "Early-stopping patience of every fine-tuning fit (held-out accuracy; the LR drops "
    "after max(1, patience // 2) epochs without gain).",
)
flags.DEFINE_float("finetune_max_lr", 1e-3, "Learning rate of the fine-tuning recipe (start; "
                   "the peak with --finetune_optimizer=sgd_onecycle).")
flags.DEFINE_string(
    "finetune_optimizer", None, "Optimizer while fine-tuning/QAT (default: the plateau "
    "recipe's SGD with ReduceLROnPlateau)."
)
flags.DEFINE_integer(
    "finetune_limit", None,
    "Images per fine-tuning / QAT epoch (pruning steps, controls, OCNNA, kd recovery): a "
    "seeded stream of the train split; default: all of it. The baseline trains on all of it.",
)
flags.DEFINE_integer("qat_epochs", 1, "Cap of the QAT fit (the fine-tuning recipe; set it to "
                     "--finetune_epochs for a matched control).")
flags.DEFINE_integer("ocnna_images", 1000, "Images used to score filters (OCNNA).")
flags.DEFINE_string("kd_teacher", None, "Variant whose trained baseline teaches 'kd' recipes.")
flags.DEFINE_integer(
    "kd_epochs", None, "Epochs of a stand-alone 'kd' training (default: train_epochs)."
)
# ---- conversion + evaluation --------------------------------------------------------------
flags.DEFINE_list(
    "convert_modes",
    ["float32", "int8"],
    f"TFLite conversion modes: {', '.join(cfg.CONVERT_MODES)}.",
)
flags.DEFINE_integer("calibration_samples", 200, "Representative images for int8 calibration.")
flags.DEFINE_string(
    "calibration",
    None,
    f"int8 activation ranges: {', '.join(cfg.CALIBRATIONS)} (default percentile: the 99th "
    "percentile of each image's extremes; converter: the TFLite converter's own ranges).",
)
flags.DEFINE_bool("eval_tflite", True, "Measure the accuracy of every converted model.")
flags.DEFINE_bool("eval_latency", True, "Measure interpreter latency (median, p90).")
flags.DEFINE_integer("latency_runs", 50, "Interpreter invocations per latency measurement.")
flags.DEFINE_bool("eval_micro", True, "Run int8 models on TensorFlow Lite Micro (arena bytes).")
flags.DEFINE_bool("export", True, "Write the firmware export (.tflite, .cc/.h, .json) per trial.")
flags.DEFINE_bool(
    "export_metadata",
    True,
    "With --export: also write NAME.mediapipe.tflite (float32 I/O, labels, normalisation: "
    "what MediaPipe's ImageClassifier loads).",
)
flags.DEFINE_string(
    "board",
    None,
    "Board profile (tfopt.tflite.boards: nano33ble, esp32s3, stm32f746, pico, phone): a fit "
    "pre-pass skips, and records, the variants whose int8 model cannot fit it.",
)
flags.DEFINE_float(
    "board_reserve", 0.2, "With --board: fraction of SRAM and flash kept for the application."
)
# ---- execution ----------------------------------------------------------------------------
flags.DEFINE_string(
    "executor",
    "local",
    f"How trials run: {', '.join(cfg.EXECUTORS)} (processes: --workers trials at once, "
    "each in its own worker process on this machine).",
)
flags.DEFINE_integer(
    "workers", 2, "With --executor=processes: worker processes (trials at once); TensorFlow "
    "in each uses cores // workers threads.",
)
flags.DEFINE_string(
    "ray_address", None, "Ray cluster address (e.g. auto); implies a running cluster."
)
flags.DEFINE_float(
    "ray_gpus_per_trial", None, "GPUs per Ray task (default: 1 if the cluster has GPUs)."
)
flags.DEFINE_bool(
    "overwrite",
    False,
    "Accept a workdir holding results of a different config (they are archived).",
)
flags.DEFINE_integer(
    "verbose", 1, "Keras verbosity inside trials (0 silent, 1 progress bars, 2 lines)."
)
flags.DEFINE_enum(
    "tf_log_level",
    None,
    list(TF_LOG_LEVELS),
    "TensorFlow C++ log level (TF_CPP_MIN_LOG_LEVEL): 0 all, 1 no INFO, 2 no WARNING, 3 no "
    "ERROR; default: $TF_CPP_MIN_LOG_LEVEL, else 3 (quiet).",
)

flags.DEFINE_bool(
    "dry_run",
    False,
    "Parse and plan only: print the trial plan and an estimated training time per trial "
    "(a few train steps of each model timed on random data; tfopt/experiments/plan.py).",
)

flags.DEFINE_alias("force", "overwrite")
# The spellings of `python -m tfopt.train` for the same settings (docs/ablation.md, "Flag names").
for _alias, _name in TRAIN_FLAG_SPELLINGS.items():
    flags.DEFINE_alias(_alias, _name)

# Every ExperimentConfig field has a flag of the same name (checked by tests/test_experiments_flags.py).
_FIELD_FLAGS = tuple(f.name for f in dataclasses.fields(cfg.ExperimentConfig))



def workdir_path(path: str) -> str:
    """`--workdir` as an absolute path, created and proven writable
    (`tfopt.core.cli.check_writable_dir`, the check every CLI uses; one-line ValueError)."""
    if not path.strip():
        raise cli.bad_value("workdir", repr(path), "a directory path")
    path = os.path.abspath(os.path.expanduser(path))
    cli.check_writable_dir("workdir", path)
    return path


def config_from_flags(flag_values=FLAGS) -> cfg.ExperimentConfig:
    """Build the validated `ExperimentConfig` from parsed flags (ValueError: one line)."""
    fv = flag_values
    for required in ("variants", "recipes", "workdir"):
        if fv[required].value in (None, [], ""):
            raise ValueError(f"--{required} is required")
    kw = {name: fv[name].value for name in _FIELD_FLAGS}
    kw["variants"] = tuple(split_variant_list(kw["variants"]))
    kw["recipes"] = tuple(cfg.split_recipe_list(kw["recipes"]))
    if kw["compress_variants"] is not None:
        kw["compress_variants"] = tuple(split_variant_list(kw["compress_variants"]))
    if kw["seeds"] is not None:
        kw["seeds"] = tuple(_seed(s) for s in kw["seeds"] if s.strip())
    kw["convert_modes"] = tuple(m.strip() for m in kw["convert_modes"] if m.strip())
    if kw["data_dir"] is not None and not os.path.isdir(kw["data_dir"]):
        raise ValueError(f"--data_dir={kw['data_dir']}: expected an existing directory")
    kw["workdir"] = workdir_path(kw["workdir"])
    return cfg.ExperimentConfig(**kw)  # validated once, here


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"seeds: {text!r} is not a whole number; e.g. --seeds=0,1,2") from None


def parse_argv(argv: list[str], flag_values=FLAGS) -> list[str]:
    """absl flags parser for `app.run` that prints one line on a bad flag instead of a trace."""
    try:
        return flag_values(argv)
    except flags.Error as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
