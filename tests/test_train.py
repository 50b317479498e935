"""tfopt.train: one-cycle schedule, coupled weight decay, fit/evaluate, exact resume, CLI."""

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

import tfopt.data as data
import tfopt.train as train
from tfopt._keras import keras, layers
from tfopt.data import idx
from tfopt.models import build_model
from tfopt.train.optimizers import CoupledSGD
from tfopt.train.schedule import one_cycle

TINY = "synthetic:8x8x3:4:96"


def _torch_one_cycle(step, total, max_lr, pct=0.1, div=25.0, final_div=1e4, lo=0.85, hi=0.95):
    """torch.optim.lr_scheduler.OneCycleLR.get_lr (cos, two phases), transcribed."""
    initial, minimum = max_lr / div, max_lr / div / final_div
    phases = [(pct * total - 1, initial, max_lr, hi, lo), (total - 1, max_lr, minimum, lo, hi)]
    start = 0
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            p = (step - start) / (end - start)
            cos = lambda a, b: b + (a - b) / 2.0 * (math.cos(math.pi * p) + 1)  # noqa: E731
            return cos(lr0, lr1), cos(m0, m1)
        start = end


def test_one_cycle_lr_and_momentum_at_key_steps():
    total, max_lr = 1000, 0.0125
    at = lambda s: [float(v) for v in one_cycle(s, total_steps=total, max_lr=max_lr)]  # noqa
    lr, mom = at(0)                       # start: max_lr / div_factor, max momentum
    assert lr == pytest.approx(0.0125 / 25, rel=1e-6) and mom == pytest.approx(0.95)
    lr, mom = at(99)                      # end of the 10% warm-up: peak lr, base momentum
    assert lr == pytest.approx(0.0125, rel=1e-6) and mom == pytest.approx(0.85)
    lr, mom = at(549)                     # half-way down the cosine: mid lr, mid momentum
    assert lr == pytest.approx((0.0125 + 0.0125 / 25 / 1e4) / 2, rel=1e-5)
    assert mom == pytest.approx(0.90, rel=1e-6)
    lr, mom = at(999)                     # last step: max_lr / 25 / 1e4 = 5e-8, momentum back up
    assert lr == pytest.approx(5e-8, rel=1e-4) and mom == pytest.approx(0.95)
    assert at(5000) == at(999)            # held after the end
    for step in (1, 37, 98, 100, 101, 400, 998):   # every phase matches PyTorch's formula
        assert at(step) == pytest.approx(_torch_one_cycle(step, total, max_lr), rel=1e-5)


def test_coupled_sgd_matches_pytorch_update_rule():
    w0, lr, mom, wd = np.array([1.0, -2.0], np.float32), 0.1, 0.9, 0.01
    var = tf.Variable(w0)
    opt = CoupledSGD(lr, mom, coupled_weight_decay=wd)
    grads = [np.array([0.5, 0.25], np.float32), np.array([-1.0, 2.0], np.float32)]
    w, buf = w0.astype(np.float64), np.zeros(2)
    for g in grads:                       # torch.optim.SGD(lr, momentum, weight_decay)
        d = g + wd * w
        buf = mom * buf + d
        w = w - lr * buf
        opt.apply_gradients([(tf.constant(g), var)])
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-6)


def test_weight_decay_reaches_every_trainable_weight():
    model = build_model("tiny_cnn", num_classes=3, input_shape=(8, 8, 3), width_multiplier=0.25)
    before = [v.numpy() for v in model.trainable_variables]
    opt = CoupledSGD(0.5, 0.9, coupled_weight_decay=0.1)
    zeros = [tf.zeros_like(v) for v in model.trainable_variables]   # only the decay acts
    opt.apply_gradients(zip(zeros, model.trainable_variables))
    names = {v.name.split("/")[-1].split(":")[0] for v in model.trainable_variables}
    assert {"kernel", "gamma", "beta", "bias"} <= names          # BN and biases included
    for v, b in zip(model.trainable_variables, before):
        np.testing.assert_allclose(v.numpy(), b * (1 - 0.5 * 0.1), rtol=1e-6, atol=1e-7)


def test_train_config_errors_name_field_value_and_allowed():
    with pytest.raises(ValueError, match=r"epochs=0; expected an int >= 1"):
        train.TrainConfig(epochs=0)
    with pytest.raises(ValueError, match=r"optimizer='adm'.*did you mean 'adam'"):
        train.TrainConfig(epochs=1, optimizer="adm")
    assert train.TrainConfig(epochs=1).learning_rate == 0.0125
    assert train.TrainConfig(epochs=1, optimizer="adam").learning_rate == 1e-3


def test_evaluate_counts_examples_not_batches():
    inputs = keras.Input((3,))
    logits = layers.Dense(3, use_bias=False, kernel_initializer="identity")(inputs)
    model = keras.Model(inputs, logits)
    x = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]] * 10.0   # predicts argmax of the input
    y = np.array([0, 1, 0, 0, 2])                              # 3 of 5 right
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)  # batches of 4 and 1
    out = train.evaluate(model, ds)
    expected_loss = np.mean([-np.log(np.exp(r[t]) / np.exp(r).sum()) for r, t in zip(x, y)])
    assert out["accuracy"] == pytest.approx(0.6) and out["num_examples"] == 5
    assert out["loss"] == pytest.approx(expected_loss, rel=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd_plateau", "adam"])
def test_alternative_optimizers_train_and_log(optimizer, tmp_path):
    ds, info = data.load(TINY, "train", batch_size=32)
    model = build_model("tiny_cnn", num_classes=4, input_shape=info.image_shape,
                        width_multiplier=0.25)
    out = train.fit(model, ds, train.TrainConfig(epochs=2, optimizer=optimizer, verbose=0),
                    workdir=str(tmp_path))
    assert out["epochs"] == 2 and len(out["history"]["loss"]) == 2
    assert out["history"]["lr"][0] == pytest.approx(train.TrainConfig(
        epochs=1, optimizer=optimizer).learning_rate)
    assert np.isfinite(out["loss"]) and out["images_per_s"] > 0
    assert os.listdir(tmp_path / "logs")                      # TensorBoard event files
    state = json.loads((tmp_path / "history.json").read_text())
    assert len(state["loss"]) == 2


@pytest.mark.slow
def test_fit_fine_tunes_a_pruned_model_with_extra_callbacks():
    import tensorflow_model_optimization as tfmot
    ds, info = data.load(TINY, "train", batch_size=32)
    base = build_model("tiny_cnn", num_classes=4, input_shape=info.image_shape,
                       width_multiplier=0.25)
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(base, pruning_schedule=schedule)
    out = train.fit(pruned, ds, train.TrainConfig(epochs=1, optimizer="sgd", lr=0.01, verbose=0),
                    extra_callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    assert out["epochs"] == 1
    kernel = tfmot.sparsity.keras.strip_pruning(pruned).get_layer("s1_b1_conv").kernel.numpy()
    assert np.mean(kernel == 0) == pytest.approx(0.5, abs=0.05)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt(f"killed before epoch {epoch}")


@pytest.fixture
def op_determinism():
    tf.config.experimental.enable_op_determinism()
    yield
    from tensorflow.python.framework import config as tf_config
    tf_config.disable_op_determinism()


@pytest.mark.slow
def test_resume_after_interrupt_ends_with_the_same_weights(tmp_path, op_determinism):
    config = train.TrainConfig(epochs=3, batch_size=32, verbose=0, max_lr=0.05)

    def run(workdir, seed, callbacks=()):
        keras.utils.set_random_seed(seed)
        ds, info = data.load_epochs(TINY, "train", batch_size=32, augment=True, seed=0)
        model = build_model("tiny_cnn", num_classes=4, input_shape=info.image_shape,
                            width_multiplier=0.25)
        return model, train.fit(model, ds, config, workdir=str(workdir),
                                extra_callbacks=callbacks)

    full, full_out = run(tmp_path / "a", seed=0)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", seed=0, callbacks=[_Interrupt(at_epoch=2)])
    resumed, out = run(tmp_path / "b", seed=7)     # fresh, differently initialised model
    assert out["initial_epoch"] == 2 and out["epochs"] == 3
    for a, b in zip(full.weights, resumed.weights):   # weights and BN statistics
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.name)
    assert out["history"]["loss"] == pytest.approx(full_out["history"]["loss"], rel=1e-5)
    assert int(resumed.optimizer.iterations) == 3 * 3


def test_resume_refuses_a_different_config(tmp_path):
    ds, info = data.load(TINY, "train", batch_size=32)
    model = build_model("tiny_cnn", num_classes=4, input_shape=info.image_shape,
                        width_multiplier=0.25)
    train.fit(model, ds, train.TrainConfig(epochs=1, verbose=0), workdir=str(tmp_path))
    with pytest.raises(ValueError, match=r"different config \(epochs: 1 there, 2 now\)"):
        train.fit(model, ds, train.TrainConfig(epochs=2, verbose=0), workdir=str(tmp_path))


@pytest.mark.skipif(idx.find_fashion_mnist() is None,
                    reason="Fashion-MNIST IDX files not installed")
def test_tiny_cnn_learns_fashion_mnist_slice_in_one_epoch():
    # 5,000 real training images, one epoch (157 steps of 32), 2,000 test images.
    train_ds, info = data.load("fashion_mnist", "train", limit=5000, batch_size=32)
    test_ds, _ = data.load("fashion_mnist", "test", limit=2000, batch_size=1000)
    model = build_model("tiny_cnn", num_classes=10, input_shape=info.image_shape)
    config = train.TrainConfig(epochs=1, batch_size=32, optimizer="adam", lr=3e-3, verbose=0)
    train.fit(model, train_ds, config)
    result = train.evaluate(model, test_ds)
    assert result["num_examples"] == 2000
    assert result["accuracy"] >= 0.80, result


def _cli(run_cli, *args):
    from tfopt.train import cli

    return run_cli(cli.main, *args)


def test_cli_rejects_a_bad_flag_in_one_line(tmp_path, run_cli):
    proc = _cli(run_cli, "--model=tiny_cnn", "--dataset=synthetic", "--epochs=0",
                f"--workdir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "error: --epochs=0: expected an int >= 1"
    assert not os.listdir(tmp_path)                  # no work done


@pytest.mark.slow
def test_cli_trains_evaluates_and_writes_outputs(tmp_path, run_cli):
    flagfile = tmp_path / "run.cfg"
    flagfile.write_text("# a flagfile\n--model=tiny_cnn\n--dataset=synthetic:8x8x3:4:64\n"
                        "--width_multiplier=0.25\n--batch_size=32\n--verbose=0\n")
    workdir = tmp_path / "run"
    proc = _cli(run_cli, f"--flagfile={flagfile}", "--epochs=1", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((workdir / "metrics.json").read_text())
    for key in ("accuracy", "loss", "epochs", "wall_time_s", "images_per_s"):
        assert key in metrics
    assert metrics["epochs"] == 1 and 0.0 <= metrics["accuracy"] <= 1.0
    assert {"model.keras", "checkpoints", "logs", "history.json", "flags.txt"} <= set(
        os.listdir(workdir))
    reloaded = keras.models.load_model(workdir / "model.keras")
    assert reloaded.output_shape == (None, 4)


def test_resume_accepts_a_run_saved_before_the_stop_rule_fields(tmp_path):
    import dataclasses
    config = train.TrainConfig(epochs=2, verbose=0)
    old = {k: v for k, v in dataclasses.asdict(config).items()
           if k not in ("monitor", "restore_best_weights", "early_stopping_patience")}
    (tmp_path / "train_config.json").write_text(json.dumps(old))
    train.check_workdir(str(tmp_path), config)            # missing fields count as defaults
    with pytest.raises(ValueError, match=r"different config \(monitor: 'loss' there"):
        train.check_workdir(str(tmp_path), dataclasses.replace(config, monitor="val_loss"))
