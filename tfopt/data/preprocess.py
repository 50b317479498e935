"""Batched image pre-processing, all in TensorFlow so it runs inside tf.data.

Order (the reference's, design doc reference-variants.md §5): scale to [0, 1] -> optional resize
-> optional grey->RGB -> [train] pad 4 with zeros + random crop back to H x W + random
horizontal flip -> per-channel normalisation. Padding happens before normalisation, so padded
pixels end up at -mean/std, as in torchvision. Randomness is stateless: a batch's crops and flips
depend only on its `seed` (shape [2] int), so an epoch can be replayed exactly.
"""

from __future__ import annotations

import tensorflow as tf

PAD = 4   # pixels of zero padding before the random crop (the paper's augmentation)


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float input is taken to be in [0, 1] already."""
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    return tf.cast(images, tf.float32)


def resize(images: tf.Tensor, image_size: tuple[int, int] | None) -> tf.Tensor:
    """Bilinear (antialiased when shrinking) resize to (H, W); no-op when already that size."""
    if image_size is None or tuple(images.shape[-3:-1]) == tuple(image_size):
        return images
    return tf.image.resize(images, image_size, method="bilinear", antialias=True)


def grey_to_rgb(images: tf.Tensor) -> tf.Tensor:
    """Repeat a single channel three times; RGB input is returned unchanged."""
    if images.shape[-1] == 1:
        return tf.image.grayscale_to_rgb(images)
    return images


def augment(images: tf.Tensor, seed: tf.Tensor, pad: int = PAD) -> tf.Tensor:
    """Pad `pad` zeros, crop a random H x W window per image, flip half the images left-right.

    Args:
      images: float32 [B, H, W, C].
      seed: int32/int64 [2], the stateless seed of this batch.
    """
    shape = tf.shape(images)
    b, h, w = shape[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    seeds = tf.random.experimental.stateless_split(seed, 3)
    dy = tf.random.stateless_uniform([b], seeds[0], 0, 2 * pad + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([b], seeds[1], 0, 2 * pad + 1, dtype=tf.int32)
    rows = dy[:, None] + tf.range(h)[None, :]                       # [B, H]
    cols = dx[:, None] + tf.range(w)[None, :]                       # [B, W]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)             # [B, H, W+2p, C]
    out = tf.gather(out, cols, axis=2, batch_dims=1)                # [B, H, W, C]
    flip = tf.random.stateless_uniform([b], seeds[2]) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(out, axis=[2]), out)


def normalise(images: tf.Tensor, mean, std) -> tf.Tensor:
    """(x - mean) / std per channel."""
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)
    return (images - mean) / std


def preprocess_batch(images: tf.Tensor, *, image_size, to_rgb: bool, mean, std,
                     augment_seed: tf.Tensor | None = None) -> tf.Tensor:
    """The full pipeline on one batch; `augment_seed=None` means no augmentation (eval)."""
    x = resize(to_float(images), image_size)
    if to_rgb:
        x = grey_to_rgb(x)
    if augment_seed is not None:
        x = augment(x, augment_seed)
    return normalise(x, mean, std)
