"""Saving and loading the Keras model a trial produced, and the per-trial model cache.

A trial's model is saved as `trials/<id>/model.keras` (Keras' native format) next to
`model_done.json` (its step records), so a killed trial resumes after its training. A QAT
model is the exception: tfmot's quantize wrappers do not reload from `.keras` (the
QuantizeLayer's variables come back 3 of 5), so it is saved as `model.h5`. Models of runs made
before this change (`model.h5`) still load. Imports TensorFlow.
"""

from __future__ import annotations

import json
import os
from typing import Callable

from tfopt import modelfile
from tfopt._keras import keras
from tfopt.compress import qat
from tfopt.core.step_records import StepRecord, step_record_from_dict
from tfopt.models import list_variants

MODEL_FILE = "model.keras"
HDF5_MODEL_FILE = "model.h5"  # QAT models, and every model of runs made before .keras
MODEL_DONE = "model_done.json"


def load_model(path: str):
    """A saved tfopt model (any zoo layer, QAT wrappers), not compiled. One holding a Lambda
    layer (code run on load; tfopt never makes one) is refused: `modelfile.UnsafeModelError`."""
    modelfile.check_safe(path)
    list_variants()  # imports every family module, registering tfopt's serializable layers
    with qat.quantize_scope():  # QAT wrappers and tfopt's QuantizeConfigs
        return keras.models.load_model(path, compile=False)


def saved_model_path(trial_dir: str) -> str | None:
    """The trial's saved model file, or None."""
    for name in (MODEL_FILE, HDF5_MODEL_FILE):
        path = os.path.join(trial_dir, name)
        if os.path.exists(path):
            return path
    return None


def load_trial_model(workdir: str, trial_id: str):
    """The Keras model a finished trial produced (for children, notebooks, re-evaluation)."""
    tdir = os.path.join(workdir, "trials", trial_id)
    path = saved_model_path(tdir)
    if path is None:
        raise ValueError(f"trial {trial_id!r} has no saved model in {tdir!r}")
    return load_model(path)


def save_model(model, trial_dir: str, *, is_qat: bool) -> str:
    """Saves `model` in `trial_dir`; returns the path (`model.keras`, or `model.h5` for QAT)."""
    if is_qat:
        # HDF5 on purpose: tfmot 0.8.1's QuantizeLayer reloads from .keras with 3 of its 5
        # variables ("expected 5 variables, but received 3"; checked with tf-keras 2.21), so a
        # QAT trial could not resume from its cache. Legacy .h5 reloads all of them.
        path = os.path.join(trial_dir, HDF5_MODEL_FILE)
        model.save(path, include_optimizer=False)
    else:
        path = os.path.join(trial_dir, MODEL_FILE)
        model.save(path)
    return path


def cached_model(
    trial_dir: str, produce: Callable[[], tuple], *, is_qat: bool
) -> tuple[object, tuple[StepRecord, ...]]:
    """The trial's (model, step records): loaded if a finished one is saved, else produced
    by `produce()` and saved. An unreadable cache is rebuilt, never trusted."""
    done = os.path.join(trial_dir, MODEL_DONE)
    path = saved_model_path(trial_dir)
    if path and os.path.exists(done):
        try:
            model = load_model(path)
            with open(done, encoding="utf-8") as f:
                steps = json.load(f).get("steps", [])
            return model, tuple(step_record_from_dict(s) for s in steps)
        except Exception:  # a half-written model file after a kill
            os.remove(done)
    model, records = produce()
    save_model(model, trial_dir, is_qat=is_qat)
    with open(done + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"steps": [r.to_dict() for r in records]}, f, default=str)
    os.replace(done + ".tmp", done)
    return model, records
