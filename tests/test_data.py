"""tfopt.data: IDX parsing, Fashion-MNIST search order, folder and tfds sources, synthetic
data, pre-processing (normalisation, augmentation, resize, grey->RGB), epoch-keyed shuffling,
load_arrays and representative_dataset."""

import gzip
import os
import struct

import numpy as np
import pytest

from tfopt.data import idx, pipeline
from tfopt.data.info import NORMALISATION
import tfopt.data as data

needs_fashion_mnist = pytest.mark.skipif(idx.find_fashion_mnist() is None,
                                         reason="Fashion-MNIST IDX files not installed")
FMNIST_MEAN, FMNIST_STD = (NORMALISATION["fashion_mnist"][0][0],
                            NORMALISATION["fashion_mnist"][1][0])


def _write_idx(path, array, code=0x08, compress=True):
    """An IDX file written by hand (independently of tfopt's reader)."""
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    body = struct.pack(">BBBB", 0, 0, code, array.ndim)
    body += b"".join(struct.pack(">I", d) for d in array.shape)
    body += np.asarray(array, dtype).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(body)


def _write_fashion_dir(directory, n_train=12, n_test=6, offset=0):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(offset)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) + offset) % 10
        _write_idx(os.path.join(directory, f"{split}-images-idx3-ubyte.gz"), images)
        _write_idx(os.path.join(directory, f"{split}-labels-idx1-ubyte.gz"), labels)
        arrays[split] = (images, labels)
    return arrays


# ---- IDX -------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_parses_uint8_images_and_labels(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = str(tmp_path / ("x.idx.gz" if compress else "x.idx"))
    _write_idx(path, images, compress=compress)
    out = idx.read_idx(path)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


def test_read_idx_parses_big_endian_int32_and_float32(tmp_path):
    ints = np.array([[1, -2, 70000], [3, 4, -5]], np.int32)
    _write_idx(str(tmp_path / "i.gz"), ints, code=0x0C)
    np.testing.assert_array_equal(idx.read_idx(str(tmp_path / "i.gz")), ints)
    floats = np.array([0.5, -1.25, 3e8], np.float32)
    _write_idx(str(tmp_path / "f.gz"), floats, code=0x0D)
    np.testing.assert_array_equal(idx.read_idx(str(tmp_path / "f.gz")), floats)


def test_read_idx_rejects_bad_magic_and_truncated_body_naming_the_file(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="bad.idx.*not an IDX file"):
        idx.read_idx(str(bad))
    short = tmp_path / "short.idx"
    short.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"abc")
    with pytest.raises(ValueError, match="short.idx.*3 bytes.*needs 10"):
        idx.read_idx(str(short))


# ---- Fashion-MNIST source ------------------------------------------------------------------

def test_fashion_mnist_reads_data_dir_first_and_normalises(tmp_path):
    arrays = _write_fashion_dir(str(tmp_path / "fm"))
    x, y, info = data.load_arrays("fashion_mnist", "train", data_dir=str(tmp_path / "fm"))
    images, labels = arrays["train"]
    assert info.num_examples == 12 and info.image_shape == (28, 28, 1) and info.num_classes == 10
    assert info.class_names[0] == "T-shirt/top" and info.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(y, labels)
    expected = (images[..., None] / 255.0 - FMNIST_MEAN) / FMNIST_STD
    np.testing.assert_allclose(x, expected, atol=1e-5)
    xt, yt, _ = data.load_arrays("fashion_mnist", "test", data_dir=str(tmp_path / "fm"))
    assert xt.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(yt, arrays["t10k"][1])


def test_fashion_mnist_search_order_debian_then_keras_cache(tmp_path, monkeypatch):
    debian, home = tmp_path / "debian", tmp_path / "home"
    _write_fashion_dir(str(home / ".keras" / "datasets" / "fashion-mnist"), offset=3)
    monkeypatch.setattr(idx, "DEBIAN_DIR", str(debian))
    monkeypatch.setenv("HOME", str(home))
    _, y, _ = data.load_arrays("fashion_mnist", "train")
    assert y[0] == 3                               # from the Keras cache
    _write_fashion_dir(str(debian), offset=5)
    _, y, _ = data.load_arrays("fashion_mnist", "train")
    assert y[0] == 5                               # the Debian package wins over the cache


def test_fashion_mnist_missing_everywhere_is_one_line_naming_places_and_apt(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "DEBIAN_DIR", str(tmp_path / "nodebian"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_network(*args, **kwargs):
        raise ConnectionError("no network")
    monkeypatch.setattr(pipeline, "_open_tfds", no_network)
    with pytest.raises(FileNotFoundError) as err:
        data.load("fashion_mnist", "train")
    msg = str(err.value)
    assert "\n" not in msg
    for place in (str(tmp_path / "nodebian"),
                  os.path.join(str(tmp_path / "home"), ".keras", "datasets", "fashion-mnist"),
                  "dataset-fashion-mnist", "no network"):
        assert place in msg


def test_fashion_mnist_data_dir_never_falls_back_to_the_system_copy(tmp_path, monkeypatch):
    system = tmp_path / "debian"
    _write_fashion_dir(str(system))                 # a complete system copy exists ...
    monkeypatch.setattr(idx, "DEBIAN_DIR", str(system))
    with pytest.raises(FileNotFoundError, match=r"nonexistent' does not exist") as err:
        data.load("fashion_mnist", "train", data_dir=str(tmp_path / "nonexistent"))
    assert "\n" not in str(err.value)
    partial = tmp_path / "partial"
    _write_fashion_dir(str(partial))
    os.remove(partial / "t10k-labels-idx1-ubyte.gz")  # ... but data_dir has 3 of the 4 files
    with pytest.raises(FileNotFoundError,
                       match=r"has 3 of the 4 .*missing t10k-labels-idx1-ubyte\[\.gz\]"):
        data.load("fashion_mnist", "train", data_dir=str(partial))


def test_truncated_idx_under_load_is_one_line_naming_the_file(tmp_path):
    _write_fashion_dir(str(tmp_path / "fm"))
    path = tmp_path / "fm" / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    with gzip.open(path, "wb") as f:
        f.write(raw[:len(raw) - 100])               # a cut-short body
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: IDX body has") as err:
        data.load("fashion_mnist", "train", data_dir=str(tmp_path / "fm"))
    assert "\n" not in str(err.value)
    path.write_bytes(path.read_bytes()[:40])        # a cut-short gzip stream
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: cannot read IDX"):
        data.load("fashion_mnist", "train", data_dir=str(tmp_path / "fm"))


@needs_fashion_mnist
def test_fashion_mnist_constants_match_the_train_split():
    x = idx.load_fashion_mnist(idx.find_fashion_mnist(), "train")[0]
    counts = np.bincount(x.ravel(), minlength=256).astype(np.float64)  # exact, from a histogram
    values = np.arange(256) / 255.0
    mean = [counts @ values / counts.sum()]
    std = [np.sqrt(counts @ (values - mean[0]) ** 2 / counts.sum())]
    assert mean[0] == pytest.approx(FMNIST_MEAN, abs=1e-6)
    assert std[0] == pytest.approx(FMNIST_STD, abs=1e-6)


@needs_fashion_mnist
def test_fashion_mnist_resized_to_rgb_32_feeds_cifar_models():
    x, y, info = data.load_arrays("fashion_mnist", "test", limit=10, image_size=32, to_rgb=True)
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.float32 and y.shape == (10,)
    assert info.image_shape == (32, 32, 3) and len(info.mean) == 3
    np.testing.assert_array_equal(x[..., 0], x[..., 2])   # grey repeated


# ---- folder source -----------------------------------------------------------------------

def _write_folder(root, corrupt=False):
    from PIL import Image
    rng = np.random.default_rng(0)
    pixels = {}
    for split in ("train", "test"):
        for cls in ("dog", "cat"):
            os.makedirs(root / split / cls, exist_ok=True)
            for i in range(3):
                arr = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
                if i == 2:   # lossy: not compared pixel by pixel
                    Image.fromarray(arr).save(root / split / cls / f"{i}.jpg", quality=90)
                else:
                    Image.fromarray(arr).save(root / split / cls / f"{i}.png")
                    pixels[(split, cls, i)] = arr
    (root / "train" / "dog" / ".DS_Store").write_bytes(b"junk")   # hidden: ignored
    if corrupt:
        (root / "train" / "cat" / "broken.png").write_bytes(b"\x89PNG not really an image")
    return pixels


def test_folder_source_classes_labels_and_pixels(tmp_path):
    pixels = _write_folder(tmp_path)
    x, y, info = data.load_arrays(f"folder:{tmp_path}", "train")
    assert info.class_names == ("cat", "dog") and info.num_classes == 2
    assert info.image_shape == (8, 8, 3) and info.num_examples == 6
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])
    raw = x[0] * np.array(info.std) + np.array(info.mean)       # cat/0.png
    np.testing.assert_allclose(raw, pixels[("train", "cat", 0)] / 255.0, atol=1e-5)
    xt, yt, tinfo = data.load_arrays(f"folder:{tmp_path}", "test")
    assert xt.shape == (6, 8, 8, 3) and tinfo.mean == info.mean  # train statistics, cached


def test_folder_source_corrupt_file_is_named_or_skipped_and_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("TFOPT_CACHE_DIR", str(tmp_path / "cache"))
    _write_folder(tmp_path / "d", corrupt=True)
    with pytest.raises(ValueError, match=r"broken\.png: not a decodable image.*skip_bad_files"):
        data.load(f"folder:{tmp_path / 'd'}", "train")
    ds, info = data.load(f"folder:{tmp_path / 'd'}", "train", skip_bad_files=True,
                         batch_size=4)
    assert info.num_skipped == 1 and info.num_examples == 6
    assert sum(int(b[1].shape[0]) for b in ds) == 6


def test_folder_source_missing_layout_is_a_clear_error(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "a.png").write_bytes(b"not decoded before the layout check")
    with pytest.raises(ValueError, match="test or .*val directory"):
        data.load(f"folder:{tmp_path}", "test")


# ---- tfds source (offline, mocked) -------------------------------------------------------

def test_tfds_cifar10_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=20, data_dir=str(tmp_path)):
        ds, info = data.load_epochs("cifar10", "train", batch_size=8, augment=True)
        batches = list(ds.dataset)
        stream, steps = data.epoch_stream(ds, 0, 2)      # what fit uses: 2 epochs of 3 steps
        stream_batches = [b[1].numpy() for b in stream]
        epoch1 = [b[1].numpy() for b in ds.epoch(1)]
        xs, ys, small = data.load_arrays("cifar10", "test", image_size=16)
    assert info.num_classes == 10 and info.image_shape == (32, 32, 3)
    assert len(info.class_names) == 10 and info.num_examples == 20
    assert info.mean == NORMALISATION["cifar10"][0]
    assert [int(b[0].shape[0]) for b in batches] == [8, 8, 4]
    assert steps == 3 and len(stream_batches) == 6
    for a, b in zip(stream_batches[3:], epoch1):          # epoch 1 replays exactly
        np.testing.assert_array_equal(a, b)
    assert batches[0][0].dtype.name == "float32" and batches[0][1].dtype.name == "int32"
    assert xs.shape == (20, 16, 16, 3) and small.image_shape == (16, 16, 3)
    assert ys.min() >= 0 and ys.max() < 10


def test_tfds_unknown_statistics_are_computed_once_and_cached(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds
    monkeypatch.setenv("TFOPT_CACHE_DIR", str(tmp_path / "cache"))
    with tfds.testing.mock_data(num_examples=10, data_dir=str(tmp_path)):
        _, info = data.load("mnist", "test")
    assert info.image_shape == (28, 28, 1) and len(info.mean) == 1 and info.std[0] > 0
    cached = os.listdir(tmp_path / "cache" / "stats")
    assert len(cached) == 1 and cached[0].startswith("tfds-mnist")


def test_unknown_source_suggests_close_names():
    with pytest.raises(ValueError, match="unknown data source 'cifar11'.*cifar10"):
        data.load("cifar11", "train")


# ---- pipeline behaviour ------------------------------------------------------------------

def test_synthetic_is_deterministic_and_shaped():
    x1, y1, info = data.load_arrays("synthetic:8x8x3:4:64", "train")
    x2, y2, _ = data.load_arrays("synthetic:8x8x3:4:64", "train")
    assert x1.shape == (64, 8, 8, 3) and info.num_classes == 4
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert data.load_arrays("synthetic:8x8x3:4:64", "test")[0].shape == (16, 8, 8, 3)
    with pytest.raises(ValueError, match="synthetic"):
        data.load("synthetic:8x8", "train")


def test_shuffle_is_a_seeded_permutation_per_epoch():
    epochs, info = data.load_epochs("synthetic:4x4x1:3:50", "train", batch_size=16, seed=1)
    fn, ds = epochs.epoch, epochs.dataset

    def order(epoch_ds):
        return np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in epoch_ds])
    x, _, _ = data.load_arrays("synthetic:4x4x1:3:50", "train")
    e0, e0_again, e1 = order(fn(0)), order(fn(0)), order(fn(1))
    np.testing.assert_array_equal(e0, e0_again)
    assert not np.array_equal(e0, e1)
    np.testing.assert_allclose(np.sort(e0), np.sort(x[:, 0, 0, 0]), atol=1e-6)  # each once
    passes = [order(ds), order(ds)]                 # iterating: a new order on each pass
    assert not np.array_equal(passes[0], passes[1])
    stream, steps = data.epoch_stream(epochs, 1, 2)
    assert steps == 4 and data.epoch_stream(ds, 1, 2) is None   # a plain dataset: no replay
    np.testing.assert_array_equal(order(stream), e1)
    assert not hasattr(ds, "_tfopt_epoch_fn")           # nothing hidden on the tf.data object
    assert epochs.tensor_epoch                          # array source: one flat_map stream
    three, _ = epochs.stream(0, 3)
    np.testing.assert_array_equal(order(three), np.concatenate([e0, e1, order(fn(2))]))


def test_augmentation_is_pad4_crop_and_flip_of_the_original():
    source = "synthetic:6x6x1:2:40"
    x, _, info = data.load_arrays(source, "train")
    ds, _ = data.load_epochs(source, "train", batch_size=40, augment=True, shuffle=False)
    aug = next(iter(ds.epoch(0)))[0].numpy()
    pad_value = -info.mean[0] / info.std[0]
    flips = shifts = 0
    for orig, out in zip(x, aug):
        padded = np.pad(orig[..., 0], 4, constant_values=pad_value)
        candidates = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (0, 1)
                      if np.allclose(out[..., 0], (padded[dy:dy + 6, dx:dx + 6][:, ::-1] if f
                                                   else padded[dy:dy + 6, dx:dx + 6]), atol=1e-5)]
        assert candidates, "augmented image is not a padded crop/flip of its original"
        flips += candidates[0][2]
        shifts += (candidates[0][0], candidates[0][1]) != (4, 4)
    assert 5 < flips < 35 and shifts > 20
    again = next(iter(ds.epoch(0)))[0].numpy()
    np.testing.assert_array_equal(aug, again)        # same epoch -> same draws


def test_load_validates_arguments():
    with pytest.raises(ValueError, match="batch_size=0"):
        data.load("synthetic", "train", batch_size=0)
    with pytest.raises(ValueError, match="split='tran'.*train"):
        data.load("synthetic", "tran")
    with pytest.raises(ValueError, match="image_size"):
        data.load("synthetic", "train", image_size=(0, 3))


def test_representative_dataset_is_seeded_and_repeatable():
    rep = data.representative_dataset("synthetic:8x8x1:3:64", num_samples=5, seed=0,
                                      to_rgb=True, image_size=10)
    first = [s[0] for s in rep()]
    second = [s[0] for s in rep()]
    assert len(first) == 5 and first[0].shape == (1, 10, 10, 3) and first[0].dtype == np.float32
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = [s[0] for s in data.representative_dataset("synthetic:8x8x1:3:64", num_samples=5,
                                                       seed=1, to_rgb=True, image_size=10)()]
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    with pytest.raises(ValueError, match="unknown pre-processing"):
        data.representative_dataset("synthetic", augment=True)
