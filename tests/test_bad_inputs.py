"""Bad input to every CLI: exactly one line on stderr naming the bad value, exit status 2, and
never a traceback (issue 11; the shared wrapper is `tfopt.core.cli`).

The CLIs run in-process (`main(argv)`: each has its own absl FlagValues, the ablation owns the
global one), so the cases stay fast; `test_real_entry_points` runs a few as real programs.
The fixtures are built here: a tiny trained-free model (.keras, .h5), a Lambda .h5, a model
without Conv2D layers, a float32 .tflite, corrupted copies, a non-tflite file, a .keras zip
without config.json, image folders (empty class folder, corrupt JPEG), IDX folders (3 of 4
files, a truncated file), flagfiles with a trailing comment, an ablation results folder.

Related cases elsewhere: the lock race (two processes, 200 rounds) and --overwrite on a live
run in tests/test_store.py; a second live ablation driver in tests/test_ablation.py.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tfopt.compress import ocnna_cli
from tfopt.experiments import ablation, fit, recommend
from tfopt.models import __main__ as models_cli
from tfopt.tflite import __main__ as tflite_cli
from tfopt.train import cli as train_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAINS = {"train": train_cli.main, "models": models_cli.main, "tflite": tflite_cli.main,
         "ocnna": ocnna_cli.main, "ablation": ablation.main, "fit": fit.main,
         "recommend": recommend.main}
SYN = "synthetic:8x8x1:2:16"      # the fixtures' models: 8x8x1 in, 2 classes out
SYN10 = "synthetic:8x8x1:10:40"   # ten classes: wrong for them


def _idx(path, array, *, truncate=False):
    """An IDX file (uint8) holding `array`; with `truncate` its body is cut short."""
    header = struct.pack(">HBB", 0, 8, array.ndim) + b"".join(struct.pack(">I", d)
                                                              for d in array.shape)
    body = array.astype(np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(header + (body[: len(body) // 2] if truncate else body))


def _image_folder(root, *, empty_class=False, corrupt=False):
    from PIL import Image

    for split in ("train", "test"):
        for c in ("a", "b"):
            d = os.path.join(root, split, c)
            os.makedirs(d)
            for i in range(3):
                Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(
                    os.path.join(d, f"{i}.png"))
    if empty_class:
        os.makedirs(os.path.join(root, "train", "c_empty"))
    if corrupt:
        with open(os.path.join(root, "train", "a", "bad.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 not a jpeg at all")
    return str(root)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """Every file the cases name, built once: {name: path}."""
    from tfopt._keras import keras, layers

    root = tmp_path_factory.mktemp("bad_inputs")
    p = {"tmp": str(root)}

    def conv_model():
        inp = keras.Input((8, 8, 1))
        x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inp, layers.Dense(2, name="logits")(x))

    model = conv_model()
    p["keras"], p["h5"] = str(root / "m.keras"), str(root / "m.h5")
    model.save(p["keras"])
    model.save(p["h5"])
    inp = keras.Input((8, 8, 1))
    lam = layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(2, 3, name="conv")(lam))
    p["lambda_h5"] = str(root / "lambda.h5")
    keras.Model(inp, layers.Dense(2)(x)).save(p["lambda_h5"])
    inp = keras.Input((8, 8, 1))
    p["noconv"] = str(root / "noconv.keras")
    keras.Model(inp, layers.Dense(2)(layers.Flatten()(inp))).save(p["noconv"])

    p["tflite"] = str(root / "m.tflite")
    assert tflite_cli.main(["convert", p["keras"], "--mode=float32", f"--out={p['tflite']}"]) == 0
    with open(p["tflite"], "rb") as f:
        blob = f.read()
    p["trunc_tflite"] = str(root / "trunc.tflite")
    with open(p["trunc_tflite"], "wb") as f:
        f.write(blob[: len(blob) // 3])
    p["text_tflite"] = str(root / "notes.tflite")
    with open(p["text_tflite"], "w") as f:
        f.write("this is not a flatbuffer\n" * 20)
    p["empty_file"] = str(root / "empty.tflite")
    open(p["empty_file"], "w").close()
    p["trunc_keras"] = str(root / "trunc.keras")
    with open(p["keras"], "rb") as f, open(p["trunc_keras"], "wb") as g:
        g.write(f.read()[:200])
    p["noconfig_keras"] = str(root / "noconfig.keras")
    with zipfile.ZipFile(p["noconfig_keras"], "w") as z:
        z.writestr("metadata.json", "{}")
    p["text_h5"] = str(root / "text.h5")
    with open(p["text_h5"], "w") as f:
        f.write("not hdf5")

    p["folder_empty_class"] = _image_folder(root / "f_empty", empty_class=True)
    p["folder_corrupt"] = _image_folder(root / "f_corrupt", corrupt=True)
    os.makedirs(root / "f_noclass" / "train")
    p["folder_noclass"] = str(root / "f_noclass")
    os.makedirs(root / "f_notest" / "train" / "a")
    p["folder_notest"] = str(root / "f_notest")

    rng = np.random.default_rng(0)
    idx3, idx_trunc = root / "idx3", root / "idx_trunc"
    for d in (idx3, idx_trunc):
        os.makedirs(d)
        for split, n in (("train", 20), ("t10k", 10)):
            _idx(d / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)),
                 truncate=(d == idx_trunc and split == "train"))
            _idx(d / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    os.remove(idx3 / "t10k-labels-idx1-ubyte")
    p["idx3"], p["idx_trunc"] = str(idx3), str(idx_trunc)
    p["gz_bad"] = str(root / "idx_gz")
    os.makedirs(p["gz_bad"])
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with open(os.path.join(p["gz_bad"], name + ".gz"), "wb") as f:
            f.write(b"not gzip")

    p["ff_comment"] = str(root / "comment.cfg")
    with open(p["ff_comment"], "w") as f:
        f.write(f"--model=tiny_cnn\n--workdir={root}/runs/x  # results here\n")
    p["ab_comment"] = str(root / "ab_comment.cfg")
    with open(p["ab_comment"], "w") as f:
        f.write(f"# fine\n--variants=tiny_cnn\n--recipes=none  # baseline\n"
                f"--workdir={root}/ab_c\n")
    p["readonly"] = str(root / "readonly")
    os.makedirs(p["readonly"])
    p["a_file"] = str(root / "a_file.txt")
    with open(p["a_file"], "w") as f:
        f.write("x")
    p["results_dir"] = str(root / "results_empty")
    os.makedirs(p["results_dir"])
    p["results_bad"] = str(root / "results_bad.jsonl")
    with open(p["results_bad"], "w") as f:
        f.write("{not json\n")
    p["ab_ok"] = str(root / "ab.cfg")
    with open(p["ab_ok"], "w") as f:
        f.write(f"--variants=tiny_cnn\n--recipes=none\n--dataset={SYN}\n--train_epochs=1\n")
    return p


# (cli, argv with {fixture} fields, a piece of the one error line)
TRAIN_OK = ["--model=tiny_cnn", f"--dataset={SYN}", "--epochs=1", "--workdir={tmp}/tr_ok"]


def _train(*changes):
    """TRAIN_OK with flags replaced (`--name=...`) or added."""
    argv = list(TRAIN_OK)
    for change in changes:
        key = change.split("=", 1)[0]
        argv = [a for a in argv if a.split("=", 1)[0] != key] + [change]
    return argv


CASES = [
    # ---- tfopt.train: flags -----------------------------------------------------------------
    ("train", _train("--model=tiny_cn"), "did you mean tiny_cnn"),
    ("train", _train("--model=resnet101_v1"), "resnet101_v01"),
    ("train", _train("--model="), "--model="),
    ("train", _train("--epochs=0"), "--epochs=0"),
    ("train", _train("--epochs=-3"), "--epochs=-3"),
    ("train", _train("--epochs=two"), "--epochs=two"),
    ("train", _train("--epochs=1.5"), "--epochs=1.5"),
    ("train", _train("--train_epochs=0"), "--epochs=0"),
    ("train", ["--model=tiny_cnn", f"--dataset={SYN}", "--workdir={tmp}/w"], "--epochs is required"),
    ("train", ["--dataset=x", "--epochs=1", "--workdir={tmp}/w"], "--model is required"),
    ("train", ["--model=tiny_cnn", "--epochs=1", "--workdir={tmp}/w"], "--dataset is required"),
    ("train", ["--model=tiny_cnn", f"--dataset={SYN}", "--epochs=1"], "--workdir is required"),
    ("train", _train("--batch_size=0"), "--batch_size=0"),
    ("train", _train("--batch_size=-1"), "--batch_size=-1"),
    ("train", _train("--optimizer=sgd_onecycl"), "--optimizer=sgd_onecycl"),
    ("train", _train("--optimizer=rmsprop"), "--optimizer=rmsprop"),
    ("train", _train("--max_lr=0"), "--max_lr=0"),
    ("train", _train("--max_lr=-0.1"), "--max_lr=-0.1"),
    ("train", _train("--lr=0"), "--lr=0"),
    ("train", _train("--weight_decay=-1"), "--weight_decay=-1"),
    ("train", _train("--width_multiplier=0"), "--width_multiplier=0"),
    ("train", _train("--image_size=0"), "--image_size=0"),
    ("train", _train("--limit=0"), "--limit=0"),
    ("train", _train("--train_limit=-5"), "--limit=-5"),
    ("train", _train("--test_limit=0"), "--test_limit=0"),
    ("train", _train("--val_fraction=1"), "--val_fraction=1"),
    ("train", _train("--val_fraction=-0.1"), "--val_fraction=-0.1"),
    ("train", _train("--early_stopping_patience=3"), "--early_stopping_patience=3"),
    ("train", _train("--val_fraction=0.2", "--early_stopping_patience=-1"),
     "--early_stopping_patience=-1"),
    ("train", _train("--verbose=5"), "--verbose=5"),
    ("train", _train("--mixed_precision=maybe"), "--mixed_precision=maybe"),
    ("train", _train("--test_fraction=0.3"), "--test_fraction is for folder"),
    ("train", _train("--dataset=folder:{folder_notest}", "--test_fraction=1.5"),
     "--test_fraction=1.5"),
    ("train", _train("--bogus=1"), "bogus"),
    ("train", _train("--augment=maybe"), "augment"),
    ("train", [*TRAIN_OK, "stray"], "unexpected arguments"),
    ("train", _train("--flagfile={tmp}/no_such.cfg"), "no_such.cfg"),
    ("train", ["--flagfile={ff_comment}", f"--dataset={SYN}", "--epochs=1"],
     "comment after a value"),
    ("train", _train("--workdir=/proc/x"), "--workdir=/proc/x"),
    ("train", _train("--workdir={a_file}"), "a file of that name exists"),
    ("train", _train("--workdir=  "), "--workdir="),
    # ---- tfopt.train: data ------------------------------------------------------------------
    ("train", _train("--dataset=fashion_mnst"), "fashion_mnst"),
    ("train", _train("--dataset=synthetic:8x8"), "synthetic:8x8"),
    ("train", _train("--dataset=synthetic:8x8x1:0:10"), "synthetic:8x8x1:0:10"),
    ("train", _train("--dataset=folder:/nonexistent"), "/nonexistent"),
    ("train", _train("--dataset=folder:{folder_notest}"), "test"),
    ("train", _train("--dataset=folder:{folder_noclass}", "--test_fraction=0.5"),
     "class sub-folders"),
    ("train", _train("--dataset=fashion_mnist", "--data_dir=/nonexistent"), "--data_dir"),
    ("train", _train("--dataset=fashion_mnist", "--data_dir={idx3}"), "3 of the 4"),
    ("train", _train("--dataset=fashion_mnist", "--data_dir={a_file}"), "--data_dir"),
    # ---- tfopt.models -----------------------------------------------------------------------
    ("models", ["summary", "resnet101_v1"], "resnet101_v01"),
    ("models", ["summary", "tiny_cn"], "tiny_cnn"),
    ("models", ["summary"], "VARIANT"),
    ("models", ["summary", "tiny_cnn", "extra"], "extra"),
    ("models", ["summary", "vgg19[unit=nope]"], "nope"),
    ("models", ["summary", "resnet101[block=ghst]"], "ghst"),
    ("models", ["summary", "tiny_cnn", "--num_classes=0"], "--num_classes=0"),
    ("models", ["summary", "tiny_cnn", "--num_classes=ten"], "--num_classes=ten"),
    ("models", ["summary", "tiny_cnn", "--width_multiplier=-1"], "--width_multiplier=-1"),
    ("models", ["summary", "tiny_cnn", "--format=xml"], "--format=xml"),
    ("models", ["list", "--match=nothing_*"], "--match="),
    ("models", ["list", "--bogus"], "bogus"),
    ("models", ["lst"], "lst"),
    # ---- tfopt.tflite convert ---------------------------------------------------------------
    ("tflite", ["convert", "{tmp}/missing.keras", "--mode=float32"], "missing.keras"),
    ("tflite", ["convert", "{keras}", "--mode=int4"], "--mode=int4"),
    ("tflite", ["convert", "{keras}", "--mode=int8", f"--dataset={SYN}", "--target=mcu"],
     "--target=mcu"),
    ("tflite", ["convert", "{keras}", "--mode=int8"], "--dataset"),
    ("tflite", ["convert", "{keras}", "--mode=int8", f"--dataset={SYN}", "--calibration=kl"],
     "--calibration=kl"),
    ("tflite", ["convert", "{keras}", "--mode=int8", f"--dataset={SYN}",
                "--num_calibration_samples=0"], "--num_calibration_samples=0"),
    ("tflite", ["convert", "{keras}", "--mode=int8", f"--dataset={SYN}", "--image_size=0"],
     "--image_size=0"),
    ("tflite", ["convert", "{keras}", "--mode=int8", f"--dataset={SYN}", "--image_size=8x"],
     "--image_size=8x"),
    ("tflite", ["convert", "{keras}", "--mode=int8", f"--dataset={SYN}", "--image_size=axb"],
     "--image_size=axb"),
    ("tflite", ["convert", "{keras}", "--mode=float32", "--out={tmp}"], "--out="),
    ("tflite", ["convert", "{keras}", "--mode=float32", "--out=/proc/x/m.tflite"], "--out="),
    ("tflite", ["convert", "{lambda_h5}", "--mode=float32", "--out={tmp}/l.tflite"],
     "--unsafe_load"),
    ("tflite", ["convert", "{trunc_keras}", "--mode=float32", "--out={tmp}/t.tflite"],
     "trunc.keras"),
    ("tflite", ["convert", "{noconfig_keras}", "--mode=float32", "--out={tmp}/n.tflite"],
     "noconfig.keras"),
    ("tflite", ["convert", "{text_h5}", "--mode=float32", "--out={tmp}/t2.tflite"], "text.h5"),
    ("tflite", ["convert", "{keras}", "--mode=int8", f"--dataset={SYN10}",
                "--out={tmp}/c10.tflite"], "10 classes"),
    ("tflite", ["convert", "{keras}", "--mode=int8", "--dataset=synthetic:16x16x3:2:16",
                "--out={tmp}/s.tflite"], "shape"),
    ("tflite", ["convert", "{keras}", "--mode=int8", "--dataset=nope_data",
                "--out={tmp}/nd.tflite"], "nope_data"),
    ("tflite", ["convert"], "MODEL"),
    ("tflite", ["convert", "{keras}", "{h5}"], "MODEL"),
    ("tflite", ["convert", "{keras}", "--bogus"], "bogus"),
    ("tflite", ["convrt", "{keras}"], "convrt"),
    # ---- tfopt.tflite evaluate / inspect / export ------------------------------------------
    ("tflite", ["evaluate", "{tmp}/missing.tflite"], "missing.tflite"),
    ("tflite", ["evaluate", "{text_tflite}", "--runs=1"], "notes.tflite"),
    ("tflite", ["evaluate", "{trunc_tflite}", "--runs=1"], "trunc.tflite"),
    ("tflite", ["evaluate", "{empty_file}", "--runs=1"], "empty.tflite"),
    ("tflite", ["evaluate", "{keras}", "--runs=1"], "m.keras"),
    ("tflite", ["evaluate", "{tmp}", "--runs=1"], "not a folder"),
    ("tflite", ["evaluate", "{tflite}", "--runs=0"], "--runs=0"),
    ("tflite", ["evaluate", "{tflite}", "--runs=-2"], "--runs=-2"),
    ("tflite", ["evaluate", "{tflite}", "--limit=0"], "--limit=0"),
    ("tflite", ["evaluate", "{tflite}", "--runs=1", f"--dataset={SYN10}"], "10 classes"),
    ("tflite", ["evaluate", "{tflite}", "--runs=1", "--dataset=synthetic:16x16x1:2:16"],
     "16"),
    ("tflite", ["evaluate", "{tflite}", "--runs=1", "--dataset=fashion_mnst"], "fashion_mnst"),
    ("tflite", ["evaluate", "{tflite}", "--runs=1", f"--dataset={SYN}", "--split=dev"], "dev"),
    ("tflite", ["inspect", "{text_tflite}", "--no_profile", "--no_micro"], "notes.tflite"),
    ("tflite", ["inspect", "{tflite}", "--runs=0"], "--runs=0"),
    ("tflite", ["inspect", "{tflite}", "--format=xml"], "--format=xml"),
    ("tflite", ["inspect", "{tmp}/missing.tflite"], "missing.tflite"),
    ("tflite", ["export", "{tflite}", "--out={tmp}/ex", "--name=../../escape", "--no_micro"],
     "escape"),
    ("tflite", ["export", "{tflite}", "--out={tmp}/ex", "--name=/abs/x", "--no_micro"], "x"),
    ("tflite", ["export", "{text_tflite}", "--out={tmp}/ex2", "--no_micro"], "notes.tflite"),
    ("tflite", ["export", "{tflite}", "--out=/proc/ex", "--no_micro"], "--out="),
    ("tflite", ["export", "{tflite}", "--out={tmp}/ex3", "--limit=0", "--no_micro"],
     "--limit=0"),
    # ---- OCNNA ------------------------------------------------------------------------------
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=130", "--out={tmp}/o1"], "--k=130"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=-1", "--out={tmp}/o1"], "--k=-1"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=abc", "--out={tmp}/o1"], "--k=abc"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--out={tmp}/o1"], "--k is required"),
    ("ocnna", [f"--dataset={SYN}", "--k=30", "--out={tmp}/o1"], "--model is required"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30"], "--out is required"),
    ("ocnna", ["--model={tmp}/missing.keras", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1"],
     "missing.keras"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out=/proc/o"], "--out=/proc/o"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={a_file}"], "--out="),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1",
               "--criterion=l2"], "--criterion=l2"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1",
               "--scope=model"], "--scope=model"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1",
               "--tap=relu"], "--tap=relu"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1",
               "--n_images=1"], "--n_images=1"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1",
               "--min_filters=0"], "--min_filters=0"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1",
               "--eval_limit=-1"], "--eval_limit=-1"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1",
               "--finetune_epochs=-1"], "--finetune_epochs=-1"),
    ("ocnna", ["--model={lambda_h5}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1"],
     "--unsafe_load"),
    ("ocnna", ["--model={trunc_keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1"],
     "trunc.keras"),
    ("ocnna", ["--model={noconfig_keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1"],
     "noconfig.keras"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN10}", "--k=30", "--out={tmp}/o1"],
     "10"),
    ("ocnna", ["--model={noconv}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o2",
               "--eval_limit=0"], "no Conv2D layers"),
    ("ocnna", ["--model={keras}", "--dataset=nope_data", "--k=30", "--out={tmp}/o1"],
     "nope_data"),
    ("ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=30", "--out={tmp}/o1", "x"],
     "unexpected arguments"),
    # ---- ablation ---------------------------------------------------------------------------
    ("ablation", ["--variants=tiny_cnn", "--recipes=none"], "--workdir is required"),
    ("ablation", ["--recipes=none", "--workdir={tmp}/ab1"], "--variants is required"),
    ("ablation", ["--variants=resnet101_v1", "--recipes=none", "--workdir={tmp}/ab1"],
     "resnet101_v01"),
    ("ablation", ["--variants=tiny_cnn", "--recipes=prune_global:1.2", "--workdir={tmp}/ab1"],
     "1.2"),
    ("ablation", ["--variants=tiny_cnn", "--recipes=prune_glob:0.5", "--workdir={tmp}/ab1"],
     "prune_glob"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "--train_epochs=0"], "epochs"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "--epochs=0"], "epochs"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir=/proc/ab"], "/proc/ab"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "--data_dir=/nonexistent"],
     "--data_dir=/nonexistent"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "--dataset=nope_data"],
     "nope_data"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "--executor=slurm"], "slurm"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "--convert_modes=int4"], "int4"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "--calibration=entropy"],
     "entropy"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "--tf_log_level=9"],
     "tf_log_level"),
    ("ablation", ["--flagfile={ab_comment}"], "comment after a value"),
    ("ablation", ["--flagfile={tmp}/no_such.cfg"], "no_such.cfg"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab1", "extra"], "unexpected"),
    ("ablation", ["--flagfile={ab_ok}", "--workdir={tmp}/ab_ray", "--executor=ray",
                  "--ray_address=127.0.0.1:1"], "--ray_address=127.0.0.1:1"),
    # ---- fit --------------------------------------------------------------------------------
    ("fit", ["--board=nano", "--out={tmp}/f.cfg"], "nano"),
    ("fit", ["--board=nano33ble", "--out={tmp}/f.cfg", "--widths=abc"], "abc"),
    ("fit", ["--board=nano33ble", "--out={tmp}/f.cfg", "--widths=-1"], "-1"),
    ("fit", ["--board=nano33ble", "--out={tmp}/f.cfg", "--variants=resnet101_v1"], "resnet101_v1"),
    ("fit", ["--board=nano33ble", "--out={tmp}/f.cfg", "--input_shape=32,32"], "input_shape"),
    ("fit", ["--board=nano33ble", "--out={tmp}/f.cfg", "--num_classes=0"], "num_classes"),
    ("fit", ["--board=nano33ble", "--out={tmp}/f.cfg", "--reserve=1.5"], "reserve"),
    ("fit", ["--board=nano33ble", "--out={tmp}/f.cfg", "--bogus"], "bogus"),
    # ---- recommend --------------------------------------------------------------------------
    ("recommend", ["--max_accuracy_drop=1"], "--results"),
    ("recommend", ["--results={results_dir}"], "--max_accuracy_drop"),
    ("recommend", ["--results={tmp}/missing", "--max_accuracy_drop=1"], "missing"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=-1"], "--max_accuracy_drop=-1"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=one"], "max_accuracy_drop"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=1", "--max_flash_kb=-5"],
     "--max_flash_kb=-5"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=1", "--max_arena_kb=-1"],
     "--max_arena_kb=-1"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=1", "--max_flash_kb=0"],
     "--max_flash_kb=0"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=1", "--reserve=1"],
     "--reserve=1"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=1", "--board=nano"], "nano"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=1"], "results_empty"),
    ("recommend", ["--results={results_bad}", "--max_accuracy_drop=1"], "results_bad"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=1", "--metric=size"],
     "size"),
    ("recommend", ["--results={results_dir}", "--max_accuracy_drop=1", "stray"], "unexpected"),
]
# Cases that load data or a model through TensorFlow before failing (a few seconds each).
SLOWISH = {"tflite", "ocnna"}
HEAVY_CASES = [
    ("train", _train("--dataset=fashion_mnist", "--data_dir={idx_trunc}"), "IDX body"),
    ("train", _train("--dataset=fashion_mnist", "--data_dir={gz_bad}"), "gz"),
    ("train", _train("--dataset=folder:{folder_corrupt}"), "--skip_bad_files"),
    ("train", _train("--dataset=folder:{folder_empty_class}"), "has no images"),
]


def _fill(argv, fx):
    return [a.format(**fx) for a in argv]


def _check_one_line(rc, err, expected):
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert rc == 2, (rc, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert expected in lines[0], (expected, lines[0])


def _case_id(case):
    cli_name, argv, _ = case
    return f"{cli_name}:{' '.join(argv)[:60]}"


@pytest.mark.parametrize("case", CASES + HEAVY_CASES, ids=_case_id)
def test_bad_input_is_one_line_and_exit_2(case, fx, capsys, monkeypatch):
    cli_name, argv, expected = case
    monkeypatch.chdir(fx["tmp"])
    monkeypatch.delenv("TFOPT_TRACEBACK", raising=False)
    capsys.readouterr()
    rc = MAINS[cli_name](_fill(argv, fx))
    _check_one_line(rc, capsys.readouterr().err, expected)


def test_at_least_100_cases_across_all_clis():
    cases = CASES + HEAVY_CASES
    assert len(cases) >= 100
    assert {c[0] for c in cases} == set(MAINS)


def test_path_escape_writes_nothing_outside_out(fx, capsys):
    out = os.path.join(fx["tmp"], "esc_out")
    rc = tflite_cli.main(["export", fx["tflite"], f"--out={out}", "--name=../../pwned",
                          "--no_micro"])
    _check_one_line(rc, capsys.readouterr().err, "pwned")
    assert not os.path.exists(os.path.join(os.path.dirname(os.path.dirname(out)),
                                           "pwned.tflite"))


def test_refused_comment_creates_no_folder(fx, capsys):
    rc = train_cli.main(_fill(["--flagfile={ff_comment}", f"--dataset={SYN}", "--epochs=1"], fx))
    _check_one_line(rc, capsys.readouterr().err, "comment")
    assert not os.path.exists(os.path.join(fx["tmp"], "runs"))


def test_ocnna_checks_out_before_loading_the_model(fx, capsys, monkeypatch):
    def boom(*a, **k):  # the model must not load when --out is unusable
        raise AssertionError("model loaded before --out was checked")
    monkeypatch.setattr(ocnna_cli, "_load_model", boom)
    rc = ocnna_cli.main([f"--model={fx['keras']}", f"--dataset={SYN}", "--k=30",
                         "--out=/proc/nope"])
    _check_one_line(rc, capsys.readouterr().err, "--out=/proc/nope")


def test_traceback_env_shows_the_traceback(fx, monkeypatch):
    monkeypatch.setenv("TFOPT_TRACEBACK", "1")
    with pytest.raises(ValueError, match="--k=130"):
        ocnna_cli.main([f"--model={fx['keras']}", f"--dataset={SYN}", "--k=130",
                        f"--out={fx['tmp']}/o9"])


def test_good_input_still_works(fx, capsys):
    assert tflite_cli.main(["inspect", fx["tflite"], "--no_profile", "--no_micro",
                            "--format=json"]) == 0
    assert json.loads(capsys.readouterr().out)["size_bytes"] > 0
    assert models_cli.main(["summary", "tiny_cnn", "--format=json"]) == 0


REAL = [
    ("tfopt.train", ["--model=tiny_cnn", "--dataset=fashion_mnist", "--epochs=1",
                     "--workdir=/proc/x"], "--workdir=/proc/x"),
    ("tfopt.tflite", ["evaluate", "{text_tflite}", "--runs=1"], "notes.tflite"),
    ("tfopt.tflite", ["convert", "{lambda_h5}", "--mode=float32", "--out={tmp}/l2.tflite"],
     "--unsafe_load"),
    ("tfopt.compress.ocnna", ["--model={keras}", f"--dataset={SYN}", "--k=300",
                              "--out={tmp}/o3"], "--k=300"),
    ("tfopt.experiments.recommend", ["--results={results_dir}", "--max_accuracy_drop=1",
                                     "--max_flash_kb=-1"], "--max_flash_kb=-1"),
    ("tfopt.experiments.ablation", ["--flagfile={ab_comment}"], "comment"),
    ("tfopt.models", ["summary", "resnet101_v1"], "resnet101_v01"),
]


@pytest.mark.parametrize("module,argv,expected", REAL, ids=[f"{r[0]}:{r[1][0]}" for r in REAL])
def test_real_entry_points(module, argv, expected, fx):
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("TFOPT_TRACEBACK", None)
    proc = subprocess.run([sys.executable, "-m", module, *_fill(argv, fx)], capture_output=True,
                          text=True, env=env, cwd=fx["tmp"], timeout=120)
    _check_one_line(proc.returncode, proc.stderr, expected)


def test_gzip_fixture_is_really_not_gzip(fx):
    with pytest.raises(OSError):
        gzip.open(os.path.join(fx["gz_bad"], "t10k-labels-idx1-ubyte.gz")).read()
