"""The data a trial runs on, and the explicit cache that shares it between trials.

`TrialData` loads the train/val/test pipelines and test arrays of an `ExperimentConfig` once;
`val_ds` is the held-out tail of the (limited) train split (`val_fraction`; a stratified holdout
for folder:PATH sources, `tfopt.train.holdout_split` otherwise) and is what early stopping and
the plateau recipe watch -- the test split only measures, once per model. The
OCNNA scoring images and int8 calibration images are drawn from a seeded training sample on
first use. `DataCache` keeps the `TrialData` of the last two configs a runner saw (one runner
per process: the local executor's, one per `processes` worker, or one per Ray task). Imports TensorFlow.
"""

from __future__ import annotations

import numpy as np

from tfopt import data as tfdata
from tfopt.compress.ocnna import balanced_subset
from tfopt.experiments.config import DATA_FIELDS, ExperimentConfig



class TrialData:
    """Train/test pipelines, test arrays (x_test, y_test), dataset info and sample images.

    `train_ds` is an `EpochData` (`train_ds.dataset` is the tf.data.Dataset), `test_ds` a
    tf.data.Dataset.
    """

    def __init__(self, config: ExperimentConfig):
        self.config = config
        pre = {
            "image_size": (config.image_size, config.image_size) if config.image_size else None,
            "to_rgb": config.to_rgb,
            "data_dir": config.data_dir,
        }
        self.pre = {k: v for k, v in pre.items() if v not in (None, False)}
        common = dict(batch_size=config.train_batch_size, seed=config.seed, **self.pre)
        self.train_ds, self.val_ds, self.info = _train_and_val(config, common)
        self.x_test, self.y_test, _ = tfdata.load_arrays(
            config.dataset, "test", limit=config.test_limit, seed=config.seed, **self.pre
        )
        self.test_ds, _ = tfdata.load(
            config.dataset, "test", augment=False, shuffle=False, limit=config.test_limit, **common
        )
        self.train_examples = int(self.info.num_examples)
        if self.val_ds is None:
            self.train_examples = int(
                min(config.train_limit or self.info.num_examples, self.info.num_examples)
            )
        self._x_score = None
        self._x_calib = None
        self._train_xy = None

    def _train_arrays(self):
        """A seeded sample of training images as arrays (OCNNA scoring, int8 calibration)."""
        if self._train_xy is None:
            pool = max(self.config.ocnna_images, self.config.calibration_samples) * 5
            limit = min(self.train_examples, max(pool, 1000))
            x, y, _ = tfdata.load_arrays(
                self.config.dataset, "train", limit=limit, seed=self.config.seed, **self.pre
            )
            self._train_xy = (x, y)
        return self._train_xy

    def scoring_images(self):
        """`ocnna_images` seeded, class-balanced training images (OCNNA's default scoring set)."""
        if self._x_score is None:
            x, y = self._train_arrays()
            n = min(self.config.ocnna_images, len(y))
            self._x_score, _ = balanced_subset(x, y, n, seed=self.config.seed)
        return self._x_score

    def representative(self):
        """`calibration_samples` seeded training images for int8 calibration (loaded once)."""
        if self._x_calib is None:
            x, _ = self._train_arrays()
            rng = np.random.default_rng(self.config.seed)
            n = min(self.config.calibration_samples, len(x))
            self._x_calib = np.asarray(x[rng.choice(len(x), n, replace=False)], np.float32)
        return self._x_calib


def _train_and_val(config: ExperimentConfig, common: dict):
    """(train_ds, val_ds or None, train info): the train split minus its held-out part."""
    import os

    if not config.val_fraction:
        train_ds, info = tfdata.load_epochs(config.dataset, "train", augment=config.train_augment,
                                            shuffle=True, limit=config.train_limit, **common)
        return train_ds, None, info
    cache_dir = os.path.join(config.workdir, "data_cache")  # folder statistics, decode checks
    if config.dataset.startswith("folder:"):  # the data library's stratified holdout
        kw = dict(common, val_fraction=config.val_fraction, cache_dir=cache_dir,
                  limit=config.train_limit)
        train_ds, info = tfdata.load_epochs(config.dataset, "train",
                                            augment=config.train_augment, shuffle=True, **kw)
        val_ds, _ = tfdata.load(config.dataset, "validation", augment=False, shuffle=False, **kw)
        return train_ds, val_ds, info
    from tfopt.train import holdout_split

    return holdout_split(config.dataset, val_fraction=config.val_fraction,
                         limit=config.train_limit, augment=config.train_augment,
                         cache_dir=cache_dir, **common)


class DataCache:
    """Holds the TrialData of the last `size` data configs (default 2: the two seeds a worker
    of the `processes` executor alternates between); the least recently used goes first."""

    def __init__(self, size: int = 2):
        self.size = max(1, int(size))
        self._entries: dict[tuple, TrialData] = {}  # insertion order = recency
        self.loads = 0  # TrialData built so far (a cache miss each)

    def get(self, config: ExperimentConfig) -> TrialData:
        key = tuple(getattr(config, f) for f in DATA_FIELDS)
        data = self._entries.pop(key, None)
        if data is None:
            while len(self._entries) >= self.size:  # free the oldest arrays before loading
                self._entries.pop(next(iter(self._entries)))
            data = TrialData(config)
            self.loads += 1
        self._entries[key] = data
        return data
