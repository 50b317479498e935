"""Knowledge distillation: the teacher is never trained, the student learns, T/alpha validated."""

import numpy as np
import pytest
import tensorflow as tf

from tfopt._keras import keras, layers
from tfopt.compress import distill as D


def _model(width, name, seed):
    keras.utils.set_random_seed(seed)
    i = keras.Input((8, 8, 1))
    x = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv")(i)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    return keras.Model(i, layers.Dense(4, name=f"{name}_logits")(x), name=name)


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32") + 2 * (x[:, :4].mean(axis=(1, 2, 3)) > 0)
    return tf.data.Dataset.from_tensor_slices((x, y.astype("int32"))).batch(16)


def test_distillation_loss_zero_for_equal_logits_and_scales_with_t_squared():
    t = tf.constant([[1.0, 2.0, 3.0]])
    assert float(D.distillation_loss(t, t, 4.0)) == pytest.approx(0.0, abs=1e-6)
    s = tf.constant([[3.0, 2.0, 1.0]])
    p = tf.nn.softmax(t / 2.0).numpy()[0]
    q = tf.nn.softmax(s / 2.0).numpy()[0]
    expected = 4.0 * float(np.sum(p * np.log(p / q)))
    assert float(D.distillation_loss(t, s, 2.0)) == pytest.approx(expected, rel=1e-5)


def test_teacher_is_frozen_and_student_trains():
    from tfopt import train

    teacher, student = _model(8, "teacher", 1), _model(4, "student", 2)
    t_before = [w.copy() for w in teacher.get_weights()]
    s_before = [w.copy() for w in student.get_weights()]
    config = train.TrainConfig(epochs=2, batch_size=16, optimizer="adam")
    metrics = D.distill(student, teacher, _data(), config, val_ds=_data(), temperature=3.0,
                        alpha=0.7)
    for a, b in zip(t_before, teacher.get_weights()):   # BN stats included
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(s_before, student.get_weights()))
    assert "distill_loss" in metrics["history"] and len(metrics["history"]["distill_loss"]) == 2
    assert "val_accuracy" in metrics


def test_alpha_zero_is_plain_cross_entropy():
    """alpha = 0: the optimised loss equals the hard-label cross-entropy."""
    teacher, student = _model(8, "teacher", 1), _model(4, "student", 2)
    d = D.Distiller(student, teacher, temperature=2.0, alpha=0.0)
    d.compile(keras.optimizers.SGD(0.0),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = next(iter(_data()))
    logs = d.train_on_batch(x, y, return_dict=True)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, student(x, training=True))
    assert logs["loss"] == pytest.approx(float(ce), rel=1e-4)
    # The teacher is not tracked: its variables are not the distiller's.
    assert [id(v) for v in d.trainable_weights] == [id(v) for v in student.trainable_weights]


@pytest.mark.parametrize("kwargs, match", [({"temperature": 0.0}, "temperature=0.0"),
                                           ({"alpha": 1.5}, "alpha=1.5")])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        D.Distiller(_model(4, "s", 0), _model(4, "t", 0), **kwargs)
