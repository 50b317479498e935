"""tfopt.tflite.convert: four modes, int8 integer-only check, batch 1, metadata, pruned/QAT."""

import numpy as np
import pytest
import tflite_fixtures as fx

from tfopt.tflite import convert as conv
from tfopt.tflite.evaluate import evaluate_tflite
from tfopt.tflite.model_info import inspect_model


@pytest.mark.slow  # trains the shared model (~10 s) and converts five times
def test_trained_fmnist_model_converts_in_all_four_modes():
    model = fx.trained_fmnist_model()
    x_tr, _, x_te, y_te, info = fx.fmnist_slice()
    sizes, accs = {}, {}
    for mode in conv.MODES:
        result = conv.convert(model, mode, representative_data=x_tr[:100],
                              normalization=(info.mean, info.std))
        meta = inspect_model(result.content).metadata
        assert meta["mode"] == mode and meta["input_shape"] == [1, 28, 28, 1]
        assert result.info.inputs[0].shape == (1, 28, 28, 1)   # deployment graph: batch 1
        sizes[mode] = result.size_bytes
        accs[mode] = evaluate_tflite(result.content, x_te[:200], y_te[:200],
                                     latency_runs=0).accuracy
    assert "DEQUANTIZE" in conv.convert(model, "float16").ops   # float16 weights, float math
    # int8 weights: ~4x smaller than float32; float16 ~2x (tiny model: headers weigh in).
    assert sizes["int8"] < 0.4 * sizes["float32"]
    assert sizes["float16"] < 0.65 * sizes["float32"]
    assert sizes["dynamic"] < 0.4 * sizes["float32"]
    assert min(accs.values()) > 0.6 and max(accs.values()) - min(accs.values()) < 0.03


def test_int8_is_integer_only_and_records_input_quantization_and_normalisation():
    content = fx.fmnist_int8_bytes()
    info = conv.check_integer_only(content)
    assert info.inputs[0].dtype == "int8" and info.outputs[0].dtype == "int8"
    assert not info.float_ops()
    meta = info.metadata
    assert meta["input_scale"] == pytest.approx(info.inputs[0].scale)
    assert meta["input_zero_point"] == info.inputs[0].zero_point
    assert meta["normalization"]["mean"] == pytest.approx([0.28604060])
    assert meta["normalization"]["std"] == pytest.approx([0.35302424])
    assert meta["labels"][0] == "T-shirt/top" and len(meta["labels"]) == 10


def test_int8_accuracy_within_1pp_of_keras_float():
    _, _, x_te, y_te, _ = fx.fmnist_slice()
    report = evaluate_tflite(fx.fmnist_int8_bytes(), x_te, y_te,
                             keras_model=fx.trained_fmnist_model(), latency_runs=0)
    assert report.num_examples == fx.FMNIST_TEST
    assert report.keras_accuracy > 0.7
    assert abs(report.accuracy_diff_pp) <= 1.0, report
    assert report.agreement > 0.97


def test_int8_calibrates_from_a_dataset_name_and_takes_its_labels():
    model = fx.build_fmnist_model()
    result = conv.convert(model, "int8", representative_data="fashion_mnist",
                          num_calibration_samples=8, preprocessing={"limit": 500})
    assert result.metadata["dataset"] == "fashion_mnist"
    assert result.metadata["labels"][9] == "Ankle boot"
    assert result.metadata["normalization"]["mean"] == pytest.approx([0.28604060])


def test_float_fallback_is_an_error_listing_the_ops():
    float_model = conv.convert(fx.se_shuffle_model(), "float32").content
    with pytest.raises(conv.Int8FallbackError, match=r"CONV_2D#0 \(float32\).*MUL#\d+.*"
                                                     r"input '[^']*image[^']*' is float32"):
        conv.check_integer_only(float_model, name="se_shuffle")


def test_int8_needs_representative_data_and_checks_its_shape():
    model = fx.se_shuffle_model()
    with pytest.raises(ValueError, match="needs representative_data"):
        conv.convert(model, "int8")
    with pytest.raises(ValueError, match=r"\(8, 28, 28, 1\) does not match.*\(16, 16, 4\)"):
        conv.convert(model, "int8", representative_data=np.zeros((8, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match=r"'fashion_mnist'.*\(1, 28, 28, 1\), expected "
                                         r"\(1, 16, 16, 4\)"):
        conv.convert(model, "int8", representative_data="fashion_mnist",
                     num_calibration_samples=2, preprocessing={"limit": 100})


def test_unknown_mode_suggests_the_close_one():
    with pytest.raises(ValueError, match=r"mode='int_8' \(did you mean 'int8'\?\)"):
        conv.convert(fx.se_shuffle_model(), "int_8")


def test_batch_one_graph_has_no_dynamic_shape_ops():
    # A None batch dimension makes the converter add SHAPE/STRIDED_SLICE/PACK around the
    # channel-shuffle reshapes; tracing at batch 1 leaves RESHAPE + TRANSPOSE only.
    result = conv.convert(fx.se_shuffle_model(batch_size=None), "int8",
                          representative_data=fx.synthetic_images(8))
    assert result.info.inputs[0].shape == (1, 16, 16, 4)
    assert {"MUL", "LOGISTIC", "MEAN", "TRANSPOSE", "RESHAPE"} <= set(result.ops)
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(result.ops)


def test_pruned_model_is_stripped_and_compresses_under_gzip():
    import tensorflow_model_optimization as tfmot

    from tfopt.compress import pruning
    from tfopt.tflite.evaluate import gzip_size

    base = fx.trained_fmnist_model()
    dense = conv.convert(base, "int8", representative_data=fx.fmnist_slice()[0][:50])
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.8, begin_step=0, frequency=1)
    wrapped = pruning.wrap(fx.trained_fmnist_model(), schedule, scope="all")
    pruning.prune_now(wrapped, step=0)
    pruned = conv.convert(wrapped, "int8", representative_data=fx.fmnist_slice()[0][:50])
    assert not any("Prune" in op for op in pruned.ops)
    assert set(pruned.ops) == set(dense.ops)
    # Dense storage keeps the zeros: the raw file does not shrink, gzip does.
    assert abs(pruned.size_bytes - dense.size_bytes) < 0.05 * dense.size_bytes
    assert gzip_size(pruned.content) < 0.75 * gzip_size(dense.content)


def test_qat_model_converts_to_integer_only_int8():
    import tensorflow_model_optimization as tfmot

    qat = tfmot.quantization.keras.quantize_model(fx.build_fmnist_model())
    x_tr, y_tr, x_te, y_te, _ = fx.fmnist_slice()
    qat.compile("adam", keras_loss(), metrics=["accuracy"])
    qat.fit(x_tr[:256], y_tr[:256], batch_size=64, epochs=1, verbose=0)  # sets the ranges
    result = conv.convert(qat, "int8", representative_data=x_tr[:16])
    assert result.metadata["qat"] is True
    conv.check_integer_only(result.content)
    report = evaluate_tflite(result.content, x_te[:100], y_te[:100], keras_model=qat,
                             latency_runs=0)
    assert report.agreement >= 0.95


def keras_loss():
    from tfopt._keras import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_cli_convert_from_a_saved_keras_model(tmp_path, capsys):
    from tfopt.tflite.__main__ import main as cli

    saved = tmp_path / "tiny.keras"
    fx.trained_fmnist_model().save(saved)
    out = tmp_path / "tiny.int8.tflite"
    rc = cli(["convert", str(saved), "--mode=int8", "--dataset=fashion_mnist",
              "--num_calibration_samples=8", f"--out={out}"])
    assert rc == 0 and f"wrote {out}" in capsys.readouterr().out
    meta = inspect_model(out).metadata
    assert meta["mode"] == "int8" and meta["labels"][0] == "T-shirt/top"
    conv.check_integer_only(out.read_bytes())
    rc = cli(["convert", str(tmp_path / "missing.h5")])
    assert rc == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'missing.h5'}: no such file or folder")
