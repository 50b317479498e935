"""`GroupedConv2D`: a grouped `Conv2D` that trains fast on a CPU, with the native deployment graph.

TensorFlow runs `Conv2D(groups > 1)` on a CPU through a per-op XLA executable (no oneDNN
kernel; tensorflow/tensorflow#49147). In a model with dozens of grouped convs, these launches
dominate a training step (docs/training_speed.md has the profile). `GroupedConv2D` keeps the
weights of `Conv2D(groups=g)` exactly (kernel `(kh, kw, cin/g, cout)`, optional bias) and its
config, and only changes how the convolution is computed while training (`training=True`):

* "depthwise": one input channel per group (cin/g = 1, e.g. DiCE's projection with
  groups = C): the input channels repeated cout/g times, then `tf.nn.depthwise_conv2d` with
  multiplier 1; kernel only reshaped.
* "dense": a block-diagonal dense kernel `(kh, kw, cin, cout)` built from the grouped kernel
  (tiled along the input axis and masked) and one ordinary conv: g x the multiply-adds, but a
  single oneDNN kernel, and the gradient reaches only the grouped weights.
* "reduce": a 1 x 1 conv with one output channel per group (DiCE's 3C -> C weight-average):
  multiply by the kernel and sum each group's inputs (`reduce_sum`), no convolution op.
* "split": `tf.split` into g input slices, g ordinary convs, concat (large layers, few groups).
* "native": the stock grouped conv (also what every non-training call uses).

`choose_path` picks one per layer shape from measurements (docs/training_speed.md). Inference
(`training` False/None: `predict`, `evaluate`, TFLite conversion, saving) always traces the
native grouped conv, so the int8 .tflite keeps its grouped CONV_2D and bytes. The layer is a
`Conv2D` subclass, so `tfopt.metrics` counts its parameters and FLOPs like a `Conv2D`.
`to_native(model)` returns a copy with stock `Conv2D` layers (used before tfmot QAT, whose
Conv+BN folding matches on the class name "Conv2D"); `make_fast(layer, input_shape)` turns a
built stock grouped `Conv2D` back into a `GroupedConv2D` in place (used on the layers inside
tfmot's QuantizeWrappers after quantize_apply, so QAT trains on the fast paths too).
"""

from __future__ import annotations

import tensorflow as tf

from tfopt._keras import keras, layers

PATHS = ("auto", "native", "dense", "split", "depthwise", "reduce")
_SPLIT_MAX_GROUPS = 8
_DENSE_MAX_EXTRA_MACS = 2_000_000  # per image: the block-diagonal waste (g-1)/g of dense MACs
_REDUCE_MIN_GROUPS = 64  # below this, "dense" beats "reduce" (fwd+bwd CPU time 0.33-0.63x)


def choose_path(*, height: int, width: int, cin: int, cout: int, kernel_size, groups: int) -> str:
    """The training path for one grouped conv shape (output height x width), by measurement.

    Rules (batch 64, 2-core CPU, docs/training_speed.md): one input channel per group ->
    "depthwise"; a 1 x 1 conv with one output channel per group -> "reduce" if it has >= 64
    groups or "dense" would waste more than 2 M multiply-adds per image (below 64 groups the
    single dense conv measured 0.33-0.63x the CPU time of multiply + sum); otherwise the
    block-diagonal "dense" conv unless it wastes more than 2 M multiply-adds per image, then
    "split" for at most 8 groups, else "native".
    """
    kh, kw = kernel_size
    if groups == 1:
        return "native"
    if cin == groups:
        return "depthwise"
    dense_macs = height * width * cin * cout * kh * kw
    dense_ok = dense_macs * (groups - 1) // groups <= _DENSE_MAX_EXTRA_MACS
    if cout == groups and (kh, kw) == (1, 1) and (groups >= _REDUCE_MIN_GROUPS or not dense_ok):
        return "reduce"
    if dense_ok:
        return "dense"
    return "split" if groups <= _SPLIT_MAX_GROUPS else "native"


@keras.utils.register_keras_serializable(package="tfopt")
class GroupedConv2D(layers.Conv2D):
    """`Conv2D(groups > 1)` with a fast training path (module docstring); same weights/config.

    Args:
      training_path: "auto" (by shape, `choose_path`) or one of "native", "dense", "split",
        "depthwise" (for tests and benchmarks). Not part of the saved config.
      *args, **kwargs: As for `Conv2D`; stride must be 1 or the path falls back to "native"
        for strided or dilated layers.
    """

    def __init__(self, *args, training_path: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        if training_path not in PATHS:
            raise ValueError(f"{self.name}: training_path={training_path!r}; expected one of "
                             f"{PATHS}")
        self.training_path = training_path
        self._path = None

    def build(self, input_shape):
        super().build(input_shape)
        self._path = self._resolve_path(tf.TensorShape(input_shape))

    def _resolve_path(self, input_shape) -> str:
        cin = int(input_shape[-1])
        simple = (self.data_format == "channels_last" and tuple(self.strides) == (1, 1)
                  and tuple(self.dilation_rate) == (1, 1) and self.padding in ("valid", "same"))
        if not simple or self.groups == 1:
            return "native"
        if self.training_path != "auto":
            if self.training_path == "depthwise" and cin != self.groups:
                raise ValueError(f"{self.name}: training_path='depthwise' needs one input channel "
                                 f"per group; got {cin} channels in {self.groups} groups")
            if self.training_path == "reduce" and (
                    self.filters != self.groups or tuple(self.kernel_size) != (1, 1)):
                raise ValueError(f"{self.name}: training_path='reduce' needs a 1x1 kernel and one "
                                 f"output channel per group; got kernel {self.kernel_size}, "
                                 f"{self.filters} filters in {self.groups} groups")
            return self.training_path
        h, w = input_shape[1], input_shape[2]
        if h is None or w is None:
            return "split"
        return choose_path(height=int(h), width=int(w), cin=cin, cout=self.filters,
                           kernel_size=self.kernel_size, groups=self.groups)

    def call(self, inputs, training=None):
        if self._path in (None, "native") or not _is_true(training):
            return super().call(inputs)
        y = _FAST[self._path](inputs, self.kernel, self.groups, self.padding.upper())
        if self.use_bias:
            y = tf.nn.bias_add(y, self.bias)
        return self.activation(y) if self.activation is not None else y

    def convolution_op(self, inputs, kernel):
        """The native grouped conv, its op named as a stock `Conv2D`'s ("Conv2D", not the class
        name), so the converted .tflite (tensor names, bytes) is the stock layer's."""
        return tf.nn.convolution(inputs, kernel, strides=list(self.strides),
                                 padding=self.padding.upper(), dilations=list(self.dilation_rate),
                                 data_format=self._tf_data_format, name="Conv2D")

    def get_prunable_weights(self):
        """tfmot `PrunableLayer` protocol: the kernel, as for a stock Conv2D."""
        return [self.kernel]


def _is_true(training) -> bool:
    """Only a Python/NumPy True selects the fast path (a symbolic flag keeps the native op)."""
    try:
        return bool(training) if training is not None and not tf.is_tensor(training) else False
    except TypeError:
        return False


def _dense_kernel(kernel, groups: int):
    """Block-diagonal (kh, kw, cin, cout) kernel from a grouped (kh, kw, cin/g, cout) one."""
    kh, kw, a, cout = kernel.shape
    b = cout // groups
    tiled = tf.tile(kernel, [1, 1, groups, 1])
    rows = tf.range(groups * a) // a
    cols = tf.range(cout) // b
    mask = tf.cast(tf.equal(rows[:, None], cols[None, :]), kernel.dtype)
    return tiled * mask


def _dense(x, kernel, groups, padding):
    return tf.nn.conv2d(x, _dense_kernel(kernel, groups), 1, padding)


def _split(x, kernel, groups, padding):
    xs = tf.split(x, groups, axis=-1)
    ks = tf.split(kernel, groups, axis=-1)
    return tf.concat([tf.nn.conv2d(xi, ki, 1, padding) for xi, ki in zip(xs, ks)], axis=-1)


def _depthwise(x, kernel, groups, padding):
    """Depthwise conv with multiplier m = cout/g; output channel c*m + j reads input channel c.

    For m > 1 the input channels are first repeated m times and the conv runs with multiplier
    1: oneDNN's multiplier-m kernel is slower, above all its input gradient (fwd+bwd CPU ms,
    batch 64, DiCE projections 3 x 3 valid, m = 4: 34x34x8 15.9 -> 10.0, 18x18x16 7.1 -> 5.1,
    10x10x32 5.2 -> 3.6, 6x6x64 3.8 -> 2.5; docs/training_speed.md, session 12)."""
    kh, kw, _, cout = kernel.shape
    multiplier = cout // groups
    if multiplier > 1:
        x = tf.repeat(x, multiplier, axis=-1)  # channel c*m + j = input channel c
    return tf.nn.depthwise_conv2d(x, tf.reshape(kernel, (kh, kw, cout, 1)), (1, 1, 1, 1), padding)


def _reduce(x, kernel, groups, padding):
    del padding  # a 1 x 1 kernel: "same" and "valid" agree
    a = kernel.shape[2]
    weights = tf.reshape(tf.transpose(tf.reshape(kernel, (a, groups))), (-1,))  # (g*a,) g-major
    y = x * weights
    shape = tf.concat([tf.shape(x)[:-1], [groups, a]], axis=0)
    return tf.reduce_sum(tf.reshape(y, shape), axis=-1)


_FAST = {"dense": _dense, "split": _split, "depthwise": _depthwise, "reduce": _reduce}


def make_fast(layer, input_shape, *, training_path: str = "auto") -> str:
    """Turn a built stock `Conv2D(groups > 1)` into a `GroupedConv2D`, in place; returns its path.

    The same object keeps its variables, config and every reference to it (a QuantizeWrapper's
    weight/quantizer list, a pruning wrapper's masks); only its class changes, so `call` with
    `training=True` computes the conv through the fast path on whatever `layer.kernel` is at
    call time (tfmot's wrappers set it to the fake-quantized kernel first). A layer that is not
    a grouped stock `Conv2D` (e.g. already a `GroupedConv2D`, or groups == 1) is left as it is.

    Args:
      layer: A built `Conv2D` layer.
      input_shape: Its input shape `(batch, height, width, channels)` (picks the path).
      training_path: As for `GroupedConv2D` ("auto" by shape, or one path by name).

    Returns:
      The training path the layer now uses ("native" when it was left as it is or falls back).

    Raises:
      ValueError: For an unknown `training_path`, or one that does not fit the layer's shape.
    """
    if training_path not in PATHS:
        raise ValueError(f"{layer.name}: training_path={training_path!r}; expected one of {PATHS}")
    if type(layer) is not layers.Conv2D or layer.groups == 1 or not layer.built:
        return getattr(layer, "_path", None) or "native"
    layer.__class__ = GroupedConv2D
    layer.training_path = training_path
    layer._path = None
    layer._init_call_fn_args()  # call(inputs, training)
    try:
        layer._path = layer._resolve_path(tf.TensorShape(input_shape))
    except ValueError:
        layer.__class__ = layers.Conv2D
        layer._init_call_fn_args()
        raise
    return layer._path


def to_native(model):
    """A copy of `model` whose `GroupedConv2D` layers are stock `Conv2D` (same weights).

    Returns `model` itself when it has none. Used before tfmot QAT; conversion does not need it.
    """
    if not any(isinstance(l, GroupedConv2D) for l in model.layers):
        return model

    def clone(layer):
        cls = layers.Conv2D if isinstance(layer, GroupedConv2D) else layer.__class__
        return cls.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
