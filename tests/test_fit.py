"""`python -m tfopt.experiments.fit`: flash/arena of untrained candidates, as a trained model has.

The claim under test: the int8 `.tflite` bytes and the TFLM arena depend on the shapes, not on
the weight values, once no constant is degenerate (fit.randomise_weights). A freshly
initialised model is *not* a stand-in: its all-zero biases are deduplicated and folded.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfopt.experiments import fit
from tfopt.tflite import boards, micro

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (16, 16, 3)
needs_micro = pytest.mark.skipif(not micro.micro_available(),
                                 reason=str(micro.micro_unavailable_reason()))


def _spec(tmp_path, **kw):
    base = dict(board="nano33ble", variants=("tiny_cnn",), widths=(0.25,), input_shape=SHAPE,
                num_classes=10, reserve=0.2, out=str(tmp_path / "fit.cfg"))
    return fit.FitSpec(**{**base, **kw})


def _convert(model, seed):
    from tfopt.tflite.convert import convert

    rep = np.random.default_rng(seed).standard_normal((4, *SHAPE)).astype(np.float32)
    conv = convert(model, "int8", representative_data=rep, num_calibration_samples=4,
                   name="tiny_cnn__none.int8")
    return conv.content, fit.arena_of(conv.content, "m")[0]


def _graph_bytes(content):
    """File bytes with the tfopt JSON metadata emptied: its scales and zero points are decimal
    text whose length depends on the values (e.g. '-13' vs '2'), a few bytes either way."""
    from tfopt.tflite.model_info import with_metadata

    return len(with_metadata(content, {}))


def _tiny():
    from tfopt.models import build_model

    return build_model("tiny_cnn", num_classes=10, input_shape=SHAPE, width_multiplier=0.25)


@needs_micro
def test_bytes_and_arena_do_not_depend_on_the_weight_values():
    sizes = []
    for draw in (1, 2):
        model = _tiny()
        fit.randomise_weights(model, seed=draw)
        content, arena = _convert(model, seed=draw)  # other weights and other calibration data
        sizes.append((_graph_bytes(content), arena, len(content)))
    assert sizes[0][:2] == sizes[1][:2]  # graph +-0 B, same arena
    assert abs(sizes[0][2] - sizes[1][2]) <= fit.METADATA_SLACK_BYTES  # the JSON's digits


@needs_micro
def test_a_briefly_trained_model_has_the_fit_figures(tmp_path):
    """A model after real training steps (biases and BN statistics moved) vs fit's row."""
    from tfopt._keras import keras

    row = fit.measure("tiny_cnn", 0.25, _spec(tmp_path), max_flash_bytes=None)
    assert row["status"] == "ok", row
    model = _tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(3)
    model.fit(rng.standard_normal((64, *SHAPE)).astype(np.float32), rng.integers(0, 10, 64),
              batch_size=16, epochs=1, verbose=0)
    content, arena = _convert(model, seed=5)
    assert (_graph_bytes(content), arena) == (row["graph_bytes"], row["arena_bytes"])
    assert abs(len(content) - row["flash_bytes"]) <= fit.METADATA_SLACK_BYTES


@needs_micro
def test_fresh_initialisation_is_not_a_stand_in():
    """Zero biases/identity BatchNorm of a fresh model: the converter dedups and folds them."""
    fresh, _ = _convert(_tiny(), seed=0)
    model = _tiny()
    fit.randomise_weights(model, seed=0)
    trained_like, _ = _convert(model, seed=0)
    assert len(fresh) < len(trained_like)


@needs_micro
def test_arena_after_allocation_equals_run_micro_arena():
    model = _tiny()
    fit.randomise_weights(model, seed=0)
    content, arena = _convert(model, seed=0)
    assert arena == micro.run_micro(content, num_samples=1).arena_bytes


def _budget(flash, arena):
    return boards.Budget(boards.get_board("pico"), 0.0, flash, arena, None)


def test_flash_lower_bound_skips_conversion(tmp_path):
    row = fit.measure("tiny_cnn", 0.25, _spec(tmp_path), max_flash_bytes=100)
    assert row["status"] == "skipped" and row["kernel_weights"] > 100
    assert "not converted" in row["error"] and row["flash_bytes"] is None
    assert fit.reusable(row, _budget(100, None))
    assert not fit.reusable(row, _budget(10**9, None))  # a bigger board measures it


@needs_micro
def test_wider_candidates_of_a_misfit_are_not_built(tmp_path):
    spec = _spec(tmp_path, widths=(0.25, 0.125), reserve=0.99)  # arena budget 2,621 B
    rows, cached = fit.run_fit(spec, log=lambda line: None)
    assert cached == 0 and [r["width"] for r in rows] == [0.125, 0.25]
    small, wide = rows
    assert small["status"] == "ok" and small["arena_bytes"] > 2_621
    assert wide["status"] == "skipped" and wide["seconds"] == 0.0 and "not built" in wide["error"]
    assert fit.lower_bounds(wide) == (small["flash_bytes"], small["arena_bytes"])
    again, cached = fit.run_fit(spec, log=lambda line: None)
    assert cached == 2 and [{k: v for k, v in r.items() if k != "from_cache"} for r in again] == rows


def test_variants_widths_and_shape_validation():
    assert fit.expand_variants(["vgg19_v0*"]) == tuple(f"vgg19_v0{i}" for i in range(1, 10))
    assert len(fit.expand_variants([fit.PAPER_VARIANTS])) == 28
    assert fit.expand_variants(["resnet101[block=ghost", "attention=se]", "tiny_cnn"]) == (
        "resnet101[block=ghost,attention=se]", "tiny_cnn")
    with pytest.raises(ValueError, match="unknown variant 'vgg19_v4'; did you mean"):
        fit.expand_variants(["vgg19_v4"])
    with pytest.raises(ValueError, match="matches no zoo id"):
        fit.expand_variants(["mobilenet_v9*"])
    assert fit.parse_widths(["0.25", "0.5", "0.5"]) == (0.25, 0.5)
    with pytest.raises(ValueError, match="widths: 'half' is not a number"):
        fit.parse_widths(["half"])
    with pytest.raises(ValueError, match="expected 0 < width <= 8"):
        fit.parse_widths(["0"])
    assert fit.parse_input_shape("32x32x3") == (32, 32, 3)
    with pytest.raises(ValueError, match="input_shape='32,32'"):
        fit.parse_input_shape("32,32")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tfopt.experiments.fit", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("args,message", [
    (["--board=nano33", "--out=x.cfg"], "board='nano33' is unknown (did you mean nano33ble?)"),
    (["--board=pico"], "--out=FILE.cfg is required"),
    (["--board=pico", "--out=x.cfg", "--widths=a"], "widths: 'a' is not a number"),
    (["--board=pico", "--out=x.cfg", "--variants=vgg19_v99"], "unknown variant 'vgg19_v99'"),
    (["--board=pico", "--out=/nonexistent/x.cfg"], "does not exist or is not writable"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    out = _cli(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr and out.stderr.count("\n") == 1, out.stderr


@needs_micro
def test_cli_streams_rows_resumes_and_writes_one_flagfile_with_per_variant_widths(
        tmp_path, run_cli):
    # In-process (fit.main, run_cli): the conversions dominate; the program's own start and
    # exit status are checked by test_bad_input_is_one_line above.
    args = ["--board=nano33ble", "--variants=tiny_cnn,vgg19_v04", "--widths=0.125,0.25",
            "--input_shape=16,16,3", "--out=fit.cfg"]
    first = run_cli(fit.main, *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "[1/4] tiny_cnn w=0.125: flash " in first.stdout and " B left" in first.stdout
    rows = [json.loads(line) for line in (tmp_path / "fit.fit.jsonl").read_text().splitlines()]
    assert [(r["variant"], r["width"]) for r in rows] == [
        ("tiny_cnn", 0.125), ("tiny_cnn", 0.25), ("vgg19_v04", 0.125), ("vgg19_v04", 0.25)]
    assert all(r["status"] == "ok" and r["seconds"] > 0 for r in rows)
    text = (tmp_path / "fit.cfg").read_text()
    assert "--variants=tiny_cnn,vgg19_v04\n--variant_widths=tiny_cnn:0.25,vgg19_v04:0.25\n" in text
    assert "# Board: nano33ble" in text
    again = run_cli(fit.main, *args, "--jobs=2")  # worker processes return the cached rows
    assert again.returncode == 0 and again.stdout.count("[cached]") == 4, again.stderr[-2000:]
    assert again.stdout.index("[1/4] tiny_cnn w=0.125") < again.stdout.index("[3/4] vgg19_v04")
    assert len((tmp_path / "fit.fit.jsonl").read_text().splitlines()) == 4  # nothing re-measured
    tight = run_cli(fit.main, "--board=nano33ble", "--reserve=0.85", *args[1:])
    assert tight.returncode == 0, tight.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("fit*.cfg")) == ["fit.cfg"]
    # vgg19_v04 fits only at 0.125 there: one file, a width per variant
    assert ("--variants=tiny_cnn,vgg19_v04\n--variant_widths=tiny_cnn:0.25,vgg19_v04:0.125\n"
            in (tmp_path / "fit.cfg").read_text())


@pytest.mark.slow
@needs_micro
def test_worker_processes_measure_what_one_process_measures(tmp_path):
    spec = _spec(tmp_path, variants=("tiny_cnn", "vgg19_v04"), widths=(0.125,))
    one, _ = fit.run_fit(spec, rerun=True, log=lambda line: None)
    two, cached = fit.run_fit(spec, rerun=True, log=lambda line: None, jobs=2)
    # flash: the JSON's digits (see above); graph bytes: a worker runs TensorFlow on fewer threads,
    # so calibration ranges can differ in the last float bit and flip one layer's per-tensor /
    # per-channel choice (seen once in CI: vgg19_v04 61,816 vs 60,256 B), so within 5 %; the flip can
    # also decide whether a zero bias is shared (one tensor more or less: vgg19_v04 arena 28,576
    # vs 28,544 B in CI), so the arena within 1 %
    drop = ("seconds", "cpu_seconds", "flash_bytes", "graph_bytes", "arena_bytes")
    assert cached == 0 and [{k: v for k, v in r.items() if k not in drop} for r in two] == [
        {k: v for k, v in r.items() if k not in drop} for r in one]
    for a, b in zip(one, two):
        for key, share in (("graph_bytes", 0.05), ("arena_bytes", 0.01)):
            assert (a[key] is None) == (b[key] is None), (a, b)
            assert abs((a[key] or 0) - (b[key] or 0)) <= share * (a[key] or 0), (a, b)
