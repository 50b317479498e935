"""Any tensorflow-datasets name (`cifar10`, `cifar100`, `imagenet2012`, ...).

`data_dir` is tfds's data directory; ImageNet's manually downloaded tar files are looked for in
`<data_dir>/downloads/manual` (tfds's default manual dir) unless `manual_dir` is given.
Tested offline with `tfds.testing.mock_data`.
"""

from __future__ import annotations

import difflib

SPLIT_ALIASES = {"val": "validation"}


def builder(name: str, data_dir: str | None = None):
    """The tfds builder for `name`; a ValueError with close matches for an unknown name."""
    import tensorflow_datasets as tfds
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        names = tfds.list_builders()
        near = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ValueError(
            f"unknown data source {name!r}{hint} (expected fashion_mnist, cifar10, cifar100, "
            "imagenet2012, synthetic, folder:PATH or a tensorflow-datasets name)") from err


def prepared(name: str, data_dir: str) -> bool:
    """Whether tfds has `name` prepared under `data_dir` (no download needed)."""
    import os
    return os.path.isdir(os.path.join(data_dir, name))


def resolve_split(b, split: str) -> str:
    """Map "val" -> "validation" and "test" -> "validation" where a data set has no test split."""
    split = SPLIT_ALIASES.get(split, split)
    base = split.split("[")[0]
    splits = set(b.info.splits.keys())
    if splits and base not in splits:
        if base == "test" and "validation" in splits:
            return "validation" + split[len(base):]
        raise ValueError(f"split={split!r} not in {b.name!r}; available: {sorted(splits)}")
    return split


def load(name: str, split: str, *, data_dir: str | None = None, limit: int | None = None,
         manual_dir: str | None = None):
    """(dataset of (uint8 image HWC, int label), tfds builder, resolved split, num_examples)."""
    import tensorflow_datasets as tfds
    b = builder(name, data_dir)
    split = resolve_split(b, split)
    if limit is not None:
        split = f"{split}[:{limit}]" if "[" not in split else split
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    b.download_and_prepare(download_config=config)
    if b.info.supervised_keys is None:
        raise ValueError(f"tfds data set {name!r} has no (image, label) supervised keys")
    ds = b.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    try:
        num = int(b.info.splits[split].num_examples)
    except Exception:  # noqa: BLE001  (unusual split strings: count instead)
        num = int(ds.reduce(0, lambda n, _: n + 1))
    return ds, b, split, num


def class_names(b) -> tuple[str, ...]:
    """Label names from the builder's ClassLabel feature."""
    label_key = b.info.supervised_keys[1]
    feature = b.info.features[label_key]
    names = getattr(feature, "names", None)
    if not names:
        raise ValueError(f"tfds data set {b.name!r}: label {label_key!r} is not a ClassLabel")
    return tuple(names)


def image_shape(b) -> tuple:
    """(H, W, C) of the image feature; H/W may be None for variable-size data sets."""
    return tuple(b.info.features[b.info.supervised_keys[0]].shape)
