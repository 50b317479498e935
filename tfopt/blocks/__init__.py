"""Reusable Keras building blocks: `(x, *, ..., name) -> tensor` functions.

Every block is made of real Keras layers only (no Lambda, no raw `tf.*` ops), so models built
from them survive tfmot QAT, int8 TFLite conversion and TFLite Micro. Every layer a block
creates is named `f"{name}..."`, so the caller's `name` must be unique in the model.

Modules: conv (conv / BN / activation units), shuffle, se, ghost, inverted, fire, bottleneck
(ResNet residual blocks), dead (counted-but-unused parameters), heads, dice (DiCE unit).
"""
