"""One trial of the ablation grid: (variant, recipe) -> model -> metrics -> TFLite -> one row.

`TrialRunner.run` composes the pieces: the data (`trial_data.DataCache`, an explicit object the
runner owns), the model (the last recipe step, `steps.STEPS`, applied to the parent trial's
model or to the untrained variant, cached by `modelio`), the Keras measurements, then the
artefacts (`artefacts.write_artefacts`), into a `TrialResult`. `run_safe` turns a failure into
the failed row. Imports TensorFlow (the driver does not, until the first trial runs).

Units in the row: see tfopt.core.results.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
import traceback

from tfopt.core import env
from tfopt.core.recipe import Recipe
from tfopt.core.results import TrialResult, failure_message
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial


class TrialRunner:
    """Runs trials in this process, sharing one `DataCache` between them."""

    def __init__(self, cache=None):
        self.cache = cache

    def run_safe(self, config: ExperimentConfig, trial: Trial, deps: dict) -> TrialResult:
        """`run`, but a failure is returned as a row (status 'failed', error, traceback file)."""
        t0, started = time.monotonic(), now()
        try:
            return self.run(config, trial, deps)
        except Exception as err:  # one failing trial must not stop the grid
            tdir = trial_dir(config, trial)
            os.makedirs(tdir, exist_ok=True)
            tb_path = os.path.join(tdir, "traceback.txt")
            with open(tb_path, "w", encoding="utf-8") as f:
                f.write(traceback.format_exc())
            _set_aside_training(trial, tdir)
            return trial.failed(
                failure_message(err),
                traceback_path=tb_path,
                started_at=started,
                finished_at=now(),
                wall_time_s=round(time.monotonic() - t0, 3),
                versions=versions(),
                config_fingerprint=config.fingerprint(),
            )

    def run(self, config: ExperimentConfig, trial: Trial, deps: dict) -> TrialResult:
        """Run one trial and return its row (see docs/ablation.md for every key)."""
        env.import_tensorflow()  # quietly, before anything below loads it
        from tfopt.experiments import artefacts, measure
        from tfopt.experiments.trial_data import DataCache

        fingerprint = config.fingerprint()  # the run's, not the per-seed copy's
        config = config.for_seed(trial.seed)

        t0, started = time.monotonic(), now()
        tdir = trial_dir(config, trial)
        os.makedirs(tdir, exist_ok=True)
        timer = _Laps()
        if self.cache is None:
            self.cache = DataCache()
        data = self.cache.get(config)
        timer.lap("data_s")
        model, records = self._model(config, trial, data, tdir)
        timer.lap("model_s")
        keras_part = measure.keras_measurements(config, trial, model, data, tdir, deps)
        timer.lap("evaluate_s")
        tflite, micro, export = artefacts.write_artefacts(
            config, trial, model, data, tdir, timer.lap
        )
        train_dir = os.path.join(tdir, "train")
        return TrialResult(
            status="ok",
            trial_id=trial.id,
            variant=trial.variant,
            recipe=trial.recipe.spec(),
            requested=trial.requested,
            recipe_steps=trial.recipe.kinds,
            parent_trial=trial.parent,
            baseline_trial=trial.baseline,
            teacher_trial=trial.teacher,
            seed=trial.seed,
            control_trial=trial.control,
            reference_variant=config.reference,
            config=config.trial_settings(),
            config_fingerprint=fingerprint,
            target_sparsity=_target_sparsity(trial.recipe),
            steps=records,
            tflite=tflite,
            micro=micro,
            export_dir=export,
            tensorboard_dir=train_dir if os.path.isdir(train_dir) else None,
            started_at=started,
            finished_at=now(),
            wall_time_s=round(time.monotonic() - t0, 3),
            timings=timer.timings,
            versions=versions(),
            host=platform.node(),
            **keras_part,
        )

    def _model(self, config, trial, data, tdir):
        """The trial's model and step records: its recipe's last step on its starting model."""
        from tfopt._keras import keras
        from tfopt.experiments import modelio
        from tfopt.experiments.steps import STEPS, StepContext
        from tfopt.models import build_from_spec

        ctx = StepContext(
            config, trial, data, tdir, lambda tid: modelio.load_trial_model(config.workdir, tid)
        )
        step = trial.recipe.last

        def produce():
            keras.utils.set_random_seed(config.seed)  # same init/dropout on a rerun or resume
            if trial.parent is None:  # a baseline, or a stand-alone kd: the untrained variant
                model = build_from_spec(
                    trial.variant,
                    num_classes=data.info.num_classes,
                    input_shape=tuple(data.info.image_shape),
                    width_multiplier=config.width_of(trial.variant),
                )
            else:
                model = ctx.load_trial_model(trial.parent)
            model, record = STEPS[step.kind].run(step, model, ctx)
            return model, (record,)

        return modelio.cached_model(tdir, produce, is_qat=step.kind == "qat")


def _target_sparsity(recipe: Recipe) -> float | None:
    target = getattr(recipe.last, "target", None)
    return float(target) if target is not None else None


def _set_aside_training(trial: Trial, tdir: str) -> None:
    """A retry of a failed compression trial starts its fine-tuning afresh (its checkpoint may
    be what failed); a baseline keeps its checkpoints, which are worth hours."""
    train_dir = os.path.join(tdir, "train")
    if trial.parent is not None and os.path.isdir(train_dir):
        n = 1
        while os.path.exists(f"{train_dir}.failed-{n}"):
            n += 1
        os.replace(train_dir, f"{train_dir}.failed-{n}")


class _Laps:
    """Seconds between successive `lap(name)` calls, by name: wall time as `name`, this
    process's CPU time (user + sys, all threads) as `cpu_<name>`, and the total as `cpu_s`."""

    def __init__(self):
        self.timings: dict[str, float] = {}
        self._mark = time.monotonic()
        self._cpu0 = self._cpu_mark = time.process_time()

    def lap(self, name: str) -> None:
        t, c = time.monotonic(), time.process_time()
        self.timings[name] = round(t - self._mark, 3)
        self.timings[f"cpu_{name}"] = round(c - self._cpu_mark, 3)
        self.timings["cpu_s"] = round(c - self._cpu0, 3)
        self._mark, self._cpu_mark = t, c


def trial_dir(config: ExperimentConfig, trial: Trial) -> str:
    return os.path.join(config.workdir, "trials", trial.id)


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


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
