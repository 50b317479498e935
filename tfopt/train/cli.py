"""The training CLI: `python -m tfopt.train --model=ID --dataset=NAME --epochs=N --workdir=DIR`.

Trains `--model` on the train split of `--dataset` with the paper's recipe, validating on the
test split after every epoch, then evaluates on the test split and writes to --workdir:
model.keras, metrics.json, history.json, config.json, flags.txt, checkpoints/, logs/ (TensorBoard),
data_cache/ (computed mean/std, folder decode check). A folder: dataset without a test/ folder
takes `--test_fraction` of train/ (class-stratified) as its test split.
(With `--val_fraction=F` the last F of the train split is held out as well: it is validated on
after every epoch, early stopping (`--early_stopping_patience`) watches its accuracy and the
best epoch's weights are kept; the test split is then evaluated once, at the end.)
Re-running the same command after a crash resumes from the last completed epoch.
Every flag is checked before any work; a bad one is a one-line error (exit status 2).
`--flagfile=FILE` reads flags from FILE (one per line; '#' comments on their own line only).
Flags shared with the ablation driver have one canonical name here and accept the ablation's
spelling as an alias: --epochs (--train_epochs), --batch_size (--train_batch_size), --optimizer
(--train_optimizer), --max_lr (--train_max_lr), --weight_decay (--train_weight_decay),
--augment (--train_augment), --limit (--train_limit).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import time

from absl import flags, logging

from tfopt.core import cli
from tfopt.core.choices import TRAIN_FLAG_SPELLINGS

FLAGS = flags.FlagValues()   # this CLI's own flags (in-process runs do not clash)


def define_flags() -> None:
    """Define the CLI's flags into this module's FlagValues (once)."""
    if "model" in FLAGS:
        return
    _define()
    # canonical name here -> the ablation driver's name, accepted as an alias (docs/ablation.md)
    for name, alias in TRAIN_FLAG_SPELLINGS.items():
        flags.DEFINE_alias(alias, name, flag_values=FLAGS)


class _Bound:
    """`flags.DEFINE_*` bound to this CLI's FlagValues."""

    def __getattr__(self, name):
        return functools.partial(getattr(flags, name), flag_values=FLAGS)


def _define() -> None:
    _f = _Bound()
    _f.DEFINE_string("model", None, "Model id from the registry, e.g. tiny_cnn, resnet101_v13.")
    _f.DEFINE_string("dataset", None, "fashion_mnist, cifar10, cifar100, imagenet2012, any "
                     "tensorflow-datasets name, folder:PATH or synthetic[:HxWxC[:K[:N]]].")
    _f.DEFINE_integer("epochs", None, "Total training epochs (>= 1).")
    _f.DEFINE_string("workdir", None, "Output directory; an unfinished run there is resumed.")
    _f.DEFINE_integer("batch_size", 128, "Images per step (>= 1).")
    _f.DEFINE_string("optimizer", "sgd_onecycle", "sgd_onecycle | sgd_plateau | adam | sgd.")
    _f.DEFINE_float("max_lr", 0.0125, "Peak learning rate of sgd_onecycle (> 0).")
    _f.DEFINE_float("lr", None, "Learning rate of sgd_plateau/adam/sgd (> 0; default "
                    "0.01 / 0.001 / 0.01).")
    _f.DEFINE_float("weight_decay", 2e-5, "Coupled L2 on every weight (>= 0).")
    _f.DEFINE_integer("seed", 0, "Seed of weight init, data order and augmentation.")
    _f.DEFINE_string("data_dir", None, "Where the data files are (IDX files / tfds data dir).")
    _f.DEFINE_integer("image_size", None, "Resize images to this square size (>= 1), e.g. 32.")
    _f.DEFINE_boolean("to_rgb", False, "Repeat grey images to 3 channels.")
    _f.DEFINE_boolean("augment", True, "Paper augmentation: pad 4 + random crop + flip.")
    _f.DEFINE_float("width_multiplier", 1.0, "Scale every layer's channels (> 0).")
    _f.DEFINE_integer("limit", None, "Use only N train images (>= 1; folder: datasets: a "
                      "class-stratified subset, others: the first N).")
    _f.DEFINE_integer("test_limit", None, "Use only N test images (>= 1; as --limit).")
    _f.DEFINE_float("test_fraction", None, "folder: datasets: hold out this class-stratified "
                    "fraction of train/ (in (0, 1)) as the test split when PATH has no test/ "
                    "folder; training uses the rest.")
    _f.DEFINE_boolean("skip_bad_files", False, "folder: datasets: skip (and count) image "
                      "files that do not decode instead of stopping.")
    _f.DEFINE_boolean("eval_every_epoch", True, "Evaluate on the test split after each epoch "
                      "(ignored with --val_fraction: the held-out split is evaluated instead).")
    _f.DEFINE_float("val_fraction", 0.0, "Hold out this fraction of the train split (after "
                    "--limit) for per-epoch validation and early stopping; 0: none.")
    _f.DEFINE_integer("early_stopping_patience", None, "Stop after this many epochs without "
                      "a better held-out accuracy and keep the best epoch (needs "
                      "--val_fraction; default: sgd_plateau 10 on the train loss, else off).")
    _f.DEFINE_integer("verbose", 1, "0 silent, 1 progress bars, 2 one line per epoch.")
    _f.DEFINE_string("mixed_precision", "auto", "auto (on iff a GPU is present) | on | off.")
    flags.mark_flags_as_required(["model", "dataset", "epochs", "workdir"], flag_values=FLAGS)


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What the CLI trains, besides the TrainConfig."""
    model: str
    dataset: str
    workdir: str
    data_dir: str | None
    image_size: int | None
    to_rgb: bool
    augment: bool
    width_multiplier: float
    limit: int | None
    test_limit: int | None
    eval_every_epoch: bool
    val_fraction: float = 0.0
    test_fraction: float | None = None
    skip_bad_files: bool = False


def _bad(flag: str, value, allowed: str) -> ValueError:
    return ValueError(f"--{flag}={value}: expected {allowed}")


def check_dataset(name: str, data_dir: str | None, test_fraction: float | None = None) -> None:
    """Raise a one-line ValueError if --dataset cannot name a source (without loading it)."""
    from tfopt.data import folder, idx, synthetic, tfds_source
    try:
        if test_fraction is not None and not name.startswith("folder:"):
            raise ValueError("--test_fraction is for folder:PATH datasets only")
        if name == "fashion_mnist":
            if data_dir is not None and idx.find_fashion_mnist(data_dir) is None:
                raise ValueError(idx.missing_message(data_dir))
            return
        if name == "synthetic" or name.startswith("synthetic:"):
            synthetic.parse_spec(name)
        elif name.startswith("folder:"):
            root = name[len("folder:"):]
            folder.split_dir(root, "train")
            if test_fraction is None:
                folder.split_dir(root, "test")
        else:
            tfds_source.builder(name, data_dir)
    except ValueError as err:
        raise ValueError(f"--dataset={name}: {err}") from err


def settings_from_flags():
    """Validate every flag -> (RunSettings, TrainConfig); the first problem is a ValueError."""
    from tfopt.models import get_variant
    from tfopt.train.config import OPTIMIZERS, TrainConfig
    from tfopt.train.trainer import check_workdir

    f = FLAGS
    try:
        get_variant(f.model)
    except ValueError as err:
        raise ValueError(f"--model={f.model}: {err}") from err
    if f.epochs < 1:
        raise _bad("epochs", f.epochs, "an int >= 1")
    if not f.workdir.strip():
        raise _bad("workdir", repr(f.workdir), "a directory path")
    if os.path.exists(f.workdir) and not os.path.isdir(f.workdir):
        raise _bad("workdir", f.workdir, "a directory (a file of that name exists)")
    for name in ("batch_size",):
        if getattr(f, name) < 1:
            raise _bad(name, getattr(f, name), "an int >= 1")
    for name in ("image_size", "limit", "test_limit"):
        if getattr(f, name) is not None and getattr(f, name) < 1:
            raise _bad(name, getattr(f, name), "an int >= 1 (or leave it unset)")
    if f.optimizer not in OPTIMIZERS:
        raise _bad("optimizer", f.optimizer, f"one of {', '.join(OPTIMIZERS)}")
    if not f.max_lr > 0:
        raise _bad("max_lr", f.max_lr, "a number > 0")
    if f.lr is not None and not f.lr > 0:
        raise _bad("lr", f.lr, "a number > 0")
    if not f.weight_decay >= 0:
        raise _bad("weight_decay", f.weight_decay, "a number >= 0")
    if not f.width_multiplier > 0:
        raise _bad("width_multiplier", f.width_multiplier, "a number > 0")
    if not 0 <= f.val_fraction < 1:
        raise _bad("val_fraction", f.val_fraction, "a number in [0, 1) (0: no held-out split)")
    if f.early_stopping_patience is not None:
        if f.early_stopping_patience < 0:
            raise _bad("early_stopping_patience", f.early_stopping_patience, "an int >= 0")
        if f.val_fraction == 0:
            raise _bad("early_stopping_patience", f.early_stopping_patience,
                       "to come with --val_fraction > 0 (early stopping watches a held-out "
                       "split, never the test split)")
    if f.verbose not in (0, 1, 2):
        raise _bad("verbose", f.verbose, "0, 1 or 2")
    if f.mixed_precision not in ("auto", "on", "off"):
        raise _bad("mixed_precision", f.mixed_precision, "auto, on or off")
    if f.data_dir is not None and not os.path.isdir(f.data_dir):
        raise _bad("data_dir", f.data_dir, "an existing directory")
    if f.test_fraction is not None and not 0 < f.test_fraction < 1:
        raise _bad("test_fraction", f.test_fraction, "a number in (0, 1) (or leave it unset)")
    check_dataset(f.dataset, f.data_dir, f.test_fraction)
    settings = RunSettings(model=f.model, dataset=f.dataset, workdir=f.workdir,
                           data_dir=f.data_dir, image_size=f.image_size, to_rgb=f.to_rgb,
                           augment=f.augment, width_multiplier=f.width_multiplier,
                           limit=f.limit, test_limit=f.test_limit,
                           eval_every_epoch=f.eval_every_epoch, val_fraction=f.val_fraction,
                           test_fraction=f.test_fraction, skip_bad_files=f.skip_bad_files)
    held_out = f.val_fraction > 0
    config = TrainConfig(epochs=f.epochs, batch_size=f.batch_size, optimizer=f.optimizer,
                         max_lr=f.max_lr, lr=f.lr, weight_decay=f.weight_decay, seed=f.seed,
                         verbose=f.verbose, mixed_precision=f.mixed_precision,
                         early_stopping_patience=f.early_stopping_patience,
                         monitor="val_accuracy" if held_out else "loss")
    check_workdir(f.workdir, config)
    cli.check_writable_dir("workdir", f.workdir)   # last: a bad flag leaves no empty folder behind
    saved = os.path.join(f.workdir, "config.json")
    if os.path.exists(saved):
        with open(saved) as fh:
            before = json.load(fh).get("run", {})
        now = dataclasses.asdict(settings)
        defaults = {fld.name: fld.default for fld in dataclasses.fields(RunSettings)}
        for key in sorted(now):   # a key an older run lacks had its default value
            if key != "eval_every_epoch" and before.get(key, defaults[key]) != now[key]:
                raise _bad(key, now[key], f"{before.get(key)!r}, as in the run already in "
                           f"{f.workdir} (or use a new --workdir)")
    return settings, config


def _load_data(settings: RunSettings, config):
    """(train_ds, val_ds, info, test_ds), val_ds None without --val_fraction; a bad file or folder is a one-line error (exit status 2).
    Computed statistics and the folder decode check are cached in WORKDIR/data_cache."""
    import tfopt.data

    data_kw = dict(data_dir=settings.data_dir, image_size=settings.image_size,
                   to_rgb=settings.to_rgb, cache_dir=os.path.join(settings.workdir, "data_cache"))
    if settings.dataset.startswith("folder:"):
        data_kw.update(val_fraction=settings.test_fraction, skip_bad_files=settings.skip_bad_files)
    from tfopt.train.holdout import holdout_split

    train_kw = dict(batch_size=config.batch_size, augment=settings.augment, limit=settings.limit,
                    seed=config.seed, **data_kw)
    val_ds = None
    try:
        if settings.val_fraction > 0:
            train_ds, val_ds, info = holdout_split(settings.dataset,
                                                   val_fraction=settings.val_fraction, **train_kw)
        else:
            train_ds, info = tfopt.data.load_epochs(settings.dataset, "train", **train_kw)
        test_ds, _ = tfopt.data.load(settings.dataset, "test", batch_size=config.batch_size,
                                     limit=settings.test_limit, **data_kw)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(f"--dataset={settings.dataset}: {cli.describe(err)}") from err
    return train_ds, val_ds, info, test_ds


def _count_examples(ds) -> int:
    """Images in a finite batched dataset of (x, y) (one pass; the held-out split is cached)."""
    return int(sum(int(y.shape[0]) for _, y in ds))


def run(settings: RunSettings, config) -> dict:
    """Train, evaluate on the test split, write the outputs; returns metrics.json's content."""
    import tensorflow as tf

    from tfopt._keras import keras
    from tfopt.models import build_model
    from tfopt.stats import convergence
    from tfopt.train.callbacks import write_json
    from tfopt.train.trainer import evaluate, fit

    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if config.mixed_precision == "on" or (config.mixed_precision == "auto" and gpus):
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(config.seed)

    train_ds, val_ds, info, test_ds = _load_data(settings, config)
    os.makedirs(settings.workdir, exist_ok=True)
    write_json(os.path.join(settings.workdir, "config.json"),
               {"run": dataclasses.asdict(settings), "train": dataclasses.asdict(config),
                "data": dataclasses.asdict(info)})
    with open(os.path.join(settings.workdir, "flags.txt"), "w") as fh:
        fh.write(FLAGS.flags_into_string())

    with strategy.scope():
        model = build_model(settings.model, num_classes=info.num_classes,
                            input_shape=info.image_shape,
                            width_multiplier=settings.width_multiplier)
    if settings.val_fraction == 0:
        val_ds = test_ds if settings.eval_every_epoch else None
    result = fit(model, train_ds, config, val_ds=val_ds, workdir=settings.workdir)
    start = time.perf_counter()
    test = evaluate(model, test_ds)
    # Saved uncompiled (no optimizer state, no custom loss), so plain
    # `keras.models.load_model(path)` reads it without tfopt's classes.
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    clean.save(os.path.join(settings.workdir, "model.keras"))
    metrics = {
        "model": settings.model, "dataset": settings.dataset,
        "accuracy": test["accuracy"], "loss": test["loss"],
        "test_examples": test["num_examples"],
        "epochs": result["epochs"], "resumed_from_epoch": result["initial_epoch"],
        "stopped_early": result["stopped_early"],
        "train_loss": result.get("loss"), "train_accuracy": result.get("accuracy"),
        "wall_time_s": result["wall_time_s"], "eval_time_s": time.perf_counter() - start,
        "images_per_s": result["images_per_s"],
        "trainable_params": int(sum(int(v.shape.num_elements())
                                    for v in model.trainable_weights)),
        "image_shape": list(info.image_shape), "train_examples": info.num_examples,
        "device": (f"{len(gpus)} GPU(s)" if gpus
                   else f"CPU ({platform.machine()}, {os.cpu_count()} cores)"),
        "mixed_precision": keras.mixed_precision.global_policy().name,
    }
    if settings.val_fraction > 0:   # what the stop rule saw (the held-out split, not test)
        patience = config.stopping_patience
        k = min(3, patience) if patience else 3   # k <= patience: see tfopt.stats.convergence
        converged, gain = convergence(result, k=k)
        val = result["history"]["val_accuracy"]
        metrics.update(best_epoch=result["best_epoch"], val_examples=_count_examples(val_ds),
                       best_val_accuracy=max(val), converged=converged, convergence_k=k,
                       gain_last_k_pp=round(gain, 3))
    write_json(os.path.join(settings.workdir, "metrics.json"), metrics)
    best = f" (best epoch {metrics['best_epoch']} kept)" if metrics.get("best_epoch") else ""
    print(f"test accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f} after "
          f"{metrics['epochs']} epochs{best}; wrote {settings.workdir}/metrics.json")
    return metrics


def _main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; flags look like --name=value")
    logging.set_verbosity(logging.WARNING)   # keep tfds/absl INFO chatter off the console
    settings, config = settings_from_flags()
    run(settings, config)
    return 0


def main(argv=None) -> int:
    """Entry point: `python -m tfopt.train` (argv without the program name; exit status)."""
    define_flags()
    return cli.run(_main, argv, flag_values=FLAGS, doc=__doc__, prog="python -m tfopt.train")
