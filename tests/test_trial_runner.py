"""The trial runner on a synthetic dataset (tiny_cnn, 8x8 images): a baseline and a pruning
step built on it, through the same code path as the driver, without the grid around it."""

import json
import os

import pytest

from tfopt.core.results import TrialResult
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import plan
from tfopt.experiments.runner import TrialRunner
from tfopt.experiments.trial_data import DataCache


def test_runner_trains_prunes_converts_and_exports_once(tmp_path):
    config = ExperimentConfig(
        variants=("tiny_cnn",),
        recipes=("prune_global:0.5",),
        workdir=str(tmp_path),
        dataset="synthetic:8x8x3:4:64",
        width_multiplier=0.25,
        train_epochs=1,
        train_batch_size=32,
        train_augment=False,
        finetune_epochs=0,  # the pruning step itself; fine-tuning is fit() again
        val_fraction=0.34,  # 22 held-out images, every class among them
        ocnna_images=8,
        calibration_samples=8,
        convert_modes=("int8",),
        eval_latency=False,
        eval_micro=False,
        verbose=0,
    )
    base_trial, pruned_trial = plan(config)
    cache = DataCache()
    runner = TrialRunner(cache)
    base = runner.run(config, base_trial, {})
    assert base.ok and base.recipe_steps == ("none",) and base.steps[0].kind == "train"
    assert base.params > 0 and base.flops > 0 and 0 <= base.keras_accuracy_pct <= 100
    int8 = base.int8
    assert int8.ok and int8.bytes > 0 and int8.accuracy_pct is not None
    # int8 is written once, into the firmware export; its manifest holds the measured accuracy
    assert int8.path == os.path.join(base.export_dir, f"{base_trial.id}.tflite")
    assert os.path.getsize(int8.path) == int8.bytes
    # inspect is stored per trial (cheap: no latency profile, no second TFLM run)
    seen = int8.inspect
    assert sum(seen["bytes_by_category"].values()) == int8.bytes
    assert seen["num_ops"] == sum(seen["op_counts"].values()) and seen["int8_coverage"] == 1.0
    assert 0 < len(seen["peak_tensors"]) <= 5 and "latency_by_op" not in seen
    assert not any(t["name"].startswith("tensor ") for t in seen["peak_tensors"])  # sidecar names
    assert not os.path.exists(os.path.join(tmp_path, "trials", base_trial.id,
                                           f"{base_trial.id}.int8.tflite"))
    with open(os.path.join(base.export_dir, f"{base_trial.id}.json")) as f:
        assert json.load(f)["accuracy"] * 100 == pytest.approx(int8.accuracy_pct)
    assert os.path.exists(os.path.join(tmp_path, "trials", base_trial.id, "model.keras"))

    data = cache.get(config)
    pruned = runner.run(config, pruned_trial, {base_trial.id: base})
    assert cache.get(config) is data  # loaded once for both trials
    assert pruned.ok and pruned.parent_trial == base_trial.id
    assert abs(pruned.conv_sparsity - 0.5) < 0.05 and pruned.target_sparsity == 0.5
    assert pruned.nonzero_params < base.nonzero_params
    assert pruned.steps[0].values["allocation"] == "global"
    # the row survives its JSON line
    assert TrialResult.from_dict(json.loads(pruned.to_json())) == pruned
    # a second run of the same trial reuses the saved model (resume after training)
    again = runner.run(config, pruned_trial, {base_trial.id: base})
    assert again.steps == pruned.steps and again.params == pruned.params


def test_a_failing_trial_becomes_the_failed_row(tmp_path):
    config = ExperimentConfig(
        variants=("tiny_cnn",), recipes=("qat",), workdir=str(tmp_path),
        dataset="synthetic:8x8x3:4:64", train_epochs=1, verbose=0, eval_micro=False,
        val_fraction=0.34,
    )
    _, qat_trial, _control = plan(config)
    row = TrialRunner(DataCache()).run_safe(config, qat_trial, {})  # parent never trained
    assert row.status == "failed" and "tiny_cnn__none" in row.error
    assert os.path.exists(row.traceback_path) and row.config_fingerprint


def test_data_cache_keeps_the_last_two_data_configs(tmp_path, monkeypatch):
    """A `processes` worker alternates between seeds: each seed's data is loaded once."""
    from tfopt.experiments import trial_data

    monkeypatch.setattr(trial_data, "TrialData", lambda config: object())
    config = ExperimentConfig(variants=("tiny_cnn",), recipes=("none",), workdir=str(tmp_path),
                              dataset="synthetic:8x8x3:4:64", seeds=(0, 1, 2))
    s0, s1, s2 = (config.for_seed(s) for s in (0, 1, 2))
    cache = DataCache()
    d0, d1 = cache.get(s0), cache.get(s1)
    assert d0 is not d1 and cache.get(s0) is d0 and cache.get(s1) is d1 and cache.loads == 2
    cache.get(s2)  # a third seed evicts the least recently used one (seed 0)
    assert cache.get(s1) is d1 and cache.loads == 3
    assert cache.get(s0) is not d0 and cache.loads == 4
