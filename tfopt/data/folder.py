"""`folder:PATH`: the image-folder layout users keep their own data in, streamed from disk.

    PATH/train/<class_name>/*.png|*.jpg      PATH/test/<class_name>/...  (or PATH/val/...)

Class names are the sub-folder names of train/, sorted; label i is the i-th name. Only the file
names are held in memory; images are decoded and resized inside tf.data (`files.py`), so memory
does not grow with the number of images. Hidden files (".*") are ignored; any other file must be
an image `tf.io.decode_image` reads. Before first use, every file of the selected split is
decoded once (a parallel streaming pass) so that a bad file is named before training starts;
the verdict is cached (see `stats.py`), so later runs only `stat` the files.

`limit` keeps a deterministic class-stratified subset (`subsets.take`). Without a test/ (or
val/) folder, `val_fraction=F` holds out a stratified F of train/ as the "validation" split (and
as "test" when there is no test/ folder); "train" is then the rest.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
import logging
import os

import numpy as np

from tfopt.data import stats, subsets

_SPLIT_DIRS = {"train": ("train",), "test": ("test", "val"), "val": ("val", "test"),
               "validation": ("val", "test")}
_LAYOUT = "expected PATH/train/<class>/<image> and PATH/test/<class>/<image> (or val/)"
_HOLDOUT_HINT = ("or pass val_fraction=F (tfopt.train: --test_fraction=F) to hold out a "
                 "stratified part of train/")
_PROBE = 256     # files whose headers fix the channel count and size (stratified, >= 1/class)
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclasses.dataclass
class Listing:
    """The image files of one split folder, sorted by class then file name."""
    paths: list[str]
    labels: np.ndarray          # int32 [N]
    stamps: np.ndarray          # int64 [N, 2]: size in bytes, mtime in ns

    def subset(self, index: np.ndarray) -> "Listing":
        return Listing([self.paths[i] for i in index], self.labels[index], self.stamps[index])

    def digest(self, *extra) -> str:
        """A hash of the names, sizes and mtimes (and `extra`): keys the caches."""
        h = hashlib.sha1(repr(extra).encode())
        h.update("\n".join(self.paths).encode("utf-8", "surrogateescape"))
        h.update(self.stamps.tobytes())
        h.update(self.labels.tobytes())
        return h.hexdigest()[:16]


@dataclasses.dataclass
class FolderSplit:
    """A split ready for the pipeline: file names and labels, plus what `DatasetInfo` needs."""
    paths: list[str]
    labels: np.ndarray
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    shape: tuple[int, int, int]
    num_skipped: int
    decode: object              # path tensor -> float32 [H, W, C] in [0, 1]


def split_dir(root: str, split: str) -> str:
    """The directory holding `split` under `root`; a ValueError naming what is missing."""
    if not os.path.isdir(root):
        raise ValueError(f"folder source {root!r} is not a directory; {_LAYOUT}")
    found = _find_split_dir(root, split)
    if found is None:
        wanted = " or ".join(os.path.join(root, n) for n in _SPLIT_DIRS[split])
        hint = "" if split == "train" else f" ({_HOLDOUT_HINT})"
        raise ValueError(f"folder source: no {wanted} directory for split {split!r}; "
                         f"{_LAYOUT}{hint}")
    return found


def _find_split_dir(root: str, split: str) -> str | None:
    for name in _SPLIT_DIRS[split]:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            return path
    return None


def class_names(root: str) -> tuple[str, ...]:
    """Sorted class sub-folder names of root/train."""
    train = split_dir(root, "train")
    names = tuple(sorted(d for d in os.listdir(train)
                         if os.path.isdir(os.path.join(train, d)) and not d.startswith(".")))
    if not names:
        raise ValueError(f"folder source: {train} has no class sub-folders; {_LAYOUT}")
    for name in names:   # an empty folder would be a class no image ever has
        with os.scandir(os.path.join(train, name)) as entries:
            if not any(not e.name.startswith(".") for e in entries):
                raise ValueError(f"folder source: class folder {os.path.join(train, name)} has "
                                 "no images; add its images or remove it")
    return names


def list_files(root: str, directory: str, names: tuple[str, ...], *, is_train: bool) -> Listing:
    """Every image file of a split directory; an empty train class folder is a ValueError."""
    extra = sorted(set(d for d in os.listdir(directory)
                       if os.path.isdir(os.path.join(directory, d)) and not d.startswith("."))
                   - set(names))
    if extra:
        raise ValueError(f"folder source: {directory} has class folders {extra} that train/ "
                         f"lacks; train classes are {list(names)}")
    paths, labels, stamps = [], array.array("i"), array.array("q")   # no object per number
    for label, name in enumerate(names):
        class_dir = os.path.join(directory, name)
        if not os.path.isdir(class_dir):
            continue
        entries = sorted((e for e in os.scandir(class_dir)
                          if not e.name.startswith(".") and e.is_file()), key=lambda e: e.name)
        if not entries and is_train:
            raise ValueError(f"folder source: class folder {class_dir} has no images; add "
                             "images or remove the folder")
        for entry in entries:
            st = entry.stat()
            paths.append(entry.path)
            labels.append(label)
            stamps.extend((st.st_size, st.st_mtime_ns))
    if not paths:
        raise ValueError(f"folder source: no images under {directory}; {_LAYOUT}")
    return Listing(paths, np.frombuffer(labels, np.int32).copy(),
                   np.frombuffer(stamps, np.int64).reshape(-1, 2).copy())


def _probe(train: Listing, num_classes: int, image_size) -> tuple[int, tuple[int, int]]:
    """(channels, (H, W)) from the headers of a stratified sample of train files: 1 channel if
    every sampled image is grey, else 3; the size is `image_size` or the sampled images' size."""
    from PIL import Image
    modes, sizes = set(), set()
    for i in subsets.take(train.labels, max(_PROBE, num_classes), num_classes):
        try:
            with Image.open(train.paths[i]) as img:
                modes.add(img.mode)
                sizes.add((img.size[1], img.size[0]))
        except Exception:  # noqa: BLE001  (bad files are named by the decode check)
            continue
    channels = 1 if modes and modes <= set(_GREY_MODES) else 3
    if image_size is not None:
        return channels, tuple(image_size)
    if len(sizes) != 1:
        shown = sorted(sizes)[:4]
        raise ValueError(f"folder source: train images have different sizes {shown}"
                         f"{'...' if len(sizes) > 4 else ''}; pass image_size=(H, W) "
                         "(CLI: --image_size)")
    return channels, sizes.pop()


def _select(root: str, split: str, names, train: Listing, val_fraction) -> Listing:
    """The files of `split` before `limit`: a folder, or a part of train/ (val_fraction)."""
    n = len(names)
    if val_fraction is None:
        if split == "train":
            return train
        return list_files(root, split_dir(root, split), names, is_train=False)
    train_ix, val_ix = subsets.holdout(train.labels, val_fraction, n)
    if split == "train":
        return train.subset(train_ix)
    directory = _find_split_dir(root, "test") if split == "test" else None
    if directory is not None:
        return list_files(root, directory, names, is_train=False)
    return train.subset(val_ix)


def _check_decodes(listing: Listing, decode, key: str, cache_dir, skip_bad_files: bool
                   ) -> Listing:
    """Drop (and count) or refuse the files that do not decode; the verdict is cached."""
    from tfopt.data import files
    bad = stats.cached_json(f"folder-decode-{key}",
                            lambda: files.undecodable(listing.paths, decode),
                            "the image-decode check", cache_dir)
    if not bad:
        return listing
    first = listing.paths[bad[0]]
    if not skip_bad_files:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"{first}: not a decodable image ({files.decode_error(first, decode)})"
                         f"{more}; pass skip_bad_files=True (tfopt.train: --skip_bad_files) "
                         "to skip and count such files")
    logging.warning("tfopt.data: skipping %d undecodable image(s), e.g. %s", len(bad), first)
    keep = np.setdiff1d(np.arange(len(listing.paths)), np.asarray(bad, np.int64))
    return listing.subset(keep)


def open_split(root: str, split: str, *, image_size=None, limit=None, val_fraction=None,
               skip_bad_files=False, cache_dir=None) -> FolderSplit:
    """List, subset and check one split; statistics come from the train part.

    Args:
      split: "train", "test", "val" or "validation".
      image_size: (H, W) to resize to, or None for the (common) size of the train images.
      limit: Keep a stratified subset of this many files (before dropping undecodable ones).
      val_fraction: None, or in (0, 1): hold out this stratified part of train/ (see module doc).
      cache_dir: Root of the cache (None: $TFOPT_CACHE_DIR or ~/.cache/tfopt).
    """
    from tfopt.data import files
    if val_fraction is not None and not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction!r}; expected None or a number in (0, 1)")
    names = class_names(root)
    if val_fraction is None:
        split_dir(root, split)      # a missing split folder is named before any listing
    train = list_files(root, split_dir(root, "train"), names, is_train=True)
    channels, size = _probe(train, len(names), image_size)
    decode = files.decode_fn(channels, size)
    listing = _select(root, split, names, train, val_fraction)
    listing = listing.subset(subsets.take(listing.labels, limit, len(names)))
    before = len(listing.paths)
    listing = _check_decodes(listing, decode, listing.digest(channels, size), cache_dir,
                             skip_bad_files)
    fit = _select(root, "train", names, train, val_fraction)
    sample = fit.subset(subsets.take(fit.labels, stats.MAX_EXAMPLES, len(names)))
    mean, std = stats.cached_stats(
        f"folder-{sample.digest(channels, size)}",
        lambda: files.channel_stats(sample.paths, decode), cache_dir)
    return FolderSplit(listing.paths, listing.labels, names, tuple(mean), tuple(std),
                       (size[0], size[1], channels), before - len(listing.paths), decode)
