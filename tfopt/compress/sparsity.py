"""Counting zeros: sparsity, the paper's "non-zeroed" parameter count, and gzip size.

Conventions (Sobolewski & Szyc's pruning tables, reference-variants.md §6):

- The pruned weights are the kernels of every convolution: `Conv2D` (plain, grouped, 1x1,
  shortcut, stem, the 1x1 "head" convs), `DepthwiseConv2D` (PyTorch builds depthwise convs as
  `nn.Conv2d(groups=C)`, so the paper's "every nn.Conv2d" includes them) and both kernels of a
  `SeparableConv2D`. Biases, BatchNorm parameters and dense (Linear) layers are not pruned.
- "Non-zeroed" = the remaining (non-zero) conv kernel entries + all dense kernel entries
  (the SE fully-connected layers are Linear layers too). Biases and BN are excluded. The
  paper's table row 0 is instead the total trainable parameter count (see
  `tfopt.compress.global_pruning`).

Every function looks through tfmot wrappers (`PruneLowMagnitude`, `QuantizeWrapper`), so it
counts the same numbers on a plain, a pruning-wrapped and a QAT model.
"""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np

from tfopt._keras import layers

SCOPES = ("conv", "all")


def unwrap(layer):
    """The innermost layer of a tfmot/Keras wrapper chain (PruneLowMagnitude, QuantizeWrapper)."""
    while isinstance(layer, layers.Wrapper) and hasattr(layer, "layer"):
        layer = layer.layer
    return layer


def _kernel_attrs(layer) -> tuple[str, ...]:
    """Names of the conv kernel attributes of `layer` (unwrapped); () if it is not a conv."""
    if isinstance(layer, layers.SeparableConv2D):
        return ("depthwise_kernel", "pointwise_kernel")
    if isinstance(layer, layers.DepthwiseConv2D):
        return ("depthwise_kernel",)
    if isinstance(layer, (layers.Conv2D, layers.Conv1D, layers.Conv3D)):
        return ("kernel",)
    return ()


def is_conv(layer) -> bool:
    """True for Conv1D/2D/3D (incl. grouped), DepthwiseConv2D and SeparableConv2D layers."""
    return bool(_kernel_attrs(unwrap(layer)))


def _dense_attrs(layer) -> tuple[str, ...]:
    return ("kernel",) if isinstance(layer, layers.Dense) else ()


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"scope={scope!r}; expected one of {SCOPES} "
                         "('conv': conv kernels only, as in the paper; 'all': conv + dense kernels)")


def _kernel_var(layer, attr: str, wrapper=None):
    """The variable behind `layer.<attr>`.

    Inside a QAT wrapper the attribute is replaced by the fake-quantized tensor (and the
    variable is tracked by the wrapper only), so it is then looked up by name.
    """
    value = getattr(layer, attr, None)
    if hasattr(value, "assign"):
        return value
    for holder in (layer, wrapper):
        for w in (holder.weights if holder is not None else ()):
            if w.name.split("/")[-1].split(":")[0] == attr:
                return w
    raise ValueError(f"layer {layer.name!r} has no variable named {attr!r}")


def prunable_kernels(model, scope: str = "conv") -> list[tuple[str, object]]:
    """(layer name, kernel variable) for every kernel in `scope`, in layer order.

    Args:
      model: A functional or wrapped (pruning / QAT) Keras model.
      scope: "conv" (every conv kernel, the paper's set) or "all" (conv + dense kernels).

    Returns:
      A list of `(layer_name, tf.Variable)` (the unwrapped layer's name); a SeparableConv2D
      contributes two entries.
    """
    _check_scope(scope)
    out = []
    for wrapped in model.layers:
        layer = unwrap(wrapped)
        attrs = _kernel_attrs(layer)
        if scope == "all":
            attrs = attrs + _dense_attrs(layer)
        for attr in attrs:
            out.append((layer.name, _kernel_var(layer, attr, wrapped)))
    return out


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    """Zeros of one kernel. `size` and `zeros` are element counts (weights, not bytes)."""

    layer: str
    size: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size if self.size else 0.0


def layer_sparsities(model, scope: str = "conv") -> list[LayerSparsity]:
    """Per-kernel zero counts for the kernels in `scope` (see `prunable_kernels`)."""
    rows = []
    for name, var in prunable_kernels(model, scope):
        w = np.asarray(var.numpy())
        rows.append(LayerSparsity(name, int(w.size), int(w.size - np.count_nonzero(w))))
    return rows


def model_sparsity(model, scope: str = "conv") -> float:
    """Fraction (0..1) of zero entries over all kernels in `scope`, weighted by kernel size."""
    rows = layer_sparsities(model, scope)
    total = sum(r.size for r in rows)
    if total == 0:
        raise ValueError(f"model {model.name!r} has no kernels in scope={scope!r}")
    return sum(r.zeros for r in rows) / total


def count_conv_weights(model) -> int:
    """Number of conv kernel entries (weights; biases excluded)."""
    return sum(int(np.prod(v.shape)) for _, v in prunable_kernels(model, "conv"))


def count_dense_weights(model) -> int:
    """Number of dense kernel entries (weights; biases excluded), SE FCs included."""
    return sum(int(np.prod(_kernel_var(unwrap(l), "kernel", l).shape))
               for l in model.layers if _dense_attrs(unwrap(l)))


def paper_nonzero_count(model) -> int:
    """The paper's "Non-zeroed" count: non-zero conv kernel entries + all dense kernel entries.

    Biases and BatchNorm parameters are excluded (reference-variants.md §6). Dense kernels are
    counted whole because the paper never prunes them.
    """
    nz = sum(int(np.count_nonzero(v.numpy())) for _, v in prunable_kernels(model, "conv"))
    return nz + count_dense_weights(model)


def gzip_size(model, *, level: int = 9) -> dict:
    """Bytes of the model's weights (all of them, float32 as stored), raw and gzip-compressed.

    Pruning only pays off in storage after stripping *and* a general-purpose compressor (tfmot
    docs; design notes "ecosystem" §2.5): dense storage keeps the zeros, gzip removes them. The
    weights are serialised as their raw bytes in `model.weights` order (no file format, no
    optimizer slots), so the figure is deterministic and comparable across models. Strip the
    model first (`tfopt.compress.pruning.strip`); a pruning-wrapped model is refused.

    Returns:
      {"bytes": raw weight bytes, "gzip_bytes": gzip (level `level`) of those bytes}.
    """
    if any(type(l).__name__ == "PruneLowMagnitude" for l in model.layers):
        raise ValueError(f"model {model.name!r} still has tfmot pruning wrappers; strip it first "
                         "(tfopt.compress.pruning.strip)")
    raw = b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights())
    return {"bytes": len(raw), "gzip_bytes": len(gzip.compress(raw, compresslevel=level,
                                                                mtime=0))}


__all__ = [
    "SCOPES", "LayerSparsity", "count_conv_weights", "count_dense_weights",
    "gzip_size", "is_conv", "layer_sparsities", "model_sparsity",
    "paper_nonzero_count", "prunable_kernels", "unwrap",
]
