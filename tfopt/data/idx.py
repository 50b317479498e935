"""IDX files (the MNIST / Fashion-MNIST format) and where Fashion-MNIST lives on disk.

Format (http://yann.lecun.com/exdb/mnist/): magic = two zero bytes, a dtype code, the number
of dimensions; then one big-endian uint32 per dimension; then the data, big-endian, row-major.
Files may be gzip-compressed (`.gz`).
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

_DTYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"   # apt package `dataset-fashion-mnist`
APT_PACKAGE = "dataset-fashion-mnist"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a native-endian numpy array.

    Raises:
      ValueError: The file is not a well-formed IDX file (the message names it).
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: cannot read IDX file ({type(err).__name__}: {err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic {data[:4].hex()!r}; "
                         f"expected 00 00 <dtype in {sorted(_DTYPES)}> <ndim>)")
    dtype, ndim = _DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: IDX header truncated ({len(data)} bytes for {ndim} dims)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX body has {len(data) - header} bytes; shape {shape} of "
                         f"{dtype.name} needs {expected}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_file(directory: str, stem: str) -> str | None:
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def search_dirs(data_dir: str | None) -> list[str]:
    """Where Fashion-MNIST IDX files are looked for, in order: only `data_dir` (and
    `data_dir/fashion-mnist`) when it is given, else the system copies."""
    if data_dir is not None:
        return [data_dir, os.path.join(data_dir, "fashion-mnist")]
    keras_cache = os.path.join(os.path.expanduser("~"), ".keras", "datasets", "fashion-mnist")
    return [DEBIAN_DIR, keras_cache]


def missing_message(data_dir: str) -> str:
    """One line: why `data_dir` does not hold Fashion-MNIST (absent, or which files lack)."""
    if not os.path.isdir(data_dir):
        return (f"data_dir={data_dir!r} does not exist; expected a directory holding "
                "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]")
    stems = [stem for pair in _FILES.values() for stem in pair]
    best = max(search_dirs(data_dir),
               key=lambda d: sum(_find_file(d, stem) is not None for stem in stems))
    missing = [stem + "[.gz]" for stem in stems if _find_file(best, stem) is None]
    return (f"data_dir={data_dir!r}: {best} has {4 - len(missing)} of the 4 Fashion-MNIST IDX "
            f"files; missing {', '.join(missing)} (the system copy is not used when data_dir "
            "is given)")


def find_fashion_mnist(data_dir: str | None = None) -> str | None:
    """The first directory of `search_dirs(data_dir)` holding all four IDX files, else None."""
    for directory in search_dirs(data_dir):
        if all(_find_file(directory, stem) for pair in _FILES.values() for stem in pair):
            return directory
    return None


def load_fashion_mnist(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28, 1], labels int32 [N]) of `split` ("train" or "test")."""
    image_stem, label_stem = _FILES[split]
    image_path = _find_file(directory, image_stem)
    label_path = _find_file(directory, label_stem)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{image_path} / {label_path}: expected images [N, H, W] and labels [N], "
                         f"got {images.shape} and {labels.shape}")
    return images[..., None].astype(np.uint8), labels.astype(np.int32)
