"""The one-cycle learning-rate and momentum schedule (Smith & Topin 2018), PyTorch-exact.

Reproduces `torch.optim.lr_scheduler.OneCycleLR(max_lr, total_steps, pct_start=0.1,
anneal_strategy="cos", div_factor=25, final_div_factor=1e4, three_phase=False,
cycle_momentum=True, base_momentum=0.85, max_momentum=0.95)` as used by the reference
(design doc reference-variants.md §5), stepped once per batch:

  phase 1, steps 0 .. pct_start*T - 1: lr max_lr/div -> max_lr, momentum 0.95 -> 0.85
  phase 2, .. T - 1:                  lr max_lr -> max_lr/div/final_div, momentum 0.85 -> 0.95

both cosine-annealed; step k is the k-th optimizer update (0-based). Steps past T - 1 hold the
final values (PyTorch raises instead).
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfopt._keras import keras


def _cos(start, end, pct):
    return end + (start - end) / 2.0 * (tf.cos(math.pi * tf.cast(pct, tf.float64)) + 1.0)


def one_cycle(step, *, total_steps: int, max_lr: float, pct_start: float = 0.1,
              div_factor: float = 25.0, final_div_factor: float = 1e4,
              base_momentum: float = 0.85, max_momentum: float = 0.95):
    """(learning rate, momentum) at optimizer step `step` (int or tensor), as float32 tensors.

    Computed in float64 (the final lr, 5e-8, would lose 3 digits in float32 arithmetic).
    """
    step = tf.cast(step, tf.float64)
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    end1 = float(pct_start * total_steps) - 1.0
    end2 = float(total_steps) - 1.0
    step = tf.minimum(step, end2)
    in_phase1 = step <= end1
    pct1 = step / end1 if end1 > 0 else tf.ones_like(step)
    pct2 = (step - end1) / max(end2 - end1, 1e-12)
    lr = tf.where(in_phase1, _cos(initial_lr, max_lr, pct1), _cos(max_lr, min_lr, pct2))
    momentum = tf.where(in_phase1, _cos(max_momentum, base_momentum, pct1),
                        _cos(base_momentum, max_momentum, pct2))
    return tf.cast(lr, tf.float32), tf.cast(momentum, tf.float32)


class OneCycleLR(keras.optimizers.schedules.LearningRateSchedule):
    """The learning-rate half of `one_cycle` as a Keras schedule (called with the step)."""

    def __init__(self, *, total_steps: int, max_lr: float, pct_start: float = 0.1,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 base_momentum: float = 0.85, max_momentum: float = 0.95):
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps={total_steps!r}; expected an int >= 1")
        if not 0.0 < pct_start < 1.0:
            raise ValueError(f"pct_start={pct_start!r}; expected 0 < pct_start < 1")
        self.kwargs = dict(total_steps=total_steps, max_lr=float(max_lr),
                           pct_start=float(pct_start), div_factor=float(div_factor),
                           final_div_factor=float(final_div_factor),
                           base_momentum=float(base_momentum), max_momentum=float(max_momentum))

    def __call__(self, step):
        return one_cycle(step, **self.kwargs)[0]

    def get_config(self):
        return dict(self.kwargs)


class OneCycleMomentum(OneCycleLR):
    """The momentum half of `one_cycle` (cycled inversely to the learning rate)."""

    def __call__(self, step):
        return one_cycle(step, **self.kwargs)[1]
