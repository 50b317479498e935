"""`tflite export --metadata`: a .tflite that MediaPipe's ImageClassifier loads and that classifies
real Fashion-MNIST test images with the int8 model's top-1 (LiteRT).

The first tests need no MediaPipe (TFLite Metadata layout, float32 interface, labels zip); the
MediaPipe tests skip where the `mediapipe` package is not installed (it conflicts with
tensorflow-model-optimization's absl-py pin, so it is installed separately: docs/deployment.md).
"""

import io
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tfopt.tflite import metadata as md
from tfopt.tflite.evaluate import predict
from tfopt.tflite.model_info import inspect_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_TEST = 200


@pytest.fixture(scope="module")
def fashion():
    """A tiny CNN trained 2 epochs on 2,000 Fashion-MNIST images (28x28 grey -> RGB), int8."""
    from tfopt import data
    from tfopt._keras import keras
    from tfopt.models import build_model
    from tfopt.tflite.convert import convert

    try:
        x, y, info = data.load_arrays("fashion_mnist", "train", limit=2000, to_rgb=True)
        x_test, y_test, _ = data.load_arrays("fashion_mnist", "test", limit=N_TEST, to_rgb=True)
    except (ValueError, FileNotFoundError) as err:
        pytest.skip(f"Fashion-MNIST not available: {err}")
    keras.utils.set_random_seed(0)
    model = build_model("tiny_cnn", num_classes=10, input_shape=x.shape[1:], width_multiplier=0.25)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    conv = convert(model, "int8", representative_data=x[:100], num_calibration_samples=100,
                   normalization=(info.mean, info.std), labels=list(info.class_names),
                   name="tiny_cnn__fashion.int8")
    # The raw 0..255 pixels an app's camera/bitmap hands MediaPipe (exact: no resize).
    pixels = np.rint((x_test * np.array(info.std) + np.array(info.mean)) * 255).astype(np.uint8)
    return dict(int8=conv.content, x_test=x_test, y_test=y_test, pixels=pixels,
                labels=list(info.class_names), mean=info.mean, std=info.std)


def test_float_interface_keeps_the_int8_top1(fashion):
    app = md.float_interface(fashion["int8"])
    info = inspect_model(app)
    assert (info.inputs[0].dtype, info.outputs[0].dtype) == ("float32", "float32")
    ops = [op.name for op in info.operators]
    assert ops[0] == "QUANTIZE" and ops[-2:] == ["DEQUANTIZE", "SOFTMAX"]
    assert ops[1:-2] == [op.name for op in inspect_model(fashion["int8"]).operators]
    probs = predict(app, fashion["x_test"])
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    top1_int8 = predict(fashion["int8"], fashion["x_test"]).argmax(-1)
    assert np.array_equal(probs.argmax(-1), top1_int8)
    assert (top1_int8 == fashion["y_test"]).mean() > 0.5  # a trained model, not chance


def test_metadata_entry_and_packed_labels(fashion):
    app = md.with_app_metadata(fashion["int8"], version="7")
    info = inspect_model(app)
    assert md.METADATA_NAME in info.metadata_names
    assert info.metadata["app_interface"] == md.APP_INTERFACE
    with zipfile.ZipFile(io.BytesIO(app)) as zf:
        assert zf.getinfo(md.LABELS_FILE).compress_type == zipfile.ZIP_STORED
        assert zf.read(md.LABELS_FILE).decode().splitlines() == fashion["labels"]
    with pytest.raises(ValueError, match="3 labels for a model with 10 outputs"):
        md.with_app_metadata(fashion["int8"], labels=["a", "b", "c"])


def test_metadata_fields_read_back_with_the_schema(fashion):
    schema = pytest.importorskip("mediapipe.tasks.metadata.metadata_schema_py_generated",
                                 reason="mediapipe (its metadata schema module) is not installed")
    fb = md.model_metadata(name="m", version="3", description="d", mean=[72.9] * 3,
                           std=[90.0] * 3, channels=3)
    meta = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAsModelMetadata(fb, 0))
    assert (meta.name, meta.version, meta.minParserVersion) == (b"m", b"3", b"1.0.0")
    t_in = meta.subgraphMetadata[0].inputTensorMetadata[0]
    assert t_in.processUnits[0].optionsType == schema.ProcessUnitOptions.NormalizationOptions
    assert np.allclose(t_in.processUnits[0].options.mean, 72.9)
    assert t_in.content.contentPropertiesType == schema.ContentProperties.ImageProperties
    t_out = meta.subgraphMetadata[0].outputTensorMetadata[0]
    assert t_out.associatedFiles[0].name == b"labels.txt"
    assert t_out.associatedFiles[0].type == schema.AssociatedFileType.TENSOR_AXIS_LABELS


def _classifier(path):
    mp = pytest.importorskip("mediapipe", reason="mediapipe is not installed (no wheel, or "
                             "not installed: pip install mediapipe)")
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                            max_results=1)
    return mp, vision.ImageClassifier.create_from_options(options)


@pytest.mark.slow
def test_mediapipe_classifies_like_litert(fashion, tmp_path):
    int8 = tmp_path / "tiny.tflite"
    int8.write_bytes(fashion["int8"])
    out = subprocess.run([sys.executable, "-m", "tfopt.tflite", "export", str(int8),
                          f"--out={tmp_path / 'out'}", "--metadata", "--no_micro"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    app = tmp_path / "out" / "tiny.mediapipe.tflite"
    assert f"wrote {app}" in out.stdout
    mp, clf = _classifier(app)
    top1, names = [], []
    try:
        for image in fashion["pixels"]:
            result = clf.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                           data=np.ascontiguousarray(image)))
            best = result.classifications[0].categories[0]
            top1.append(best.index)
            names.append(best.category_name)
    finally:
        clf.close()
    litert = predict(fashion["int8"], fashion["x_test"]).argmax(-1)
    assert np.array_equal(np.array(top1), litert)  # all N_TEST images
    assert names == [fashion["labels"][i] for i in top1]  # labels.txt read by MediaPipe
    assert (litert == fashion["y_test"]).mean() > 0.5


def test_mediapipe_rejects_int8_io_which_is_why_the_interface_is_float(fashion, tmp_path):
    pytest.importorskip("mediapipe", reason="mediapipe is not installed")
    path = tmp_path / "int8.tflite"
    path.write_bytes(fashion["int8"])  # tfopt's int8 model as converted: int8 input tensor
    with pytest.raises(ValueError, match="Requested one of these types: uint8/float32, got INT8"):
        _classifier(path)
