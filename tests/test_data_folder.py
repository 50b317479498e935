"""folder:PATH sources streamed from disk: stratified subsets, the validation hold-out,
statistics from every class, the cache directory, and one-line errors for bad folders."""

import os

import numpy as np
import pytest

import tfopt.data as data
from tfopt.data import subsets


def _make(root, counts, *, size=(8, 8), value=None, splits=("train",), mode="RGB"):
    """root/<split>/c<k>/<i>.png; class k's pixels are `value[k]` if given, else random."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in splits:
        for k, n in enumerate(counts):
            os.makedirs(root / split / f"c{k}", exist_ok=True)
            for i in range(n):
                shape = (*size, 3) if mode == "RGB" else size
                arr = (np.full(shape, value[k], np.uint8) if value is not None
                       else rng.integers(0, 256, size=shape, dtype=np.uint8))
                Image.fromarray(arr).save(root / split / f"c{k}" / f"{i:03d}.png")
    return f"folder:{root}"


def _labels(source, split, **kw):
    _, y, info = data.load_arrays(source, split, **kw)
    return y, info


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TFOPT_CACHE_DIR", str(tmp_path / "cache"))


def test_take_is_within_one_of_the_share_for_every_limit_and_nested():
    labels = np.repeat(np.arange(4), 6)
    previous = set()
    for n in range(1, 25):
        picked = subsets.take(labels, n, 4)
        counts = np.bincount(labels[picked], minlength=4)
        assert counts.sum() == n and counts.max() - counts.min() <= 1
        assert previous <= set(picked.tolist())     # nested in n
        previous = set(picked.tolist())
    # a small class gives all it has; the others share the rest evenly
    quota = subsets.quotas(np.array([7, 5, 2]), 9)
    assert quota.tolist() == [4, 3, 2]


def test_folder_limit_is_stratified_not_the_first_files(tmp_path):
    source = _make(tmp_path, [5, 5, 5], splits=("train", "test"))
    y, info = _labels(source, "train", limit=6)
    assert np.bincount(y, minlength=3).tolist() == [2, 2, 2] and info.num_examples == 6
    y, _ = _labels(source, "test", limit=4)
    assert sorted(np.bincount(y, minlength=3).tolist()) == [1, 1, 2]


def test_val_fraction_holds_out_a_stratified_disjoint_split(tmp_path):
    source = _make(tmp_path, [10, 10, 4])
    with pytest.raises(ValueError, match=r"no .*test or .*val directory.*val_fraction"):
        data.load(source, "test")
    xv, yv, vinfo = data.load_arrays(source, "validation", val_fraction=0.2)
    xt, yt, _ = data.load_arrays(source, "test", val_fraction=0.2)      # no test/: the hold-out
    xtr, ytr, tinfo = data.load_arrays(source, "train", val_fraction=0.2)
    assert np.bincount(yv, minlength=3).tolist() == [2, 2, 1]           # round(0.2 n), >= 1
    assert np.bincount(ytr, minlength=3).tolist() == [8, 8, 3]
    np.testing.assert_array_equal(xv, xt)
    rows = {x.tobytes() for x in xtr}
    assert not any(x.tobytes() in rows for x in xv)                     # disjoint
    assert vinfo.mean == tinfo.mean                                     # train-part statistics
    with pytest.raises(ValueError, match=r"val_fraction=1\.5; expected None or a number"):
        data.load(source, "train", val_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction=0.1 is for folder:PATH sources only"):
        data.load("synthetic", "train", val_fraction=0.1)


def test_statistics_cover_every_class_and_do_not_depend_on_call_order(tmp_path):
    # 40 black images sort before 40 white ones: a first-N sample would see black only
    a = _make(tmp_path / "a", [40, 40], value=[0, 255], splits=("train", "test"))
    _, info_test_first = data.load(a, "test", limit=2)
    _, info_train = data.load(a, "train", limit=4)
    assert info_test_first.mean == info_train.mean
    assert info_train.mean == pytest.approx((0.5, 0.5, 0.5), abs=1e-6)
    assert info_train.std == pytest.approx((0.5, 0.5, 0.5), abs=1e-6)


def test_cache_goes_to_cache_dir_keyed_by_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TFOPT_CACHE_DIR")
    source = _make(tmp_path / "d", [3, 3])
    data.load(source, "train", cache_dir=str(tmp_path / "wd" / "data_cache"))
    cached = sorted(os.listdir(tmp_path / "wd" / "data_cache" / "stats"))
    assert len(cached) == 2 and not os.path.exists(tmp_path / "home" / ".cache")
    # a changed file changes the key: the decode check runs again and finds it
    (tmp_path / "d" / "train" / "c1" / "000.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(ValueError, match=r"c1/000\.png: not a decodable image"):
        data.load(source, "train", cache_dir=str(tmp_path / "wd" / "data_cache"))


def test_empty_class_folder_is_a_one_line_error(tmp_path):
    source = _make(tmp_path, [2, 2])
    os.makedirs(tmp_path / "train" / "empty")
    with pytest.raises(ValueError, match=r"class folder .*train/empty has no images") as err:
        data.load(source, "train")
    assert "\n" not in str(err.value)


def test_grey_mixed_sizes_and_image_size(tmp_path):
    from PIL import Image
    source = _make(tmp_path, [2, 2], mode="L")
    _, info = data.load(source, "train")
    assert info.image_shape == (8, 8, 1)
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "train" / "c0" / "odd.png")
    with pytest.raises(ValueError, match=r"different sizes .*image_size"):
        data.load(source, "train")
    x, _, info = data.load_arrays(source, "train", image_size=6)
    assert x.shape == (5, 6, 6, 1) and info.image_shape == (6, 6, 1)


def test_stream_arrays_matches_load_arrays_and_epochs_replay(tmp_path):
    source = _make(tmp_path, [5, 4])
    x, y, _ = data.load_arrays(source, "train")
    batches, info = data.stream_arrays(source, "train", batch_size=4)
    assert len(batches) == 3 and info.num_examples == 9
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    ds, _ = data.load_epochs(source, "train", batch_size=4, augment=True, seed=3)
    epoch1 = [b[0].numpy() for b in ds.epoch(1)]
    stream, steps = data.epoch_stream(ds, 1, 2)
    assert steps == 3
    for a, b in zip([b[0].numpy() for b in stream], epoch1):
        np.testing.assert_array_equal(a, b)


# ---- tfopt.train on folders ------------------------------------------------------------------

def _train_cli(run_cli, *args):
    from tfopt.train import cli

    return run_cli(cli.main, "--model=tiny_cnn", "--epochs=1", "--width_multiplier=0.25",
                   "--batch_size=8", "--verbose=0", *args)


def test_train_cli_folder_without_test_needs_a_valid_test_fraction(tmp_path, run_cli):
    source = _make(tmp_path / "d", [2, 2])
    proc = _train_cli(run_cli, f"--dataset={source}", f"--workdir={tmp_path / 'w'}")
    assert proc.returncode == 2 and "--test_fraction" in proc.stderr.strip().splitlines()[-1]
    proc = _train_cli(run_cli, f"--dataset={source}", f"--workdir={tmp_path / 'w'}",
                      "--test_fraction=2")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --test_fraction=2.0: expected a number in (0, 1) (or leave it unset)")


@pytest.mark.slow
def test_train_cli_test_fraction_trains_on_a_folder_without_test(tmp_path, run_cli):
    import json
    source = _make(tmp_path / "d", [8, 8])
    proc = _train_cli(run_cli, f"--dataset={source}", f"--workdir={tmp_path / 'w'}",
                      "--test_fraction=0.25")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert metrics["test_examples"] == 4 and metrics["train_examples"] == 12
    assert os.listdir(tmp_path / "w" / "data_cache" / "stats")


def test_train_cli_corrupt_image_is_one_line_naming_the_file_and_the_flag(tmp_path, run_cli):
    source = _make(tmp_path / "d", [3, 3], splits=("train", "test"))
    (tmp_path / "d" / "test" / "c0" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    proc = _train_cli(run_cli, f"--dataset={source}", f"--workdir={tmp_path / 'w'}")
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "test/c0/bad.jpg: not a decodable image" in last and "--skip_bad_files" in last


def test_representative_dataset_from_a_folder_is_repeatable(tmp_path):
    source = _make(tmp_path, [4, 4])
    rep = data.representative_dataset(source, num_samples=3, val_fraction=0.25)
    first, second = [s[0] for s in rep()], [s[0] for s in rep()]
    assert len(first) == 3 and first[0].shape == (1, 8, 8, 3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert rep.info.num_examples == 6                     # the train part only
