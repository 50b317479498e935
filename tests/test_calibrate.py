"""tfopt.tflite.calibrate: int8 activation ranges re-measured on the calibration images.

The converter's calibrator records a residual branch with the range of the ADD it feeds (the
ADD writes its sum in place into the branch's buffer). These tests build a tiny residual model,
check that the recording is wrong there and right elsewhere, and check that the re-measured
ranges are the tensors' true ones.
"""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite import calibrate
from tfopt.tflite import convert as conv
from tfopt.tflite.model_info import _schema


def _residual_model():
    """8x8x3 -> conv 8 (relu) -> three residual blocks (conv 8 branch + ADD + relu) -> GAP -> 4.

    The branches start small against the stream (as in a deep trained ResNet: resnet101_v01's
    branch 48 against a stream of 294), so a branch recorded with the stream's range loses most
    of its int8 steps."""
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(i)
    small = keras.initializers.VarianceScaling(0.02)
    for b in range(3):
        branch = layers.Conv2D(8, 3, padding="same", kernel_initializer=small,
                               name=f"branch{b}")(x)
        x = layers.ReLU(name=f"out{b}")(layers.Add(name=f"add{b}")([x, branch]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(i, layers.Dense(4, name="fc")(x))


def _images(n=32, seed=1):
    rng = np.random.default_rng(seed)
    # A few bright images make the per-image extremes spread (what "percentile" clips).
    x = rng.normal(size=(n, 8, 8, 3)).astype(np.float32)
    x[:2] *= 6.0
    return x


def _calibrated(model, x):
    """The converter's calibrated float model (recorded min/max per tensor) and its generator."""
    rep = conv._representative(x, model, num_samples=len(x), seed=0, preprocessing={})
    converter = conv._converter(conv.prepare_for_conversion(model), "int8", rep)
    converter._experimental_calibrate_only = True
    return bytes(converter.convert()), rep


def _recorded(content):
    """{tensor name: (recorded min, recorded max)} of a calibrated model."""
    model = _schema().Model.GetRootAs(content, 0)
    graph = model.Subgraphs(0)
    out = {}
    for i, q in calibrate._calibrated_tensors(model):
        out[graph.Tensors(i).Name().decode()] = (float(q.MinAsNumpy()[0]),
                                                 float(q.MaxAsNumpy()[0]))
    return out


def _branch(names, block):
    return next(n for n in names if f"branch{block}/" in n and "add" not in n)


@pytest.fixture(scope="module")
def residual():
    model = _residual_model()
    x = _images()
    calibrated, rep = _calibrated(model, x)
    return model, x, calibrated, rep


def test_measured_minmax_is_each_tensors_true_range_and_fixes_the_branch(residual):
    model, x, calibrated, rep = residual
    recorded = _recorded(calibrated)
    fixed, report = calibrate.with_ranges(calibrated, rep, "minmax")
    measured = _recorded(fixed)
    # The true range of the first branch, from Keras (float32 on the same images).
    branch_out = keras.Model(model.input, model.get_layer("branch0").output).predict(x, verbose=0)
    name = _branch(measured, 0)
    assert measured[name][0] == pytest.approx(branch_out.min(), rel=1e-4, abs=1e-4)
    assert measured[name][1] == pytest.approx(branch_out.max(), rel=1e-4, abs=1e-4)
    # The converter recorded the branch with its sum's larger max (the in-place ADD); the
    # stem, whose buffer no ADD reuses, it recorded right.
    assert recorded[name][1] > branch_out.max() * 1.05
    stem = next(n for n in measured if "stem" in n)
    assert measured[stem] == pytest.approx(recorded[stem], rel=1e-4, abs=1e-4)
    assert report["tensors"] == len(measured) and report["narrowed"] >= 1
    assert report["max_ratio"] > 1.05


def test_percentile_ranges_lie_inside_minmax_and_clip_the_outlier_image():
    mins = np.array([[-1.0, 0.0]] * 99 + [[-50.0, 0.0]])
    maxs = np.array([[1.0, 2.0]] * 99 + [[50.0, 2.0]])
    lo, hi = calibrate.ranges(mins, maxs, "percentile")
    mlo, mhi = calibrate.ranges(mins, maxs, "minmax")
    assert list(mlo) == [-50.0, 0.0] and list(mhi) == [50.0, 2.0]
    assert -2.0 < lo[0] <= -1.0 and 1.0 <= hi[0] < 2.0  # the one bright image no longer sets it
    assert lo[1] == 0.0 and hi[1] == 2.0


def test_converter_calibration_writes_nothing(residual):
    _, _, calibrated, rep = residual
    same, report = calibrate.with_ranges(calibrated, rep, "converter")
    assert same == calibrated and report["tensors"] == 0


def test_convert_records_the_calibration_and_minmax_tracks_float_better(residual):
    from tfopt.tflite.evaluate import predict

    model, x, _, _ = residual
    float_out = model.predict(x, verbose=0)
    errors = {}
    for method in ("converter", "minmax", "percentile"):
        result = conv.convert(model, "int8", representative_data=x, calibration=method)
        meta = result.metadata["calibration"]
        assert meta["method"] == method
        assert (meta.get("tensors", 0) > 0) == (method != "converter")
        # Reference kernels: XNNPACK refuses this toy's tiny branch requantization ratios.
        out = predict(result.content, x, reference=True)
        errors[method] = float(np.abs(out - float_out).mean())
    # The branch's step is no longer set by its sum: the int8 logits lie closer to float
    # (0.0067 -> 0.0058 measured; the ADD's own output step is the stream's either way).
    assert errors["minmax"] < 0.95 * errors["converter"], errors


def test_unknown_calibration_is_one_line_error():
    model = _residual_model()
    with pytest.raises(ValueError, match=r"calibration='mean'.*converter.*minmax.*percentile"):
        conv.convert(model, "int8", representative_data=_images(4), calibration="mean")
    with pytest.raises(ValueError, match="calibration='max'"):
        calibrate.check_calibration("max")
