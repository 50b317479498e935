"""Knowledge distillation (Hinton et al., arXiv:1503.02531): a frozen teacher trains a student.

Loss per batch (logits t from the teacher, s from the student, labels y, temperature T):

    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(y, s)

The T^2 factor keeps the soft term's gradient scale independent of T (Hinton §2). The teacher is
called with `training=False` (its BatchNorm statistics do not move) and none of its variables is
ever given to the optimizer, so it is never trained. Use it to train a compressed variant with
the baseline as teacher, or to recover accuracy after pruning/OCNNA (student = the compressed
model, teacher = its parent).

`Distiller` is a Keras model whose `train_step` does the above and whose `call`/`test_step` are
the student's, so `tfopt.train.fit` (the paper's recipe, checkpoints, plateau callbacks) trains
it unchanged: fit's compiled cross-entropy is the hard-label term.
"""

from __future__ import annotations

import tensorflow as tf

from tfopt._keras import keras

DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.9


def _check(temperature: float, alpha: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r}; expected a number > 0 (e.g. 4)")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha!r}; expected 0 <= alpha <= 1 (weight of the "
                         "distillation term; 1 - alpha weighs the hard-label loss)")


def distillation_loss(teacher_logits, student_logits, temperature: float):
    """T^2 * mean over the batch of KL(softmax(t/T) || softmax(s/T)) (nats)."""
    t = tf.cast(teacher_logits, tf.float32) / temperature
    s = tf.cast(student_logits, tf.float32) / temperature
    p = tf.nn.softmax(t)
    kl = tf.reduce_sum(p * (tf.nn.log_softmax(t) - tf.nn.log_softmax(s)), axis=-1)
    return (temperature ** 2) * tf.reduce_mean(kl)


class Distiller(keras.Model):
    """Student + frozen teacher; `fit` trains only the student.

    Args:
      student: The model to train (outputs logits); trained in place.
      teacher: The trained model whose logits are imitated (outputs logits); never modified.
      temperature: Softening temperature T > 0.
      alpha: Weight of the distillation term in [0, 1]; alpha = 0 is plain training.
    """

    def __init__(self, student, teacher, *, temperature: float = DEFAULT_TEMPERATURE,
                 alpha: float = DEFAULT_ALPHA, **kwargs):
        super().__init__(**kwargs)
        _check(temperature, alpha)
        if student.output_shape[-1] != teacher.output_shape[-1]:
            raise ValueError(f"student outputs {student.output_shape[-1]} classes, teacher "
                             f"{teacher.output_shape[-1]}; they must match")
        self.student = student
        # Set past Keras' attribute tracking: the teacher's variables are not this model's
        # weights, so no optimizer, weight decay or checkpoint of the distiller touches them.
        object.__setattr__(self, "_teacher_model", teacher)
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.distill_tracker = keras.metrics.Mean(name="distill_loss")

    @property
    def teacher(self):
        return self._teacher_model

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def train_step(self, data):
        x, y = data[0], data[1]
        teacher_logits = tf.stop_gradient(self.teacher(x, training=False))
        with tf.GradientTape() as tape:
            logits = self.student(x, training=True)
            hard = self.compiled_loss(y, logits, regularization_losses=self.student.losses)
            soft = distillation_loss(teacher_logits, logits, self.temperature)
            loss = self.alpha * soft + (1.0 - self.alpha) * hard
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.compiled_metrics.update_state(y, logits)
        self.distill_tracker.update_state(soft)
        out = {m.name: m.result() for m in self.metrics}
        out["loss"] = loss  # the optimised objective (compiled_loss alone is the hard term)
        return out


def distill(student, teacher, train_ds, config, *, val_ds=None, workdir=None,
            temperature: float = DEFAULT_TEMPERATURE, alpha: float = DEFAULT_ALPHA,
            extra_callbacks=()) -> dict:
    """Train `student` in place with `teacher`'s softened logits, through `tfopt.train.fit`.

    Args:
      student: Model to train (logits out); its weights are updated in place, like `fit`.
      teacher: Trained model (logits out); never trained, its weights stay as they are.
      train_ds: Batches of (image, int label).
      config: `tfopt.train.TrainConfig` (epochs, optimizer recipe).
      val_ds: Optional validation batches (the student is evaluated).
      workdir: Checkpoints/history for `fit` (resumable).
      temperature: T > 0 (default 4).
      alpha: Weight of the distillation term (default 0.9); 1 - alpha on cross-entropy.

    Returns:
      `fit`'s metrics dict (its `loss` is the combined objective; `distill_loss` is logged
      per epoch in `history`).
    """
    from tfopt import train as _train
    distiller = Distiller(student, teacher, temperature=temperature, alpha=alpha)
    return _train.fit(distiller, train_ds, config, val_ds=val_ds, workdir=workdir,
                      extra_callbacks=extra_callbacks)


__all__ = ["DEFAULT_ALPHA", "DEFAULT_TEMPERATURE", "Distiller", "distill", "distillation_loss"]
