"""`load_epochs`, `load`, `load_arrays`, `representative_dataset`: one entry point for every
data source.

Every dataset is *epoch-keyed*: its shuffle order and augmentation draws are a pure function of
(seed, epoch). Iterating it directly gives a fresh, seeded order on each pass; the `EpochData`
that `load_epochs` returns replays any range of epochs exactly (`EpochData.stream`), which is
how `tfopt.train.fit` resumes an interrupted run on the very batches it would have seen. `load`
returns just the dataset, for plain Keras use.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tfopt.data import folder, idx, preprocess, stats, synthetic, tfds_source
from tfopt.data.epochs import EpochData, epoch_stream
from tfopt.data.info import FASHION_MNIST_CLASSES, NORMALISATION, DatasetInfo

from tfopt.core.choices import DATASETS  # noqa: E402  (defined once, TF-free)

NAMED_SOURCES = (*DATASETS, "folder:PATH")
_SPLITS = ("train", "test", "val", "validation")
_SHUFFLE_BUFFER = 10_000          # examples; tfds sources (in-memory ones are fully permuted)
_CACHE_LIMIT_BYTES = 2 * 1024**3  # decoded tfds splits larger than this are not cached in RAM


@dataclasses.dataclass
class _Raw:
    """A source opened but not yet pre-processed."""
    name: str
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    shape: tuple                       # native (H, W, C); H/W None if variable
    num_examples: int
    images: np.ndarray | None = None   # in-memory sources
    labels: np.ndarray | None = None
    dataset: Any = None                # tfds sources: (image, label) elements
    num_skipped: int = 0
    paths: list | None = None          # folder sources: file names (decoded in tf.data)
    decode: Any = None                 # folder sources: path -> float32 [H, W, C] in [0, 1]


# ---------------------------------------------------------------------------------------------
# Argument checks (one-line ValueErrors naming the value and what is allowed)

def _check_positive_int(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        allowed = "None or an int >= 1" if allow_none else "an int >= 1"
        raise ValueError(f"{name}={value!r}; expected {allowed}")


def _image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError) as err:
        raise ValueError(f"image_size={image_size!r}; expected None, an int or (H, W)") from err
    if h < 1 or w < 1:
        raise ValueError(f"image_size={image_size!r}; expected positive sizes")
    return h, w


def _check_split(source: str, split: str, tfds_source_: bool) -> str:
    if not isinstance(split, str) or not split:
        raise ValueError(f"split={split!r}; expected a split name such as 'train' or 'test'")
    if not tfds_source_ and split not in _SPLITS:
        raise ValueError(f"split={split!r} for source {source!r}; expected one of {_SPLITS}")
    return split


# ---------------------------------------------------------------------------------------------
# Sources

def _is_tfds(source: str) -> bool:
    return not (source == "fashion_mnist" or source.startswith("folder:")
                or source == "synthetic" or source.startswith("synthetic:"))


def _open(source: str, split: str, *, data_dir, limit, image_size, skip_bad_files,
          manual_dir, val_fraction=None, cache_dir=None) -> _Raw:
    if not isinstance(source, str) or not source:
        raise ValueError(f"source={source!r}; expected one of {NAMED_SOURCES} "
                         "or a tensorflow-datasets name")
    split = _check_split(source, split, _is_tfds(source))
    plain = "test" if split in ("val", "validation") else split
    if val_fraction is not None and not source.startswith("folder:"):
        raise ValueError(f"val_fraction={val_fraction!r} is for folder:PATH sources only "
                         f"(source {source!r} has its own test split)")

    if source == "synthetic" or source.startswith("synthetic:"):
        x, y = synthetic.make_arrays(source, plain)
        _, classes, _ = synthetic.parse_spec(source)
        if limit is not None:
            x, y = x[:limit], y[:limit]
        mean, std = stats.channel_stats([synthetic.make_arrays(source, "train")[0]])
        return _Raw(source, tuple(f"class_{i}" for i in range(classes)), mean, std, x.shape[1:],
                    len(y), x, y)

    if source.startswith("folder:"):
        root = source[len("folder:"):]
        if not root:
            raise ValueError(f"source={source!r}; expected 'folder:PATH' with a directory PATH")
        fs = folder.open_split(root, split, image_size=image_size, limit=limit,
                               val_fraction=val_fraction, skip_bad_files=skip_bad_files,
                               cache_dir=cache_dir)
        return _Raw(source, fs.class_names, fs.mean, fs.std, fs.shape, len(fs.paths),
                    labels=fs.labels, num_skipped=fs.num_skipped, paths=fs.paths,
                    decode=fs.decode)
    if source == "fashion_mnist":
        directory = idx.find_fashion_mnist(data_dir)
        if directory is None and data_dir is not None:
            if not tfds_source.prepared(source, data_dir):   # never fall back past data_dir
                raise FileNotFoundError(idx.missing_message(data_dir))
            return _open_tfds(source, plain, data_dir=data_dir, limit=limit, manual_dir=None)
        if directory is not None:
            x, y = idx.load_fashion_mnist(directory, plain)
            if limit is not None:
                x, y = x[:limit], y[:limit]
            mean, std = NORMALISATION["fashion_mnist"]
            return _Raw(source, FASHION_MNIST_CLASSES, mean, std, x.shape[1:], len(y), x, y)
        try:   # last resort: tensorflow-datasets (needs the network unless already prepared)
            return _open_tfds(source, plain, data_dir=data_dir, limit=limit, manual_dir=None)
        except Exception as err:  # noqa: BLE001  (any failure here means "not available")
            reason = " ".join(str(err).split())[:200]
            raise FileNotFoundError(
                "Fashion-MNIST not found: no {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in "
                f"{', '.join(idx.search_dirs(data_dir))}, and tensorflow-datasets failed "
                f"({type(err).__name__}: {reason}); install the Debian package "
                f"`{idx.APT_PACKAGE}` or pass data_dir=DIR holding the IDX files") from err

    return _open_tfds(source, split, data_dir=data_dir, limit=limit, manual_dir=manual_dir,
                      cache_dir=cache_dir)


def _open_tfds(source, split, *, data_dir, limit, manual_dir, cache_dir=None) -> _Raw:
    ds, b, resolved, num = tfds_source.load(source, split, data_dir=data_dir, limit=limit,
                                            manual_dir=manual_dir)
    names = tfds_source.class_names(b)
    shape = tfds_source.image_shape(b)
    if source in NORMALISATION:
        mean, std = NORMALISATION[source]
    else:
        def compute():
            train, _, _, _ = tfds_source.load(source, "train", data_dir=data_dir,
                                              limit=stats.MAX_EXAMPLES, manual_dir=manual_dir)
            return stats.channel_stats(img.numpy()[None] for img, _ in train)
        mean, std = stats.cached_stats(f"tfds-{source}-{b.info.version}", compute, cache_dir)
    return _Raw(source, names, tuple(mean), tuple(std), shape, num, dataset=ds)


# ---------------------------------------------------------------------------------------------
# Pipelines

def _epoch_key(seed: int, epoch) -> tf.Tensor:
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])


def _epoch_fn(raw: _Raw, *, batch_size, image_size, to_rgb, augment, shuffle, seed, mean, std
              ) -> tuple[Callable[[Any], tf.data.Dataset], bool]:
    """(epoch -> the batched, pre-processed dataset of that epoch, whether the epoch may be an
    int64 tensor (else a Python int, or None for a new seeded order on every pass))."""

    def finish(batched: tf.data.Dataset, key) -> tf.data.Dataset:
        """Pre-process batches; augmentation seed = fold_in(key, batch index), or per-batch
        random keys from a seeded stream that changes on every pass when key is None."""
        if key is None:
            keyed = tf.data.Dataset.zip((
                tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
                .map(lambda r: tf.stack([tf.constant(seed, tf.int64), r])), batched))
        else:
            keyed = batched.enumerate().map(
                lambda i, batch: (tf.random.experimental.stateless_fold_in(key, i), batch))

        def prep(batch_key, batch):
            images, labels = batch
            x = preprocess.preprocess_batch(images, image_size=image_size, to_rgb=to_rgb,
                                            mean=mean, std=std,
                                            augment_seed=batch_key if augment else None)
            return x, tf.cast(labels, tf.int32)
        return keyed.map(prep, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    if raw.paths is not None:
        return _file_epoch_fn(raw, batch_size=batch_size, shuffle=shuffle, seed=seed,
                              finish=finish), True

    if raw.images is not None:
        images = tf.constant(raw.images)
        labels = tf.constant(raw.labels, tf.int32)
        n = raw.num_examples

        num_batches = math.ceil(n / batch_size)

        def fn(epoch):
            # One dataset element per batch (slicing a permutation), one fused map: the
            # per-example element overhead of from_tensor_slices().batch() halves throughput
            # on a 2-core machine.
            key = _epoch_key(seed, epoch)
            order = tf.range(n, dtype=tf.int64)
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(order, seed=key)

            def make_batch(i):
                ix = order[i * batch_size:tf.minimum((i + 1) * batch_size, n)]
                x = preprocess.preprocess_batch(
                    tf.gather(images, ix), image_size=image_size, to_rgb=to_rgb, mean=mean,
                    std=std, augment_seed=(tf.random.experimental.stateless_fold_in(key, i)
                                           if augment else None))
                return x, tf.gather(labels, ix)
            return tf.data.Dataset.range(num_batches).map(
                make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return fn, True

    h, w, c = raw.shape
    if (h is None or w is None) and image_size is None:
        raise ValueError(f"source {raw.name!r} has variable-size images {raw.shape}; "
                         "pass image_size=(H, W)")
    base = raw.dataset
    if h is None or w is None:   # resize one by one before batching
        base = base.map(lambda img, lab: (preprocess.resize(preprocess.to_float(img), image_size),
                                          lab), num_parallel_calls=tf.data.AUTOTUNE)
    elif raw.num_examples * h * w * c <= _CACHE_LIMIT_BYTES:
        base = base.cache()
    buffer = min(raw.num_examples, _SHUFFLE_BUFFER)

    def fn(epoch):
        """epoch: a Python int, or None for 'a new seeded order on every pass'."""
        ds = base
        if epoch is None:
            if shuffle:
                ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
            return finish(ds.batch(batch_size), None)
        key = _epoch_key(seed, epoch)
        if shuffle:   # tf.data's shuffle needs a Python seed: derive one from (seed, epoch)
            epoch_seed = int(np.random.SeedSequence([seed, int(epoch)]).generate_state(1)[0])
            ds = ds.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)
        return finish(ds.batch(batch_size), key)
    return fn, False


def _file_epoch_fn(raw: _Raw, *, batch_size, shuffle, seed, finish):
    """epoch -> batches decoded from the file list (folder sources): a seeded permutation of
    the file indices, parallel decode, batch, then the shared batch pre-processing."""
    paths = tf.constant(raw.paths)
    labels = tf.constant(raw.labels, tf.int32)
    n = raw.num_examples

    def fn(epoch):
        key = _epoch_key(seed, epoch)
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=key)
        ds = tf.data.Dataset.from_tensor_slices(order).map(
            lambda i: (raw.decode(paths[i]), labels[i]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return finish(ds.batch(batch_size), key)
    return fn


def load_epochs(source: str, split: str, *, batch_size: int = 128, data_dir: str | None = None,
         image_size=None, to_rgb: bool = False, augment: bool = False,
         shuffle: bool | None = None, limit: int | None = None, seed: int = 0,
         skip_bad_files: bool = False, manual_dir: str | None = None,
         val_fraction: float | None = None, cache_dir: str | None = None
         ) -> tuple[EpochData, DatasetInfo]:
    """A batched `tf.data.Dataset` of (float32 normalised NHWC images, int32 labels) + its info.

    Args:
      source: "fashion_mnist", "cifar10", "cifar100", "imagenet2012", any tensorflow-datasets
        name, "folder:PATH" or "synthetic[:HxWxC[:CLASSES[:TRAIN_EXAMPLES]]]".
      split: "train" or "test" ("val"/"validation" also; tfds sources accept any tfds split).
      batch_size: Images per batch; the last, partial batch is kept.
      data_dir: Where the files are (Fashion-MNIST IDX files, or tfds's data dir).
      image_size: Resize to (H, W) (or an int for square), e.g. 32 to feed CIFAR models.
      to_rgb: Repeat grey images to 3 channels.
      augment: The paper's augmentation: pad 4 zeros, random crop, random horizontal flip.
      shuffle: Shuffle each epoch; default True for "train", False otherwise.
      limit: Keep `limit` examples of the split: folder sources a deterministic class-
        stratified subset (every class within one of limit / classes), other sources the
        first `limit` in file order.
      seed: Seeds the shuffle order and augmentation.
      skip_bad_files: folder sources: skip and count undecodable files instead of failing.
      manual_dir: tfds manual-download dir (ImageNet tar files).
      val_fraction: folder sources: hold out this stratified fraction of train/ as the
        "validation" split (also "test" when PATH has no test/ folder); "train" is the rest.
      cache_dir: Where computed statistics and the folder decode check are cached (default
        $TFOPT_CACHE_DIR or ~/.cache/tfopt; every new file is announced in the log).

    Returns:
      (EpochData, DatasetInfo). Each pass over `EpochData.dataset` is a new seeded epoch;
      `EpochData.stream(e0, e1)` replays epochs e0..e1-1 exactly.

    Raises:
      ValueError: An unknown source/split or bad argument (one line, naming the value).
      FileNotFoundError: Fashion-MNIST is nowhere to be found (names the places searched).
    """
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("limit", limit, allow_none=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}; expected an int")
    size = _image_size(image_size)
    raw = _open(source, split, data_dir=data_dir, limit=limit, image_size=size,
                skip_bad_files=skip_bad_files, manual_dir=manual_dir,
                val_fraction=val_fraction, cache_dir=cache_dir)
    if shuffle is None:
        shuffle = split.split("[")[0] == "train"
    channels = raw.shape[2]
    mean, std = tuple(raw.mean), tuple(raw.std)
    if to_rgb and channels == 1:
        mean, std, channels = mean * 3, std * 3, 3
    h, w = size if size is not None else raw.shape[:2]
    info = DatasetInfo(name=source, num_classes=len(raw.class_names),
                       image_shape=(int(h), int(w), int(channels)), class_names=raw.class_names,
                       mean=mean, std=std, num_examples=raw.num_examples,
                       num_skipped=raw.num_skipped)
    fn, tensor_epoch = _epoch_fn(raw, batch_size=batch_size, image_size=size, to_rgb=to_rgb,
                                 augment=augment, shuffle=shuffle, seed=int(seed), mean=mean,
                                 std=std)
    steps = math.ceil(raw.num_examples / batch_size)
    if shuffle or augment:   # a new seeded epoch key on every pass
        if tensor_epoch:
            keys = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)
            ds = keys.take(1).flat_map(fn)
        else:
            ds = fn(None)
    else:
        ds = fn(0)
    ds = ds.prefetch(tf.data.AUTOTUNE).apply(tf.data.experimental.assert_cardinality(steps))
    return EpochData(dataset=ds, steps=steps, num_examples=raw.num_examples, epoch_fn=fn,
                     tensor_epoch=tensor_epoch), info


def load(source: str, split: str, **kwargs) -> tuple[tf.data.Dataset, DatasetInfo]:
    """(dataset, DatasetInfo): `load_epochs(source, split, **kwargs)` without the epoch replay.

    Each pass over the dataset is a new seeded epoch; give `tfopt.train.fit` the `EpochData`
    of `load_epochs` instead when a run must resume on exactly the batches it would have seen.
    """
    epochs, info = load_epochs(source, split, **kwargs)
    return epochs.dataset, info


def load_arrays(source: str, split: str, *, limit: int | None = None, seed: int = 0,
                image_size=None, to_rgb: bool = False, data_dir: str | None = None,
                skip_bad_files: bool = False, manual_dir: str | None = None,
                val_fraction: float | None = None, cache_dir: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, DatasetInfo]:
    """The whole split in memory: (x float32 normalised NHWC, y int32, DatasetInfo).

    Same pre-processing as `load` without shuffling or augmentation, in file order; `seed` is
    accepted for symmetry with `load` and changes nothing here. Memory grows with the split
    (4 bytes per pixel and channel): for large splits use `stream_arrays`.
    """
    batches, info = stream_arrays(source, split, batch_size=1024, data_dir=data_dir,
                                  image_size=image_size, to_rgb=to_rgb, limit=limit,
                                  skip_bad_files=skip_bad_files, manual_dir=manual_dir,
                                  val_fraction=val_fraction, cache_dir=cache_dir)
    xs, ys = [], []
    for x, y in batches:
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys), info


class _Batches:
    """Re-iterable numpy (x, y) batches of an unshuffled, unaugmented split."""

    def __init__(self, epochs: EpochData):
        self.epochs = epochs

    def __iter__(self):
        return self.epochs.dataset.as_numpy_iterator()

    def __len__(self) -> int:
        return self.epochs.steps


def stream_arrays(source: str, split: str, *, batch_size: int = 256, **kwargs
                  ) -> tuple[_Batches, DatasetInfo]:
    """The split as numpy batches, read from disk as they are iterated (memory: one batch).

    `(batches, info)`: iterating `batches` (any number of times) yields (x float32 NHWC, y int32)
    in file order, with `load_arrays`'s pre-processing; `len(batches)` is the number of batches.
    `kwargs` are `load`'s (augment and shuffle are off).
    """
    epochs, info = load_epochs(source, split, batch_size=batch_size, augment=False, shuffle=False,
                               **kwargs)
    return _Batches(epochs), info


_PREPROCESSING_KEYS = ("data_dir", "image_size", "to_rgb", "limit", "skip_bad_files", "manual_dir",
                       "val_fraction", "cache_dir")


def representative_dataset(source: str, *, num_samples: int = 200, seed: int = 0,
                           **preprocessing) -> Callable[[], Any]:
    """A TFLite representative-dataset callable: yields `[x]`, x float32 [1, H, W, C].

    The samples are a seeded random draw of `num_samples` train images (no augmentation),
    pre-processed as `load(source, "train", **preprocessing)` would; every call yields the
    same samples in the same order. The callable's `.info` is the DatasetInfo.
    """
    _check_positive_int("num_samples", num_samples)
    unknown = sorted(set(preprocessing) - set(_PREPROCESSING_KEYS))
    if unknown:
        raise ValueError(f"unknown pre-processing argument(s) {unknown}; "
                         f"expected some of {_PREPROCESSING_KEYS}")
    epochs, info = load_epochs(source, "train", batch_size=1, shuffle=True, augment=False,
                               seed=seed, **preprocessing)
    samples = [x.astype(np.float32) for x, _ in
               epochs.epoch(0).take(num_samples).as_numpy_iterator()]

    def generator():
        for x in samples:
            yield [x]
    generator.info = info
    return generator


__all__ = ["DatasetInfo", "EpochData", "NAMED_SOURCES", "epoch_stream", "load", "load_arrays",
           "load_epochs",
           "representative_dataset", "stream_arrays"]
