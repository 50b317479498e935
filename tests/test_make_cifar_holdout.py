"""benchmarks/make_cifar_holdout.py: a disjoint, stratified train/ + test/ layout (hard links)."""

import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "make_cifar_holdout", os.path.join(REPO, "benchmarks", "make_cifar_holdout.py"))
holdout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(holdout)


def _src(tmp_path, per_class=5):
    for cls in ("cat", "dog"):
        os.makedirs(tmp_path / "src" / "train" / cls)
        for i in range(per_class):
            (tmp_path / "src" / "train" / cls / f"{i:04d}.jpg").write_bytes(b"x" * (i + 1))
    return str(tmp_path / "src"), str(tmp_path / "dst")


def test_last_images_of_every_class_are_held_out(tmp_path):
    src, dst = _src(tmp_path)
    assert holdout.make_holdout(src, dst, 2) == {"cat": (3, 2), "dog": (3, 2)}
    assert sorted(os.listdir(os.path.join(dst, "test", "cat"))) == ["0003.jpg", "0004.jpg"]
    train = set(os.listdir(os.path.join(dst, "train", "dog")))
    assert train == {"0000.jpg", "0001.jpg", "0002.jpg"}
    assert os.path.samefile(os.path.join(dst, "test", "cat", "0004.jpg"),
                            os.path.join(src, "train", "cat", "0004.jpg"))
    assert holdout.make_holdout(src, dst, 2) == {"cat": (3, 2), "dog": (3, 2)}  # re-run: no-op


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    src, dst = _src(tmp_path)
    assert holdout.main([f"--src={src}", f"--dst={dst}", "--per_class=5"]) == 2
    assert "--per_class=5" in capsys.readouterr().err
    assert holdout.main([f"--src={src}", f"--dst={src}"]) == 2
    assert holdout.main([f"--src={dst}", f"--dst={src}"]) == 2
    with pytest.raises(ValueError, match="no train/"):
        holdout.make_holdout(str(tmp_path), dst, 1)
