"""Optimizers with PyTorch's *coupled* L2 weight decay on every weight they update.

PyTorch `SGD(weight_decay=wd)` adds wd*w to the gradient before the momentum update; Keras's own
`weight_decay` argument is decoupled (AdamW-style) and gives different results with momentum
(design doc reference-variants.md §5). Here the decay is added inside `update_step`, i.e. per
variable *after* gradients are aggregated across replicas and un-scaled by the mixed-precision
loss scaler, so it applies exactly once to every trainable variable, including those of tfmot
prune/quantize wrappers (masked-out weights are zero, so their decay is zero too).
"""

from __future__ import annotations

import tensorflow as tf

from tfopt._keras import keras


def _dense(gradient):
    if isinstance(gradient, tf.IndexedSlices):
        return tf.convert_to_tensor(gradient)
    return gradient


class CoupledSGD(keras.optimizers.Optimizer):
    """PyTorch-style SGD: g += wd*w; buf = momentum*buf + g; w -= lr*buf (no dampening).

    Args:
      learning_rate: Float or a schedule called with the 0-based step.
      momentum: Float or a schedule called with the step (e.g. `OneCycleMomentum`).
      coupled_weight_decay: L2 coefficient wd added as wd*w to every gradient.
      nesterov: PyTorch's Nesterov variant (w -= lr*(g + momentum*buf)).
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, coupled_weight_decay: float = 0.0,
                 nesterov: bool = False, name: str = "CoupledSGD", **kwargs):
        kwargs.setdefault("jit_compile", False)
        super().__init__(name=name, **kwargs)
        self._learning_rate = self._build_learning_rate(learning_rate)
        self.momentum = momentum
        self.coupled_weight_decay = float(coupled_weight_decay)
        self.nesterov = bool(nesterov)

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self.momentums = [self.add_variable_from_reference(v, "m") for v in var_list]
        self._built = True

    def _momentum(self, dtype):
        m = self.momentum(self.iterations) if callable(self.momentum) else self.momentum
        return tf.cast(m, dtype)

    def update_step(self, gradient, variable):
        lr = tf.cast(self.learning_rate, variable.dtype)
        momentum = self._momentum(variable.dtype)
        g = _dense(gradient)
        if self.coupled_weight_decay:
            g = g + tf.cast(self.coupled_weight_decay, variable.dtype) * variable
        buf = self.momentums[self._index_dict[self._var_key(variable)]]
        # PyTorch initialises buf to the first gradient; momentum*0 + g is the same thing.
        buf.assign(momentum * buf + g)
        step = g + momentum * buf if self.nesterov else buf
        variable.assign_sub(lr * step)

    def get_config(self):
        config = super().get_config()
        momentum = self.momentum
        config.update(
            learning_rate=self._serialize_hyperparameter(self._learning_rate),
            momentum=(keras.optimizers.schedules.serialize(momentum)
                      if isinstance(momentum, keras.optimizers.schedules.LearningRateSchedule)
                      else momentum),
            coupled_weight_decay=self.coupled_weight_decay, nesterov=self.nesterov)
        return config


class CoupledAdam(keras.optimizers.Adam):
    """Adam with PyTorch's coupled L2 (`torch.optim.Adam(weight_decay=wd)`): g += wd*w."""

    def __init__(self, learning_rate=0.001, coupled_weight_decay: float = 0.0,
                 name: str = "CoupledAdam", **kwargs):
        kwargs.setdefault("jit_compile", False)
        kwargs.setdefault("epsilon", 1e-8)   # PyTorch's default (Keras: 1e-7)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.coupled_weight_decay = float(coupled_weight_decay)

    def update_step(self, gradient, variable):
        if self.coupled_weight_decay:
            gradient = _dense(gradient) + tf.cast(self.coupled_weight_decay,
                                                  variable.dtype) * variable
        return super().update_step(gradient, variable)

    def get_config(self):
        config = super().get_config()
        config["coupled_weight_decay"] = self.coupled_weight_decay
        return config
