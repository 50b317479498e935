"""tfopt.tflite.evaluate (LiteRT): accuracy, sizes, ops, latency, errors, and the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tflite_fixtures as fx

from tfopt.tflite import evaluate as ev
from tfopt.tflite.__main__ import main as cli


def test_quantize_uses_the_tensor_parameters_and_clips():
    q = ev.quantize(np.array([0.0, 0.1, -0.1, 100.0, -100.0]), 0.05, -3, np.int8)
    assert q.dtype == np.int8
    assert q.tolist() == [-3, -1, -5, 127, -128]
    assert ev.dequantize(q[:3], 0.05, -3) == pytest.approx([0.0, 0.1, -0.1])


def test_report_has_sizes_ops_latency_and_keras_comparison():
    _, _, x_te, y_te, _ = fx.fmnist_slice()
    content = fx.fmnist_int8_bytes()
    report = ev.evaluate_tflite(content, x_te[:100], y_te[:100],
                                keras_model=fx.trained_fmnist_model(), latency_runs=50,
                                warmup=3, name="fmnist_tiny")
    assert report.mode == "int8" and report.num_examples == 100
    assert report.size_bytes == len(content)
    assert 0 < report.gzip_bytes < report.size_bytes
    assert report.ops == ("CONV_2D", "MAX_POOL_2D", "RESHAPE")   # lean: FC as a 1x1 conv
    for lat in (report.latency_1_thread, report.latency_all_threads):
        assert lat["runs"] == 50 and 0 < lat["median_ms"] <= lat["p90_ms"]
    assert report.latency_1_thread["num_threads"] == 1
    assert report.latency_all_threads["num_threads"] == ev.all_threads()
    assert report.accuracy_diff_pp == pytest.approx(
        100 * (report.accuracy - report.keras_accuracy))
    text = ev.format_report(report)
    assert "diff" in text and "p90" in text and "gzip" in text
    json.dumps(report.to_dict())   # serialisable for results files


def test_predict_reference_kernels_agree_with_default_kernels():
    _, _, x_te, _, _ = fx.fmnist_slice()
    content = fx.fmnist_int8_bytes()
    ref = ev.predict(content, x_te[:20], reference=True, raw=True)
    opt = ev.predict(content, x_te[:20], raw=True)
    assert ref.dtype == np.int8 and ref.shape == (20, 10)
    assert np.max(np.abs(ref.astype(int) - opt.astype(int))) <= 1


def test_shape_mismatch_names_the_file_and_both_shapes(tmp_path):
    path = tmp_path / "fmnist_tiny.tflite"
    path.write_bytes(fx.fmnist_int8_bytes())
    x = np.zeros((4, 32, 32, 3), np.float32)
    with pytest.raises(ValueError, match=r"fmnist_tiny\.tflite: input images have shape "
                                         r"\(32, 32, 3\) but the model expects \(28, 28, 1\)"):
        ev.evaluate_tflite(path, x, np.zeros(4), latency_runs=0)


@pytest.mark.parametrize("payload, why", [
    (b"this is a text file, not a model", "not a TFLite model"),
    (b"\x18\x00\x00\x00TFL3" + b"\xff" * 40, "corrupt TFLite"),
])
def test_non_tflite_and_corrupt_files_give_one_line_errors(tmp_path, payload, why):
    path = tmp_path / "bad.tflite"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=why) as err:
        ev.evaluate_tflite(path, latency_runs=0)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_cli_bad_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("hello")
    proc = subprocess.run([sys.executable, "-m", "tfopt.tflite", "evaluate", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert lines == [f"error: {path}: not a TFLite model (only 5 bytes)"]


def test_cli_dataset_shape_mismatch(tmp_path, capsys):
    from tfopt.tflite.convert import convert

    path = tmp_path / "se.tflite"
    convert(fx.se_shuffle_model(), "int8",
            representative_data=fx.synthetic_images(4)).save(path)
    rc = cli(["evaluate", str(path), "--dataset=fashion_mnist", "--limit=8", "--runs=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1] == (f"error: {path}: dataset 'fashion_mnist' (test) images have shape "
                       "(28, 28, 1) but the model expects (16, 16, 4) (H, W, C)")


def test_cli_evaluate_on_dataset(tmp_path, capsys):
    path = tmp_path / "fmnist_tiny.tflite"
    path.write_bytes(fx.fmnist_int8_bytes())
    rc = cli(["evaluate", str(path), "--dataset=fashion_mnist", "--limit=200", "--runs=50",
              "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["num_examples"] == 200 and out["accuracy"] > 0.6
    assert out["latency_1_thread"]["runs"] == 50
