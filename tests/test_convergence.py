"""The stop rule: early stopping on a held-out split, restore-best, plateau fine-tuning, resume,
the held-out split itself and the convergence summary."""

import json

import numpy as np
import pytest
import tensorflow as tf

import tfopt.data as data
import tfopt.train as train
from tfopt._keras import keras, layers
from tfopt.train.holdout import holdout_size
from tests.test_train import _Interrupt

K = 4


def _problem(seed=0, n=256):
    """Separable 4-class points. val_ds has the labels shifted by one, so the better the model
    learns the train labels, the worse its val accuracy: the best val epoch is an early one."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    x = (np.eye(K)[y] * 3 + rng.normal(0, 1, (n, K))).astype(np.float32)
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    val_ds = tf.data.Dataset.from_tensor_slices((x, (y + 1) % K)).batch(64)
    return train_ds, val_ds


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((K,))
    return keras.Model(inputs, layers.Dense(K)(layers.Dense(8, activation="relu")(inputs)))


def test_early_stopping_on_val_accuracy_restores_the_best_epoch():
    train_ds, val_ds = _problem()
    model = _model()
    config = train.TrainConfig(epochs=20, optimizer="adam", lr=0.05, verbose=0,
                               early_stopping_patience=2, monitor="val_accuracy")
    out = train.fit(model, train_ds, config, val_ds=val_ds)
    val = out["history"]["val_accuracy"]
    assert out["stopped_early"] and out["epochs"] < 20
    best = int(np.argmax(val))                               # first epoch of the maximum
    assert out["best_epoch"] == best + 1 and out["restored_best"]
    assert out["epochs"] == out["best_epoch"] + 2            # patience 2 after the best
    assert max(val) > val[-1]                                # the last epoch was worse ...
    # ... and the model now holds the best epoch's weights, not the last epoch's
    assert train.evaluate(model, val_ds)["accuracy"] == pytest.approx(val[best], abs=1e-6)


def test_without_restore_the_last_epoch_is_kept():
    train_ds, val_ds = _problem()
    model = _model()
    config = train.TrainConfig(epochs=20, optimizer="adam", lr=0.05, verbose=0,
                               early_stopping_patience=2, monitor="val_accuracy",
                               restore_best_weights=False)
    out = train.fit(model, train_ds, config, val_ds=val_ds)
    assert not out["restored_best"]
    assert train.evaluate(model, val_ds)["accuracy"] == pytest.approx(
        out["history"]["val_accuracy"][-1], abs=1e-6)


def test_a_val_monitor_without_val_ds_is_a_clear_error():
    train_ds, _ = _problem()
    config = train.TrainConfig(epochs=2, monitor="val_accuracy", early_stopping_patience=1)
    with pytest.raises(ValueError, match=r"monitor='val_accuracy' needs val_ds .*never the test"):
        train.fit(_model(), train_ds, config)
    with pytest.raises(ValueError, match=r"monitor='val_acc'; expected one of"):
        train.TrainConfig(epochs=2, monitor="val_acc")


def test_onecycle_without_patience_never_stops_early():
    train_ds, val_ds = _problem()
    out = train.fit(_model(), train_ds, train.TrainConfig(epochs=3, verbose=0,
                                                          monitor="val_accuracy"), val_ds=val_ds)
    assert out["epochs"] == 3 and not out["stopped_early"] and out["best_epoch"] is None
    assert train.TrainConfig(epochs=1, optimizer="sgd_plateau").stopping_patience == 10


def test_plateau_finetune_is_the_papers_recipe_and_drops_the_lr():
    config = train.plateau_finetune(50, 4, verbose=0)
    assert (config.epochs, config.optimizer, config.lr, config.momentum) == (
        50, "sgd_plateau", 1e-4, 0.9)
    assert (config.weight_decay, config.plateau_factor, config.min_lr) == (5e-4, 0.1, 1e-5)
    assert (config.early_stopping_patience, config.plateau_patience) == (4, 2)   # 4 // 2
    assert config.monitor == "val_accuracy" and config.restore_best_weights
    with pytest.raises(ValueError, match=r"patience=-1; expected an int >= 0"):
        train.plateau_finetune(10, -1)

    train_ds, val_ds = _problem()
    model = _model()
    out = train.fit(model, train_ds, train.plateau_finetune(10, 2, lr=0.05, verbose=0),
                    val_ds=val_ds)
    lrs = out["history"]["lr"]
    assert lrs[0] == pytest.approx(0.05)
    assert min(lrs) == pytest.approx(0.005)   # one plateau (patience 1) -> 0.05 * 0.1
    assert out["stopped_early"] and out["epochs"] < 10


def test_resume_keeps_the_best_epoch_and_the_stop_counters(tmp_path):
    train_ds, val_ds = _problem()
    config = train.TrainConfig(epochs=20, optimizer="adam", lr=0.05, verbose=0,
                               early_stopping_patience=3, monitor="val_accuracy")
    full_model = _model()
    full = train.fit(full_model, train_ds, config, val_ds=val_ds, workdir=str(tmp_path / "a"))
    assert full["stopped_early"] and full["best_epoch"] < full["epochs"]
    stop_at = full["epochs"] - 1                     # killed after the best epoch, before the end
    with pytest.raises(KeyboardInterrupt):
        train.fit(_model(), train_ds, config, val_ds=val_ds, workdir=str(tmp_path / "b"),
                  extra_callbacks=[_Interrupt(stop_at)])
    resumed_model = _model(seed=7)                   # fresh weights: all state comes from disk
    resumed = train.fit(resumed_model, train_ds, config, val_ds=val_ds,
                        workdir=str(tmp_path / "b"))
    assert resumed["initial_epoch"] == stop_at
    assert (resumed["epochs"], resumed["best_epoch"]) == (full["epochs"], full["best_epoch"])
    for a, b in zip(full_model.weights, resumed_model.weights):   # both hold the best epoch
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.name)
    saved = json.loads((tmp_path / "b" / "history.json").read_text())
    assert saved["val_accuracy"] == pytest.approx(full["history"]["val_accuracy"])


def test_holdout_split_is_the_tail_of_the_train_split_and_disjoint():
    source = "synthetic:8x8x3:4:96"
    train_ds, val_ds, info = train.holdout_split(source, val_fraction=0.25, batch_size=16)
    assert holdout_size(96, 0.25) == 24 and info.num_examples == 96 - 24
    x_all, y_all, _ = data.load_arrays(source, "train")
    xv = np.concatenate([x for x, _ in val_ds])
    yv = np.concatenate([y for _, y in val_ds])
    np.testing.assert_array_equal(xv, x_all[72:])              # images 72..95 held out
    np.testing.assert_array_equal(yv, y_all[72:])
    seen = sum(int(y.shape[0]) for _, y in train_ds.dataset)
    assert seen == 72 and train_ds.num_examples == 72 and isinstance(train_ds, data.EpochData)
    assert sum(int(y.shape[0]) for _, y in val_ds) == 24


def test_holdout_split_rejects_bad_fractions_and_missing_classes():
    with pytest.raises(ValueError, match=r"val_fraction=1.5; expected a number in \(0, 1\)"):
        train.holdout_split("synthetic:8x8x3:4:96", val_fraction=1.5)
    with pytest.raises(ValueError, match=r"hold no image of class"):   # 1 image, 4 classes
        train.holdout_split("synthetic:8x8x3:4:96", val_fraction=0.01)


def test_convergence_flags_a_run_still_improving():
    # last 3 epochs best 0.90, before them best 0.85: +5 pp -> not converged
    assert train.convergence([0.70, 0.80, 0.85, 0.87, 0.89, 0.90]) == (
        False, pytest.approx(5.0))
    # a run stopped by patience 3: last 3 epochs best 0.89 < 0.90 before -> -1 pp, converged
    assert train.convergence([0.80, 0.90, 0.89, 0.88, 0.89]) == (True, pytest.approx(-1.0))
    # a gain of 0.3 pp is within the 0.5 pp tolerance
    converged, gain = train.convergence({"history": {"val_accuracy": [0.5, 0.9, 0.9, 0.9, 0.903],
                                                     "accuracy": [0.1] * 5}})
    assert converged and gain == pytest.approx(0.3)
    # too short to tell (2 epochs <= k = 3): not converged, gain over the run = +10 pp
    assert train.convergence({"accuracy": [0.8, 0.9]}) == (False, pytest.approx(10.0))
    with pytest.raises(ValueError, match=r"key='loss'; expected an accuracy"):
        train.convergence({"loss": [1.0, 0.5]}, key="loss")


def _cli(run_cli, *args):
    from tfopt.train import cli

    return run_cli(cli.main, *args)


def test_cli_refuses_early_stopping_without_a_held_out_split(tmp_path, run_cli):
    proc = _cli(run_cli, "--model=tiny_cnn", "--dataset=synthetic", "--epochs=2",
                "--early_stopping_patience=2", f"--workdir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --early_stopping_patience=2: expected to come with --val_fraction > 0 (early "
        "stopping watches a held-out split, never the test split)")


@pytest.mark.slow
def test_cli_with_a_held_out_split_writes_the_stop_rule_outcome(tmp_path, run_cli):
    workdir = tmp_path / "run"
    proc = _cli(run_cli, "--model=tiny_cnn", "--dataset=synthetic", "--epochs=2",
                "--val_fraction=1", f"--workdir={workdir}")
    assert proc.returncode == 2 and "--val_fraction=1.0: expected a number in [0, 1)" in (
        proc.stderr)
    proc = _cli(run_cli, "--model=tiny_cnn", "--dataset=synthetic:8x8x3:4:96",
                "--width_multiplier=0.25", "--batch_size=16", "--verbose=0", "--epochs=4",
                "--val_fraction=0.25", "--early_stopping_patience=1", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["train_examples"] == 72 and metrics["val_examples"] == 24
    assert 1 <= metrics["best_epoch"] <= metrics["epochs"] <= 4
    assert metrics["convergence_k"] == 1 and isinstance(metrics["converged"], bool)
    history = json.loads((workdir / "history.json").read_text())
    assert metrics["best_val_accuracy"] == pytest.approx(max(history["val_accuracy"]))
    assert (workdir / "best").is_dir()


# ---- the stop rule inside the ablation's trials (issue #14) --------------------------------


def _ctx(tmp_path, val_ds, **kw):
    from types import SimpleNamespace

    from tfopt.experiments.config import ExperimentConfig
    from tfopt.experiments.grid import plan
    from tfopt.experiments.steps import StepContext

    config = ExperimentConfig(variants=("tiny_cnn",), recipes=("none",), workdir=str(tmp_path),
                              dataset="synthetic", train_epochs=10, train_patience=3,
                              finetune_epochs=4, finetune_patience=2, verbose=0, **kw)
    train_ds, _ = _problem()
    fake = SimpleNamespace(train_ds=train_ds, val_ds=val_ds, test_ds="THE TEST SPLIT")
    return StepContext(config, plan(config)[0], fake, str(tmp_path), lambda tid: None)


def test_trials_stop_early_on_the_held_out_split_and_fine_tune_with_the_plateau_recipe(tmp_path):
    _, val_ds = _problem()
    ctx = _ctx(tmp_path, val_ds)
    base = ctx.train_config(epochs=10)
    assert base.epochs == 10 and base.early_stopping_patience == 3
    assert base.monitor == "val_accuracy" and base.restore_best_weights
    ft = ctx.finetune_config()
    assert (ft.epochs, ft.early_stopping_patience, ft.plateau_patience) == (4, 2, 1)
    assert ft.optimizer == "sgd_plateau" and ft.monitor == "val_accuracy"
    assert ctx.finetune_config(2).epochs == 2  # qat's own cap, same recipe


def test_trial_fits_watch_the_held_out_split_never_the_test_split(tmp_path, monkeypatch):
    import tfopt.experiments.steps.base as base

    _, val_ds = _problem()
    seen = []
    real_fit = base.fit

    def spy(model, train_ds, config, *, val_ds=None, **kw):
        seen.append(val_ds)
        return real_fit(model, train_ds, config, val_ds=val_ds, **kw)

    monkeypatch.setattr(base, "fit", spy)
    ctx = _ctx(tmp_path, val_ds)
    model = _model()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True),
                  metrics=["accuracy"])
    out = ctx.train(model, 10)
    assert seen == [val_ds]
    # the shifted-label val split peaks early: early stopping ends the 10-epoch cap, restores
    # the best epoch, and the run counts as converged (nothing gained in the last k epochs)
    assert out["stopped_early"] and out["epochs"] < 10 and out["best_epoch"] < out["epochs"]
    assert out["converged"] is True and out["convergence_k"] == 3
    ft = _ctx(tmp_path / "next_trial", val_ds).finetune(model)  # each trial has its own folder
    assert seen[-1] is val_ds and 1 <= ft["finetune_epochs_run"] <= 4


def test_finetune_max_lr_is_the_peak_when_fine_tuning_one_cycle(tmp_path):
    _, val_ds = _problem()
    ctx = _ctx(tmp_path, val_ds, finetune_optimizer="sgd_onecycle", finetune_max_lr=0.03)
    ft = ctx.finetune_config()
    assert ft.optimizer == "sgd_onecycle" and ft.learning_rate == 0.03
    assert _ctx(tmp_path, val_ds, finetune_max_lr=0.03).finetune_config().learning_rate == 0.03


def test_without_a_held_out_split_nothing_stops_early(tmp_path):
    ctx = _ctx(tmp_path, None, val_fraction=0)
    assert not ctx.train_config(epochs=10).early_stopping_patience
    assert ctx.finetune_config().monitor == "loss"


def test_finetune_limit_caps_every_fine_tuning_epoch_not_the_baseline(tmp_path):
    from types import SimpleNamespace

    _, val_ds = _problem()
    ctx = _ctx(tmp_path, val_ds, finetune_limit=300, train_batch_size=128)
    ctx.data = SimpleNamespace(**vars(ctx.data), train_examples=1000)
    assert ctx.finetune_config().steps_per_epoch == 3  # ceil(300 / 128) batches
    assert ctx.train_config(epochs=10).steps_per_epoch is None  # the baseline sees every image
    assert ctx.config.finetune_examples(1000) == 384
    assert ctx.config.finetune_steps(200) is None  # the limit is above the split: a full epoch
    with pytest.raises(ValueError, match="finetune_limit=0"):
        _ctx(tmp_path, val_ds, finetune_limit=0)
