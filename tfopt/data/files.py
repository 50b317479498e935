"""Image files decoded inside tf.data: the decode function, the one-off check that every file
decodes, and mean/std over a list of files. Memory is one batch of images, whatever the number
of files (only the file names are held in RAM: about 100 bytes per image).

Formats: what `tf.io.decode_image` reads (JPEG, PNG, GIF's first frame, BMP, WebP).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_CHECK_BATCH = 4096   # file indices per element of the decode-check pass


def decode_fn(channels: int, size: tuple[int, int]):
    """path (string tensor) -> float32 [H, W, channels] in [0, 1], resized to `size` (bilinear,
    antialiased) only when the file is not already that size."""
    h, w = size

    def decode(path):
        img = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                 expand_animations=False)
        img = tf.cast(img, tf.float32) / 255.0
        same = tf.reduce_all(tf.equal(tf.shape(img)[:2], tf.constant([h, w])))
        img = tf.cond(same, lambda: img,
                      lambda: tf.image.resize(img, (h, w), method="bilinear", antialias=True))
        img.set_shape((h, w, channels))
        return img
    return decode


def undecodable(paths: list[str], decode) -> list[int]:
    """Indices of the files that `decode` fails on, in one parallel streaming pass."""
    if not paths:
        return []
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths)).enumerate()
    # reduce_min uses the pixels, so the decode cannot be optimised away (its shape is static)
    ds = ds.map(lambda i, p: (i, tf.reduce_min(decode(p))), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=False)
    ds = ds.ignore_errors().map(lambda i, _: i)
    good = np.zeros(len(paths), bool)
    for batch in ds.batch(_CHECK_BATCH).as_numpy_iterator():
        good[batch] = True
    return np.flatnonzero(~good).tolist()


def decode_error(path: str, decode) -> str:
    """The decoder's one-line complaint about `path` (empty if it decodes after all)."""
    try:
        decode(tf.constant(path))
    except (tf.errors.OpError, ValueError) as err:
        return " ".join(str(getattr(err, "message", err)).split())[:200]
    return ""


def channel_stats(paths: list[str], decode) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std of the decoded [0, 1] images, float64 sums;
    files that fail to decode are left out."""
    def sums(img):
        x = tf.cast(img, tf.float64)
        pixels = tf.shape(x)[0] * tf.shape(x)[1]
        return tf.reduce_sum(x, [0, 1]), tf.reduce_sum(x * x, [0, 1]), pixels
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths))
    ds = ds.map(lambda p: sums(decode(p)), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=False).ignore_errors()
    total = total_sq = None
    count = 0
    for s, s2, n in ds.batch(1024).as_numpy_iterator():
        s, s2 = s.sum(0), s2.sum(0)
        total = s if total is None else total + s
        total_sq = s2 if total_sq is None else total_sq + s2
        count += int(n.sum())
    if not count:
        raise ValueError("cannot compute mean/std: no decodable image in the sample")
    mean = total / count
    std = (total_sq / count - mean * mean).clip(min=1e-12) ** 0.5
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]
