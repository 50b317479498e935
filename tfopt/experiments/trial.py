"""One trial of the ablation grid: (variant, recipe) -> model -> metrics -> TFLite -> one row.

This module is the only seam between the driver and the libraries it ties together; each
library is reached through one small function here (`_train`, `_prune`, `_qat`, `_ocnna`,
`_distill`, `_convert_and_evaluate`, `_micro`, `_export`), so an API change touches one place.
It imports TensorFlow (the driver does not, until the first trial runs).

Units in the row: parameters and FLOPs are counts (FLOPs in the paper's fvcore convention,
1 multiply-add = 1 FLOP), sizes in bytes, accuracies in percent, drops in percentage points
(baseline minus this trial), latency in milliseconds, wall time in seconds.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
import traceback

from tfopt.experiments.config import (
    OCNNA_CRITERIA,
    OCNNA_KINDS,
    PRUNE_KINDS,
    ExperimentConfig,
    parse_recipe,
)
from tfopt.experiments.grid import Trial

SCHEMA_VERSION = 1
MODEL_FILE = "model.h5"
MODEL_DONE = "model_done.json"


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def run_trial_safe(config_dict: dict, trial_dict: dict, dep_rows: dict) -> dict:
    """`run_trial`, but a failure is returned as a row (status 'failed', error, traceback file)."""
    t0 = time.monotonic()
    started = _now()
    try:
        return run_trial(config_dict, trial_dict, dep_rows)
    except Exception as err:  # one failing trial must not stop the grid
        trial = Trial(**trial_dict)
        config = ExperimentConfig.from_dict(config_dict)
        tdir = _trial_dir(config, trial)
        os.makedirs(tdir, exist_ok=True)
        tb_path = os.path.join(tdir, "traceback.txt")
        with open(tb_path, "w", encoding="utf-8") as f:
            f.write(traceback.format_exc())
        # A retry of a failed compression trial starts its fine-tuning afresh (its checkpoint may
        # be what failed); a baseline keeps its checkpoints, which are worth hours.
        train_dir = os.path.join(tdir, "train")
        if trial.parent is not None and os.path.isdir(train_dir):
            n = 1
            while os.path.exists(f"{train_dir}.failed-{n}"):
                n += 1
            os.replace(train_dir, f"{train_dir}.failed-{n}")
        msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return {
            "schema": SCHEMA_VERSION,
            "trial_id": trial.id,
            "variant": trial.variant,
            "recipe": trial.recipe,
            "requested": trial.requested,
            "status": "failed",
            "error": f"{type(err).__name__}: {msg}"[:500],
            "traceback_path": tb_path,
            "started_at": started,
            "finished_at": _now(),
            "wall_time_s": round(time.monotonic() - t0, 3),
            "versions": versions(),
        }


def run_trial(config_dict: dict, trial_dict: dict, dep_rows: dict) -> dict:
    """Run one trial and return its results row (see docs/ablation.md for every key)."""
    import tfopt  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)

    t0 = time.monotonic()
    started = _now()
    config = ExperimentConfig.from_dict(config_dict)
    trial = Trial(**trial_dict)
    recipe = parse_recipe(trial.recipe)
    tdir = _trial_dir(config, trial)
    os.makedirs(tdir, exist_ok=True)
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def lap(name):
        nonlocal mark
        now = time.monotonic()
        timings[name] = round(now - mark, 3)
        mark = now

    data = _data(config)
    from tfopt._keras import keras

    keras.utils.set_random_seed(config.seed)  # same init/dropout on a rerun or resume of the trial
    lap("data_s")
    model, step_info = _model_for(config, trial, recipe, data, tdir)
    lap("model_s")

    from tfopt import metrics
    from tfopt.train import evaluate

    keras_acc = 100.0 * float(evaluate(model, data.test_ds)["accuracy"])
    params = int(metrics.count_params(model))
    nonzero = int(metrics.count_nonzero_params(model))
    flops = int(metrics.count_flops(model))
    macs = int(metrics.count_macs(model))
    weights_path = os.path.join(tdir, "weights.h5")
    model.save_weights(weights_path)
    conv_sparsity, paper_nonzero = _sparsity_counts(model, recipe)

    lap("evaluate_s")
    base = dep_rows.get(trial.baseline) if trial.baseline != trial.id else None
    base_acc = keras_acc if base is None else base["keras_accuracy_pct"]
    base_params = params if base is None else base["params"]
    base_flops = flops if base is None else base["flops"]

    row = {
        "schema": SCHEMA_VERSION,
        "status": "ok",
        "trial_id": trial.id,
        "variant": trial.variant,
        "recipe": trial.recipe,
        "recipe_steps": [s.kind for s in recipe.steps],
        "requested": trial.requested,
        "parent_trial": trial.parent,
        "baseline_trial": trial.baseline,
        "teacher_trial": trial.teacher,
        "reference_variant": config.reference,
        "techniques": _techniques(trial.variant),
        "paper_variant": _paper_variant(trial.variant),
        "config": config.trial_settings(),
        "config_fingerprint": config.fingerprint(),
        "dataset": config.dataset,
        "num_classes": data.info.num_classes,
        "input_shape": list(data.info.image_shape),
        "width_multiplier": config.width_multiplier,
        "train_examples": data.train_examples,
        "test_examples": int(len(data.y_test)),
        "params": params,
        "nonzero_params": nonzero,
        "paper_nonzero_params": paper_nonzero,
        "conv_sparsity": round(conv_sparsity, 6),
        "target_sparsity": step_info.get("target_sparsity"),
        "flops": flops,
        "macs": macs,
        "keras_weights_bytes": os.path.getsize(weights_path),
        "keras_accuracy_pct": round(keras_acc, 4),
        "baseline_accuracy_pct": round(base_acc, 4),
        "accuracy_drop_pp": round(base_acc - keras_acc, 4),
        "baseline_params": base_params,
        "rpr_pct": round(100.0 * nonzero / base_params, 4) if base_params else None,
        "params_ratio_pct": round(100.0 * params / base_params, 4) if base_params else None,
        "flops_ratio_pct": round(100.0 * flops / base_flops, 4) if base_flops else None,
        "steps": step_info.get("steps", []),
    }
    tflite, micro, export = _convert_and_evaluate(config, trial, recipe, model, data, tdir, lap)
    row["tflite"] = tflite
    row["micro"] = micro
    row["export_dir"] = export
    row["tensorboard_dir"] = (
        os.path.join(tdir, "train") if os.path.isdir(os.path.join(tdir, "train")) else None
    )
    row.update(
        {
            "started_at": started,
            "finished_at": _now(),
            "wall_time_s": round(time.monotonic() - t0, 3),
            "timings": timings,
            "versions": versions(),
            "host": platform.node(),
        }
    )
    return row


# --------------------------------------------------------------------------------------------
# data (loaded once per process and config)
# --------------------------------------------------------------------------------------------


class _Data:
    def __init__(self, config: ExperimentConfig):
        from tfopt import data as tfdata

        self.config = config
        self.pre = {
            "image_size": (config.image_size, config.image_size) if config.image_size else None,
            "to_rgb": config.to_rgb,
            "data_dir": config.data_dir,
        }
        self.pre = {k: v for k, v in self.pre.items() if v not in (None, False)}
        self.train_ds, self.info = tfdata.load(
            config.dataset,
            "train",
            batch_size=config.train_batch_size,
            augment=config.train_augment,
            shuffle=True,
            limit=config.train_limit,
            seed=config.seed,
            **self.pre,
        )
        self.x_test, self.y_test, _ = tfdata.load_arrays(
            config.dataset, "test", limit=config.test_limit, seed=config.seed, **self.pre
        )
        self.test_ds, _ = tfdata.load(
            config.dataset,
            "test",
            batch_size=config.train_batch_size,
            augment=False,
            shuffle=False,
            limit=config.test_limit,
            seed=config.seed,
            **self.pre,
        )
        self.train_examples = int(
            min(config.train_limit or self.info.num_examples, self.info.num_examples)
        )
        self._x_score = None
        self._x_calib = None
        self._train_xy = None

    def _train_arrays(self):
        """A seeded sample of training images as arrays (OCNNA scoring, int8 calibration)."""
        if self._train_xy is None:
            from tfopt import data as tfdata

            pool = max(self.config.ocnna_images, self.config.calibration_samples) * 5
            limit = min(self.train_examples, max(pool, 1000))
            x, y, _ = tfdata.load_arrays(
                self.config.dataset, "train", limit=limit, seed=self.config.seed, **self.pre
            )
            self._train_xy = (x, y)
        return self._train_xy

    def scoring_images(self):
        """`ocnna_images` seeded, class-balanced training images (OCNNA's default scoring set)."""
        if self._x_score is None:
            from tfopt.compress.ocnna import balanced_subset

            x, y = self._train_arrays()
            self._x_score, _ = balanced_subset(
                x, y, min(self.config.ocnna_images, len(y)), seed=self.config.seed
            )
        return self._x_score

    def representative(self):
        """`calibration_samples` seeded training images for int8 calibration (loaded once)."""
        if self._x_calib is None:
            import numpy as np

            x, _ = self._train_arrays()
            rng = np.random.default_rng(self.config.seed)
            n = min(self.config.calibration_samples, len(x))
            self._x_calib = np.asarray(x[rng.choice(len(x), n, replace=False)], np.float32)
        return self._x_calib


_DATA_CACHE: dict[str, _Data] = {}


def _data(config: ExperimentConfig) -> _Data:
    key = json.dumps(
        [
            config.dataset,
            config.data_dir,
            config.image_size,
            config.to_rgb,
            config.train_limit,
            config.test_limit,
            config.train_batch_size,
            config.train_augment,
            config.seed,
            config.ocnna_images,
            config.calibration_samples,
        ]
    )
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = _Data(config)
    return _DATA_CACHE[key]


# --------------------------------------------------------------------------------------------
# model production (cached in the trial folder, so a killed trial resumes after its training)
# --------------------------------------------------------------------------------------------


def _trial_dir(config: ExperimentConfig, trial: Trial) -> str:
    return os.path.join(config.workdir, "trials", trial.id)


def _load_model(path: str):
    from tfopt._keras import keras
    from tfopt.models import list_variants

    list_variants()  # imports every family module, registering tfopt's serializable layers
    from tfopt.compress import qat

    with qat.quantize_scope():  # QAT wrappers and tfopt's QuantizeConfigs
        return keras.models.load_model(path, compile=False)


def load_trial_model(workdir: str, trial_id: str):
    """The Keras model a finished trial produced (for children, notebooks, re-evaluation)."""
    path = os.path.join(workdir, "trials", trial_id, MODEL_FILE)
    if not os.path.exists(path):
        raise ValueError(f"trial {trial_id!r} has no saved model at {path!r}")
    return _load_model(path)


def _model_for(config, trial, recipe, data, tdir):
    path = os.path.join(tdir, MODEL_FILE)
    done = os.path.join(tdir, MODEL_DONE)
    if os.path.exists(path) and os.path.exists(done):
        try:
            model = _load_model(path)
            with open(done, encoding="utf-8") as f:
                return model, json.load(f)
        except Exception:  # an unreadable cache is rebuilt, never trusted
            os.remove(done)
    model, info = _produce(config, trial, recipe, data, tdir)
    model.save(path, include_optimizer=False)
    with open(done + ".tmp", "w", encoding="utf-8") as f:
        json.dump(info, f, default=str)
    os.replace(done + ".tmp", done)
    return model, info


def _train_config(config: ExperimentConfig, *, epochs: int, max_lr: float | None = None):
    """Baseline training when max_lr is None; fine-tuning (finetune_optimizer) otherwise."""
    from tfopt.train import TrainConfig

    optimizer = config.train_optimizer
    if max_lr is not None:
        optimizer = config.finetune_optimizer or config.train_optimizer
    lr = None if optimizer == "sgd_onecycle" or max_lr is None else max_lr
    return TrainConfig(
        epochs=epochs,
        batch_size=config.train_batch_size,
        optimizer=optimizer,
        lr=lr,
        max_lr=config.train_max_lr if max_lr is None else max_lr,
        weight_decay=config.train_weight_decay,
        seed=config.seed,
        verbose=config.verbose,
    )


def _build(config, variant, data):
    from tfopt.models import build_from_spec

    return build_from_spec(
        variant,
        num_classes=data.info.num_classes,
        input_shape=tuple(data.info.image_shape),
        width_multiplier=config.width_multiplier,
    )


def _produce(config, trial, recipe, data, tdir):
    """Run the last step of `recipe` on the parent trial's model; returns (model, info)."""
    step = recipe.last
    if step.kind == "none":
        model = _build(config, trial.variant, data)
        hist = _train(config, model, data, os.path.join(tdir, "train"), config.train_epochs)
        return model, {"steps": [{"kind": "train", **hist}]}
    if step.kind == "kd" and trial.parent is None:  # stand-alone: from scratch with a teacher
        teacher = load_trial_model(config.workdir, trial.teacher)
        model = _build(config, trial.variant, data)
        hist = _distill(
            config,
            model,
            teacher,
            data,
            step,
            os.path.join(tdir, "train"),
            config.kd_epochs or config.train_epochs,
            None,
        )
        return model, {"steps": [{"kind": "kd", **hist}]}
    parent = load_trial_model(config.workdir, trial.parent)
    if step.kind in PRUNE_KINDS:
        return _prune(config, parent, step, recipe, data, tdir)
    if step.kind == "qat":
        pruned = any(s.kind in PRUNE_KINDS for s in recipe.steps[:-1])
        return _qat(config, parent, data, tdir, preserve_sparsity=pruned)
    if step.kind in OCNNA_KINDS:
        return _ocnna(config, parent, step, data, tdir)
    if step.kind == "kd":  # recovery: parent model as teacher
        teacher = parent
        student = _clone(parent)
        hist = _distill(
            config,
            student,
            teacher,
            data,
            step,
            os.path.join(tdir, "train"),
            max(1, config.finetune_epochs),
            config.finetune_max_lr,
        )
        return student, {"steps": [{"kind": "kd", **hist}]}
    raise AssertionError(f"unhandled recipe step {step.kind!r}")


def _sparsity_counts(model, recipe):
    """(fraction of zero conv-kernel weights, the paper's non-zeroed count) of a trial's model.

    tfopt.compress.sparsity reads kernels through tfmot wrappers; the pruning-preserving QAT
    wrapper only exposes its kernel symbolically, so a QAT model is measured with
    `qat.kernel_sparsity` and its non-zeroed count is left empty (None) when unreadable.
    """
    from tfopt.compress import sparsity

    try:
        return float(sparsity.model_sparsity(model)), int(sparsity.paper_nonzero_count(model))
    except (AttributeError, TypeError, ValueError):
        if recipe.last.kind != "qat":
            raise
    # Workaround until tfopt.compress.sparsity reads PQAT wrappers: the wrappers still hold the
    # kernel variables among their trainable weights.
    import numpy as np
    from tfopt._keras import layers

    zeros = total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)):
            for w in layer.trainable_weights:
                if w.name.split("/")[-1].split(":")[0].endswith("kernel"):
                    v = np.asarray(w.numpy())
                    zeros += int(v.size - np.count_nonzero(v))
                    total += int(v.size)
    return (zeros / total if total else 0.0), None


def _techniques(variant: str) -> dict:
    """The variant's technique set as a flat dict (for the report's check-mark table)."""
    import dataclasses
    from tfopt.models import techniques_of

    tech = techniques_of(variant)[1]
    if dataclasses.is_dataclass(tech):
        return {
            k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
            for k, v in dataclasses.asdict(tech).items()
        }
    return {"techniques": str(tech)} if tech is not None else {}


def _paper_variant(variant: str) -> str | None:
    """The zoo id with the same technique set (a combination may equal a paper variant)."""
    from tfopt.models import paper_variant

    return paper_variant(variant)


def _clone(model):
    from tfopt._keras import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def _history_summary(result) -> dict:
    if not isinstance(result, dict):
        return {}
    out = {}
    for k, v in result.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)) and v and isinstance(v[-1], (int, float)):
            out[f"final_{k}"] = float(v[-1])
    return out


def _train(
    config, model, data, workdir, epochs: int, max_lr: float | None = None, extra_callbacks=()
) -> dict:
    """Train through tfopt.train.fit (which checkpoints into workdir and resumes from it)."""
    from tfopt.train import fit

    result = fit(
        model,
        data.train_ds,
        _train_config(config, epochs=epochs, max_lr=max_lr),
        val_ds=data.test_ds,
        workdir=workdir,
        extra_callbacks=tuple(extra_callbacks),
    )
    return _history_summary(result)


# ---- compression adapters: each calls the compression library once ------------------------


def _prune(config, parent, step, recipe, data, tdir):
    """One pruning trial: the next step of a series, or a tfmot schedule, then fine-tuning."""
    from tfopt.compress import global_pruning, pruning

    target = float(step.sparsities[-1])
    epochs = max(1, config.finetune_epochs)
    tconf = _train_config(config, epochs=epochs, max_lr=config.finetune_max_lr)
    if step.kind in ("prune_global", "prune_layer"):
        # The parent is the previous step's stripped model (its zeros are kept): one cumulative
        # step to `target` with the paper's global (or layerwise) allocation, then fine-tuning.
        allocation = "global" if step.kind == "prune_global" else "layerwise"
        pruner = global_pruning.GlobalPruner(parent, allocation=allocation, scope="conv")
        info = pruner.step(sparsity=target)
        hist = {}
        if config.finetune_epochs > 0:
            hist = _train(
                config,
                pruner.model,
                data,
                os.path.join(tdir, "train"),
                epochs,
                config.finetune_max_lr,
                extra_callbacks=pruner.callbacks(),
            )
            pruning.apply_masks(pruner.model)
        model = pruner.stripped()
        achieved = pruning.verify_sparsity(model, target)
        return model, {
            "target_sparsity": target,
            "steps": [
                {
                    "kind": step.kind,
                    "allocation": allocation,
                    "achieved_sparsity": achieved,
                    "removed": info.removed,
                    "tie_repairs": info.tie_repairs,
                    **hist,
                }
            ],
        }
    schedule = "polynomial" if step.kind == "prune_poly" else "constant"
    res = pruning.prune_and_finetune(
        parent,
        data.train_ds,
        tconf,
        target_sparsity=target,
        schedule=schedule,
        num_examples=data.train_examples,
        val_ds=data.test_ds,
        workdir=os.path.join(tdir, "train"),
    )
    return res.model, {
        "target_sparsity": target,
        "steps": [
            {
                "kind": step.kind,
                "schedule": schedule,
                "achieved_sparsity": res.achieved_sparsity,
                "begin_step": res.plan.begin_step,
                "end_step": res.plan.end_step,
                "frequency": res.plan.frequency,
                **_history_summary(res.metrics),
            }
        ],
    }


def _qat(config, parent, data, tdir, *, preserve_sparsity: bool):
    """Quantization-aware training (tfmot; pruning-preserving when the parent was pruned)."""
    from tfopt.compress import qat

    model = qat.quantize(parent, preserve_sparsity=preserve_sparsity)
    hist = {}
    if config.qat_epochs > 0:
        hist = _train(
            config,
            model,
            data,
            os.path.join(tdir, "train"),
            config.qat_epochs,
            config.finetune_max_lr,
        )
    return model, {"steps": [{"kind": "qat", "preserve_sparsity": preserve_sparsity, **hist}]}


def _ocnna(config, parent, step, data, tdir):
    """OCNNA (or L1 / random ranking) filter removal by physical surgery, then fine-tuning."""
    from tfopt.compress import ocnna
    from tfopt.train import evaluate

    criterion = OCNNA_CRITERIA[step.kind]
    images = data.scoring_images() if criterion == "ocnna" else None
    small, rep = ocnna.simplify(
        parent, images, k=step.k, scope=step.scope, criterion=criterion, seed=config.seed
    )
    before_ft = 100.0 * float(evaluate(small, data.test_ds)["accuracy"])
    hist = {}
    if config.finetune_epochs > 0:
        hist = _train(
            config,
            small,
            data,
            os.path.join(tdir, "train"),
            config.finetune_epochs,
            config.finetune_max_lr,
        )
    return small, {
        "steps": [
            {
                "kind": step.kind,
                "criterion": criterion,
                "k": step.k,
                "scope": step.scope,
                "ocnna_rpr_pct": rep.rpr,
                "ocnna_flops_ratio_pct": rep.flops_ratio,
                "params_before": rep.params_before,
                "params_after": rep.params_after,
                "filters_before": sum(lr.filters_before for lr in rep.layers),
                "filters_after": sum(lr.filters_after for lr in rep.layers),
                "skipped": dict(rep.skipped),
                "scoring_images": rep.n_images,
                "scoring_seconds": rep.scoring_seconds,
                "accuracy_before_finetune_pct": round(before_ft, 4),
                **hist,
            }
        ]
    }


def _distill(config, student, teacher, data, step, workdir, epochs, max_lr) -> dict:
    """Teacher -> student training (softened logits, temperature T, weight alpha).

    max_lr None: the baseline training recipe (stand-alone kd); else the fine-tuning one."""
    from tfopt.compress import distill

    tconf = _train_config(config, epochs=epochs, max_lr=max_lr)
    result = distill.distill(
        student,
        teacher,
        data.train_ds,
        tconf,
        val_ds=data.test_ds,
        workdir=workdir,
        temperature=step.temperature,
        alpha=step.alpha,
    )
    return _history_summary(result)


# --------------------------------------------------------------------------------------------
# conversion, evaluation, TFLite Micro, export
# --------------------------------------------------------------------------------------------


def artefact_name(trial: Trial) -> str:
    return trial.id  # '<variant>__<recipe id>', the style guide's artefact naming


def _convert_and_evaluate(config, trial, recipe, model, data, tdir, lap=lambda name: None):
    from tfopt.tflite import convert as tfl_convert
    from tfopt.tflite import evaluate as tfl_eval

    out: dict[str, dict] = {}
    int8_path = None
    is_qat = recipe.last.kind == "qat"
    for mode in config.convert_modes:
        if is_qat and mode != "int8":
            continue  # a QAT model is meant for int8; float modes repeat its parent
        entry: dict = {"status": "ok"}
        try:
            conv = tfl_convert.convert(
                model,
                mode,
                representative_data=data.representative() if mode == "int8" else None,
                num_calibration_samples=config.calibration_samples,
                normalization=(data.info.mean, data.info.std),
                labels=list(data.info.class_names) if data.info.class_names else None,
                preprocessing=data.pre,
                seed=config.seed,
                name=f"{artefact_name(trial)}.{mode}",
            )
            path = conv.save(os.path.join(tdir, f"{artefact_name(trial)}.{mode}.tflite"))
            entry.update(
                {
                    "path": str(path),
                    "bytes": conv.size_bytes,
                    "gzip_bytes": tfl_eval.gzip_size(conv.content),
                    "ops": list(conv.ops),
                    "input_scale": conv.input_scale,
                    "input_zero_point": conv.input_zero_point,
                }
            )
            if config.eval_tflite or config.eval_latency:
                rep = tfl_eval.evaluate_tflite(
                    conv.content,
                    data.x_test if config.eval_tflite else None,
                    data.y_test if config.eval_tflite else None,
                    latency_runs=config.latency_runs if config.eval_latency else 0,
                    name=entry["path"],
                )
                if rep.accuracy is not None:
                    entry["accuracy_pct"] = round(100.0 * rep.accuracy, 4)
                for key, lat in (
                    ("latency_1t", rep.latency_1_thread),
                    ("latency_all", rep.latency_all_threads),
                ):
                    if lat:
                        entry[f"{key}_median_ms"] = round(lat["median_ms"], 4)
                        entry[f"{key}_p90_ms"] = round(lat["p90_ms"], 4)
                        entry[f"{key}_threads"] = lat["num_threads"]
            if mode == "int8":
                int8_path = entry["path"]
        except Exception as err:  # a conversion failure is recorded per mode; the trial goes on
            lines = str(err).strip().splitlines()
            entry = {
                "status": "failed",
                "error": f"{type(err).__name__}: {lines[0] if lines else ''}"[:500],
            }
        out[mode] = entry
        lap(f"tflite_{mode}_s")
    micro = {"status": "skipped"}
    if config.eval_micro:
        micro = (
            _micro(config, int8_path, data)
            if int8_path
            else {"status": "skipped", "error": "no int8 model"}
        )
    lap("micro_s")
    export = None
    if config.export and int8_path:
        export = _export(config, trial, int8_path, micro)
    lap("export_s")
    return out, micro, export


def _micro(config, int8_path, data) -> dict:
    """Run the int8 model on TensorFlow Lite Micro: arena bytes, status, max diff vs LiteRT."""
    from tfopt.tflite import micro as tflm

    reason = tflm.micro_unavailable_reason()
    if reason:
        return {"status": "unavailable", "error": reason}
    rep = tflm.run_micro(
        int8_path, data.x_test[:10], num_samples=10, compare=True, seed=config.seed
    )
    return {
        "status": "ok" if rep.ok else "failed",
        "arena_bytes": rep.arena_bytes,
        "flash_bytes": rep.flash_bytes,
        "max_diff_lsb": rep.max_diff_lsb,
        "num_compared": rep.num_compared,
        "unsupported_ops": list(rep.unsupported_ops),
        "error": rep.error,
    }


def _export(config, trial, int8_path, micro) -> str | None:
    """Firmware export (.tflite, .cc/.h, op resolver, .json) under WORKDIR/tflite_models/."""
    from tfopt.tflite import export as tfl_export

    out_dir = os.path.join(config.workdir, "tflite_models", artefact_name(trial))
    tfl_export.export_model(
        int8_path,
        out_dir,
        name=artefact_name(trial),
        micro=config.eval_micro and micro.get("status") == "ok",
    )
    return out_dir


# --------------------------------------------------------------------------------------------


def versions() -> dict:
    """Versions of tfopt and the libraries a result depends on."""
    import importlib.metadata as md

    out = {}
    for name, dist in (
        ("tfopt", "tfopt"),
        ("tensorflow", "tensorflow"),
        ("tf_keras", "tf-keras"),
        ("tfmot", "tensorflow-model-optimization"),
        ("ai_edge_litert", "ai-edge-litert"),
        ("tflite_micro", "tflite-micro"),
    ):
        try:
            out[name] = md.version(dist)
        except md.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
