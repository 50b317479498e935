"""Quantization-aware training with tfmot on every zoo model (and pruning-preserving QAT).

`tfmot.quantization.keras.quantize_model` rejects layers its default 8-bit registry does not
list (design notes "ecosystem" §2.3; tfmot #733). The zoo's blocks use a few of them:

- `Multiply` (squeeze-excite scale, DiCE gate): `TfoptMulOutputQuantizeConfig` quantizes the
  product's output (8-bit, per-tensor, moving-average range), so TFLite gets an int8 MUL.
- `BatchNormalization` that tfmot does not fold into a conv (the BN after a ghost module's or
  DiCE unit's concatenation; DenseNet's pre-activation BN, whose conv input also feeds a
  concatenation): `TfoptOutputQuantizeConfig` quantizes its output; the converter lowers it to
  int8 MUL + ADD.
- The zoo's dead-parameter holders (`DeadParameters`, `DeadBatchNorm`: identity layers that own
  the reference's unused weights): `TfoptNoOpQuantizeConfig` (nothing is computed, nothing is
  quantized; the identity disappears in TFLite).
- `tfopt.blocks.grouped.GroupedConv2D` (the zoo's fast-training grouped conv): `quantize`
  swaps it for a stock `Conv2D` with the same weights first, so tfmot's transforms (Conv+BN
  patterns match the class name "Conv2D") and registry treat it exactly as a native grouped
  conv. After `quantize_apply`, the grouped `Conv2D` inside each QuantizeWrapper is turned back
  into a `GroupedConv2D` in place (`grouped.make_fast`, `grouped_path`): with `training=True`
  it computes the conv on the fake-quantized kernel the wrapper hands it through the fast
  depthwise / reduce / dense / split path, at inference (conversion included) the native
  grouped conv. Weight quantizers, BN handling and activation quantizers are tfmot's, unchanged;
  the int8 .tflite is the same. (Stock QAT, `grouped_path="native"`, trains resnet101_v13 about
  as slowly as the native grouped conv does; docs/training_speed.md, "QAT".)
- Any other layer the registry does not know and that has no trainable weights is given the
  no-op config (pass-through, like tfmot's own treatment of Reshape/Permute).

The configs are named `Tfopt*` on purpose: a custom config named like tfmot's own classes
collides with them inside `quantize_scope` (style guide §2.2).

Pruned models: `preserve_sparsity=True` uses tfmot's `Default8BitPrunePreserveQuantizeScheme`
(PQAT: the quantized kernel is multiplied by the pruning mask, so zeros stay zeros). tfmot
disables that preservation for `DepthwiseConv2D` because tfmot pruning never prunes depthwise
kernels; tfopt does (the paper prunes every conv), so `TfoptPrunePreserveQuantizeScheme` is the
same scheme with depthwise preservation enabled. Where tfmot's layout transforms bypass the
scheme's registry, `pin_zeros` keeps the zeros with a mask constraint on the kernel variable.

Input order (tfmot #1061, #1179, open in 0.8.1): tfmot's graph rewriter looks a matched
layer's inputs up in the order of its own layer list, not the order the layer consumes them,
and rewires the rewritten layer in that order; every earlier rewrite (a Conv+BN pair) moves
its layers to the end of that list. vgg19_v08's fire units (`concat[expand1_bn,
expand3_dead_bn]`, expand1 + BN rewritten first) came out of `quantize_model` as
`concat[expand3, expand1]`: every channel after the concat met the wrong weights, and QAT
started from chance (10.66 % on CIFAR-10 after one epoch, from a 27.70 % baseline).
`quantize` runs tfmot with the inputs kept in call order (`_keep_input_order`) and then
checks every multi-input layer against the float model (`input_order_mismatches`).

Saving/loading a QAT model needs `quantize_scope()` (tfmot #426, #773).
"""

from __future__ import annotations

import contextlib

from tfopt._keras import keras, layers
from tfopt.blocks import grouped as _grouped
from tfopt.compress import pruning as _pr
from tfopt.compress import sparsity as _sp


def _tfmot():
    import tensorflow_model_optimization as tfmot
    return tfmot


_CLASSES = None


def _classes():
    """Builds (once) the QuantizeConfig classes; tfmot is imported lazily."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    tfmot = _tfmot()
    qk = tfmot.quantization.keras
    import importlib
    pp = "tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve"
    pp_scheme = importlib.import_module(f"{pp}.default_8bit_prune_preserve_quantize_scheme")
    pp_registry = importlib.import_module(f"{pp}.prune_preserve_quantize_registry")

    class TfoptNoOpQuantizeConfig(qk.QuantizeConfig):
        """Quantizes nothing: for layers that compute nothing (identity holders, pass-through)."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    class TfoptOutputQuantizeConfig(TfoptNoOpQuantizeConfig):
        """Quantizes only the layer's output: 8 bit, per-tensor, asymmetric, moving average."""

        def get_output_quantizers(self, layer):
            return [qk.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    class TfoptMulOutputQuantizeConfig(TfoptOutputQuantizeConfig):
        """`Multiply` (squeeze-excite scale, DiCE gate): int8 output of the product."""

    class TfoptPrunePreserveQuantizeRegistry(
            pp_registry.Default8bitPrunePreserveQuantizeRegistry):
        """tfmot's prune-preserve registry with DepthwiseConv2D preservation enabled."""

        _LAYERS_CONFIG_MAP = {
            **pp_registry.PrunePreserveQuantizeRegistry._LAYERS_CONFIG_MAP,
            layers.DepthwiseConv2D: pp_registry._PrunePreserveInfo(
                ["depthwise_kernel"],
                ["Default8BitConvQuantizeConfig", "Default8BitQuantizeConfig"]),
        }
        _DISABLE_PRUNE_PRESERVE = frozenset()

    class TfoptPrunePreserveQuantizeScheme(pp_scheme.Default8BitPrunePreserveQuantizeScheme):
        """`Default8BitPrunePreserveQuantizeScheme` that also keeps depthwise kernels sparse."""

        def get_quantize_registry(self):
            return TfoptPrunePreserveQuantizeRegistry()

    for cls in (TfoptNoOpQuantizeConfig, TfoptOutputQuantizeConfig,
                TfoptMulOutputQuantizeConfig):
        keras.utils.register_keras_serializable(package="tfopt")(cls)
    _CLASSES = {
        "TfoptNoOpQuantizeConfig": TfoptNoOpQuantizeConfig,
        "TfoptOutputQuantizeConfig": TfoptOutputQuantizeConfig,
        "TfoptMulOutputQuantizeConfig": TfoptMulOutputQuantizeConfig,
        "TfoptPrunePreserveQuantizeScheme": TfoptPrunePreserveQuantizeScheme,
    }
    return _CLASSES


def _zoo_custom_layers() -> dict:
    """tfopt's own serializable layer classes (the dead-parameter holders), by class name."""
    out = {}
    for module, names in (("tfopt.blocks.dead", ("DeadParameters",)),
                          ("tfopt.blocks.vgg_units", ("DeadBatchNorm",))):
        try:
            mod = __import__(module, fromlist=list(names))
        except ImportError:
            continue
        for n in names:
            if hasattr(mod, n):
                out[n] = getattr(mod, n)
    return out


def custom_objects() -> dict:
    """Every class a saved QAT (or pruned) tfopt model may reference, for loading."""
    c = _classes()
    objs = {k: v for k, v in c.items() if k.endswith("QuantizeConfig")}
    objs.update(_zoo_custom_layers())
    objs["GroupedConv2D"] = _grouped.GroupedConv2D
    objs.update({cls.__name__: cls for cls in _pr._prunable_classes().values()})
    return objs


def quantize_scope():
    """Context manager to load a saved QAT model: `with quantize_scope(): load_model(path)`."""
    return _tfmot().quantization.keras.quantize_scope(custom_objects())


def _default_registry():
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )
    return default_8bit_quantize_registry.Default8BitQuantizeRegistry()


def _folded_by_tfmot(bn) -> bool:
    """Whether tfmot's Conv+BN layout transforms fold `bn`: its producer is one conv /
    depthwise conv whose only consumer is `bn` (DenseNet's pre-activation BN reads a conv
    output that also feeds a concatenation, and is not folded)."""
    try:
        inbound = bn.inbound_nodes[0].inbound_layers
    except (AttributeError, IndexError):
        return False
    if isinstance(inbound, (list, tuple)):
        if len(inbound) != 1:
            return False
        inbound = inbound[0]
    return (isinstance(inbound, (layers.Conv2D, layers.DepthwiseConv2D))
            and len(inbound.outbound_nodes) == 1)


def quantize_config_for(layer):
    """The tfopt QuantizeConfig `layer` needs, or None when tfmot's registry handles it."""
    c = _classes()
    dead = tuple(_zoo_custom_layers().values())
    if dead and isinstance(layer, dead):
        return c["TfoptNoOpQuantizeConfig"]()
    if isinstance(layer, layers.Multiply):
        return c["TfoptMulOutputQuantizeConfig"]()
    if isinstance(layer, layers.BatchNormalization):
        return None if _folded_by_tfmot(layer) else c["TfoptOutputQuantizeConfig"]()
    if isinstance(layer, keras.layers.InputLayer):
        return None
    if not _default_registry().supports(layer) and not layer.trainable_weights:
        return c["TfoptNoOpQuantizeConfig"]()
    return None


def _has_sparsity(model, threshold: float = 0.01) -> bool:
    try:
        return _sp.model_sparsity(model, "conv") >= threshold
    except ValueError:
        return False


def quantize(model, *, preserve_sparsity: bool | None = None, grouped_path: str = "auto"):
    """A QAT copy of `model` (fake-quant wrappers, 8-bit, tfmot default scheme).

    Args:
      model: A functional float model (plain Keras layers; strip pruning wrappers first). It is
        copied and never modified.
      preserve_sparsity: Use the pruning-preserving scheme (PQAT, depthwise kernels included).
        None: on when >= 1% of the conv weights are exactly zero (a pruned model).
      grouped_path: Training path of the grouped convs inside the QAT wrappers (module
        docstring): "auto" (by shape, `tfopt.blocks.grouped.choose_path`), "native" (tfmot's
        stock grouped `Conv2D`: slow on a CPU, for comparison), or one of "dense", "split",
        "depthwise", "reduce" for every grouped conv (tests; it must fit each layer's shape).

    Returns:
      The quantization-aware model (uncompiled); fine-tune it briefly with a low LR, then convert
      with an int8 TFLite converter.

    Raises:
      ValueError: If the model still has pruning wrappers, or for an unknown `grouped_path`.
    """
    tfmot = _tfmot()
    qk = tfmot.quantization.keras
    if grouped_path not in _grouped.PATHS:
        raise ValueError(f"grouped_path={grouped_path!r}; expected one of {_grouped.PATHS}")
    if _pr.wrappers(model):
        raise ValueError(f"model {model.name!r} still has pruning wrappers; call "
                         "tfopt.compress.pruning.strip(model) before quantize()")
    if preserve_sparsity is None:
        preserve_sparsity = _has_sparsity(model)
    # Annotating wraps layer objects and calls them on new tensors (extra inbound nodes, after
    # which `layer.output` of the caller's model would be ambiguous), so annotate a copy. One
    # pass does tfmot's quantize_annotate_model plus tfopt's configs.
    model = _pr.copy_model(model)
    # tfmot's Conv+BN folding matches the class name "Conv2D": stock layers, same weights.
    model = _grouped.to_native(model)
    configs = {l.name: quantize_config_for(l) for l in model.layers}

    def annotate(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        return qk.quantize_annotate_layer(layer, quantize_config=configs[layer.name])

    annotated = keras.models.clone_model(model, clone_function=annotate)
    scheme = _classes()["TfoptPrunePreserveQuantizeScheme"]() if preserve_sparsity else None
    with quantize_scope(), _keep_input_order():
        qat_model = qk.quantize_apply(annotated, *([scheme] if scheme is not None else []))
    wrong = input_order_mismatches(model, qat_model)
    if wrong:
        raise RuntimeError(f"quantize({model.name!r}): tfmot rewired the inputs of {wrong} in "
                           "another order (tfmot #1179); the QAT model would compute garbage")
    if grouped_path != "native":
        fast_grouped(qat_model, grouped_path)
    if scheme is not None:
        pin_zeros(qat_model)
    return qat_model


def fast_grouped(qat_model, training_path: str = "auto") -> dict[str, str]:
    """Turn the grouped `Conv2D` inside every QuantizeWrapper of `qat_model` into a
    `GroupedConv2D` in place (`tfopt.blocks.grouped.make_fast`), so training computes it
    through the fast path on the fake-quantized kernel; returns {inner layer name: path}."""
    from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper
    paths = {}
    for wrapper in qat_model.layers:
        inner = getattr(wrapper, "layer", None)
        if not isinstance(wrapper, quantize_wrapper.QuantizeWrapper) or \
                not isinstance(inner, layers.Conv2D) or inner.groups == 1:
            continue
        try:
            shape = wrapper.input_shape
        except AttributeError:  # a shared layer called on several shapes: height/width unknown
            shape = (None, None, None, inner.kernel.shape[2] * inner.groups)
        paths[inner.name] = _grouped.make_fast(inner, shape, training_path=training_path)
    return paths


@contextlib.contextmanager
def _keep_input_order():
    """Within the block, tfmot's graph rewriter keeps every matched layer's inputs in call
    order (module docstring, "Input order"): `ModelTransformer._get_layers` returns the layers
    in the order of the names it is given (each once), not in model-config order (tfmot
    #1179). Sequential models keep tfmot's lookup (its Sequential rewrite needs config order,
    and every layer there has one input)."""
    from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations import (
        model_transformer,
    )
    cls = model_transformer.ModelTransformer
    original = cls._get_layers  # pylint: disable=protected-access

    def ordered(self, layer_names):
        if not self._is_functional_model(self.model):  # pylint: disable=protected-access
            return original(self, layer_names)
        by_name = {layer["config"]["name"]: layer
                   for layer in self._config["layers"]}  # pylint: disable=protected-access
        return [by_name[n] for n in dict.fromkeys(layer_names) if n in by_name]

    cls._get_layers = ordered  # pylint: disable=protected-access
    try:
        yield
    finally:
        cls._get_layers = original  # pylint: disable=protected-access


def _unwrapped_name(layer) -> str:
    """The name of the float layer inside a QAT wrapper (QuantizeWrapper.layer), else its own."""
    return getattr(getattr(layer, "layer", None), "name", layer.name)


def _source_names(layer) -> list[list[str]] | None:
    """Per inbound node, the names of the layers producing `layer`'s inputs, in call order,
    looking through QAT wrappers; None for a single-input layer."""
    nodes = []
    for node in layer.inbound_nodes:
        tensors = node.input_tensors
        if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
            continue
        names = []
        for t in tensors:
            names.append(_unwrapped_name(t.node.layer))
        nodes.append(names)
    return nodes or None


def input_order_mismatches(float_model, qat_model) -> list[str]:
    """Names of the multi-input layers (Concatenate, ...) whose inputs `qat_model` consumes in
    another order than `float_model` (matched by name through the QAT wrappers)."""
    qat_layers = {_unwrapped_name(layer): layer for layer in qat_model.layers}
    wrong = []
    for layer in float_model.layers:
        before = _source_names(layer)
        twin = qat_layers.get(layer.name)
        if before is None or twin is None:
            continue
        after = _source_names(twin)
        if after is not None and sorted(map(sorted, after)) == sorted(map(sorted, before)) \
                and after != before:
            wrong.append(layer.name)
    return wrong


def pin_zeros(model) -> int:
    """Keep every zero of the model's conv/dense kernels at zero through training.

    tfmot's layout transforms give some layers a quantize config of their own, bypassing the
    prune-preserve registry (e.g. the inputs of a three-way Concatenate, a 1x1 conv right after
    global pooling), so PQAT alone lets their pruned weights regrow. A constraint on the kernel
    variable (applied by the optimizer after every update) multiplies it by its current
    non-zero mask. Returns the number of kernels pinned.
    """
    import numpy as np
    import tensorflow as tf

    pinned = 0
    for _, var in _sp.prunable_kernels(model, "all"):
        value = var.numpy()
        if np.count_nonzero(value) == value.size:
            continue
        mask = tf.constant((value != 0).astype(value.dtype))
        var._constraint = lambda v, m=mask: v * m  # pylint: disable=protected-access
        pinned += 1
    return pinned


# The name the ablation driver and tfmot users look for.
quantize_model = quantize


def quantize_and_finetune(model, train_ds, config, *, preserve_sparsity: bool | None = None,
                          val_ds=None, workdir=None, grouped_path: str = "auto",
                          range_images=None):
    """`quantize` then fine-tune with `tfopt.train.fit`; returns (qat_model, fit metrics).

    `range_images` (normalised images, N x H x W x C; e.g. the int8 calibration images) start
    the activation ranges from the float model's (`tfopt.compress.qat_ranges`) instead of
    tfmot's [-6, 6]; strongly advised for short fine-tunings (tfmot needs ~1,000 steps).
    """
    from tfopt import train as _train
    from tfopt.compress import qat_ranges
    qat_model = quantize(model, preserve_sparsity=preserve_sparsity, grouped_path=grouped_path)
    if range_images is not None:
        qat_ranges.init_activation_ranges(qat_model, model, range_images,
                                          batch_size=config.batch_size)
    metrics = _train.fit(qat_model, train_ds, config, val_ds=val_ds, workdir=workdir)
    return qat_model, dict(metrics or {})


def save(model, path: str) -> None:
    """Save a QAT model (H5 or SavedModel, by extension) without optimizer state."""
    model.save(path, include_optimizer=False)


def load(path: str):
    """Load a model saved by `save` (inside `quantize_scope`, uncompiled)."""
    from tfopt.models import list_variants
    list_variants()  # registers the zoo's serializable layers
    with quantize_scope():
        return keras.models.load_model(path, compile=False)


def kernel_sparsity(qat_model) -> float:
    """Sparsity of the conv kernels as the QAT model will quantize them (wrappers looked through)."""
    return _sp.model_sparsity(qat_model, "conv")


__all__ = [
    "custom_objects",
    "fast_grouped",
    "input_order_mismatches",
    "kernel_sparsity",
    "load",
    "pin_zeros",
    "quantize",
    "quantize_and_finetune",
    "quantize_config_for",
    "quantize_model",
    "quantize_scope",
    "save",
]
