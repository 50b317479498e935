"""`folder:PATH`: the image-folder layout users keep their own data in.

    PATH/train/<class_name>/*.png|*.jpg      PATH/test/<class_name>/...  (or PATH/val/...)

Class names are the sub-folder names of train/, sorted; label i is the i-th name. Images are
decoded with Pillow into memory (so a bad file is found, and named, before training starts).
Hidden files (".*") are ignored; any other file must be a decodable image.
"""

from __future__ import annotations

import hashlib
import logging
import os

import numpy as np

_SPLIT_DIRS = {"train": ("train",), "test": ("test", "val"), "val": ("val", "test"),
               "validation": ("val", "test")}
_LAYOUT = "expected PATH/train/<class>/<image> and PATH/test/<class>/<image> (or val/)"


def split_dir(root: str, split: str) -> str:
    """The directory holding `split` under `root`; a ValueError naming what is missing."""
    if not os.path.isdir(root):
        raise ValueError(f"folder source {root!r} is not a directory; {_LAYOUT}")
    for name in _SPLIT_DIRS[split]:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            return path
    wanted = " or ".join(os.path.join(root, n) for n in _SPLIT_DIRS[split])
    raise ValueError(f"folder source: no {wanted} directory for split {split!r}; {_LAYOUT}")


def class_names(root: str) -> tuple[str, ...]:
    """Sorted class sub-folder names of root/train."""
    train = split_dir(root, "train")
    names = tuple(sorted(d for d in os.listdir(train)
                         if os.path.isdir(os.path.join(train, d)) and not d.startswith(".")))
    if not names:
        raise ValueError(f"folder source: {train} has no class sub-folders; {_LAYOUT}")
    return names


def list_files(root: str, split: str) -> list[tuple[str, int]]:
    """[(path, label)] of a split, sorted by class then file name."""
    names = class_names(root)
    directory = split_dir(root, split)
    extra = sorted(set(d for d in os.listdir(directory)
                       if os.path.isdir(os.path.join(directory, d)) and not d.startswith("."))
                   - set(names))
    if extra:
        raise ValueError(f"folder source: {directory} has class folders {extra} that train/ "
                         f"lacks; train classes are {list(names)}")
    files = []
    for label, name in enumerate(names):
        class_dir = os.path.join(directory, name)
        if not os.path.isdir(class_dir):
            continue
        for fname in sorted(os.listdir(class_dir)):
            path = os.path.join(class_dir, fname)
            if not fname.startswith(".") and os.path.isfile(path):
                files.append((path, label))
    if not files:
        raise ValueError(f"folder source: no images under {directory}; {_LAYOUT}")
    return files


def fingerprint(root: str) -> str:
    """A hash of the train files' names, sizes and mtimes (keys the cached mean/std)."""
    h = hashlib.sha1(os.path.abspath(root).encode())
    for path, label in list_files(root, "train"):
        st = os.stat(path)
        h.update(f"{path}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _decode(path: str) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as img:
        img.load()
        if img.mode in ("L", "1", "I", "I;16", "F"):
            arr = np.asarray(img.convert("L"))[..., None]
        else:
            arr = np.asarray(img.convert("RGB"))
    return arr


def load_arrays(root: str, split: str, *, image_size: tuple[int, int] | None = None,
                limit: int | None = None, skip_bad_files: bool = False
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode a split into memory.

    Returns:
      (images [N, H, W, C] uint8 (float32 in [0, 1] if they had to be resized to a common
      size), labels int32 [N], number of skipped undecodable files).

    Raises:
      ValueError: A file is not a decodable image (unless `skip_bad_files`), or the images have
        different sizes and no `image_size` was given.
    """
    files = list_files(root, split)
    if limit is not None:
        files = files[:limit]
    images, labels, skipped = [], [], 0
    for path, label in files:
        try:
            arr = _decode(path)
        except Exception as err:  # Pillow raises many types for bad files  # noqa: BLE001
            if not skip_bad_files:
                msg = " ".join(str(err).split())
                raise ValueError(f"{path}: not a decodable image ({type(err).__name__}: {msg}); "
                                 "pass skip_bad_files=True to skip and count such files") from err
            logging.warning("skipping undecodable image %s (%s)", path, err)
            skipped += 1
            continue
        images.append(arr)
        labels.append(label)
    if not images:
        raise ValueError(f"folder source: no decodable images for split {split!r} under {root}")
    if any(a.shape[-1] == 3 for a in images):   # mixed grey/colour -> all RGB
        images = [np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a for a in images]
    sizes = sorted({a.shape[:2] for a in images})
    if len(sizes) > 1:
        if image_size is None:
            raise ValueError(f"folder source {root!r}: images have different sizes {sizes[:4]}"
                             f"{'...' if len(sizes) > 4 else ''}; pass image_size=(H, W)")
        import tensorflow as tf
        images = [tf.image.resize(a.astype(np.float32) / 255.0, image_size, antialias=True).numpy()
                  for a in images]
        stacked = np.stack(images).astype(np.float32)
    else:
        stacked = np.stack(images)
    return stacked, np.asarray(labels, np.int32), skipped
