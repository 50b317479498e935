"""Issue 11 item 4: models whose loading runs code are refused; outputs stay inside --out.

The Lambda layer built here touches a marker file whenever its Python code runs, so "refused
before deserialising" is measured (the marker stays absent), not assumed.
"""

from __future__ import annotations

import pytest

from tfopt import modelfile
from tfopt._keras import keras, layers

MARKER_ENV = "TFOPT_TEST_LAMBDA_MARKER"


def _model(with_lambda: bool):
    inp = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    if with_lambda:
        x = layers.Lambda(lambda t: t * 2.0, name="double")(x)
        x = layers.Lambda(  # its code touches the marker file each time it runs

            lambda t: __import__("pathlib").Path(
                __import__("os").environ["TFOPT_TEST_LAMBDA_MARKER"]).touch() or t,
            name="marker")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(2, name="logits")(x))


@pytest.fixture(scope="module")
def _saved(tmp_path_factory):
    """{(kind, ext): path} for a Lambda model and a normal one, as .h5 and .keras (built once
    per module; loading never changes them)."""
    root = tmp_path_factory.mktemp("safe_load")
    marker = root / "build_marker"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MARKER_ENV, str(marker))   # building the model runs the Lambda once
        out = {}
        for kind, with_lambda in (("lambda", True), ("plain", False)):
            model = _model(with_lambda)
            for ext in (".h5", ".keras"):
                path = root / f"{kind}{ext}"
                model.save(path)
                out[kind, ext] = path
    return out


@pytest.fixture
def files(_saved, tmp_path, monkeypatch):
    """The saved models plus "marker": a path in the environment that the Lambda's code
    touches whenever it runs, absent when the test starts."""
    marker = tmp_path / "lambda_ran"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    return {**_saved, "marker": marker}


def test_config_inspection_finds_the_lambda_layers_without_loading(files):
    for ext in (".h5", ".keras"):
        assert modelfile.unsafe_layers(modelfile.model_config(str(files["lambda", ext]))) == [
            "double", "marker"]
        assert modelfile.unsafe_layers(modelfile.model_config(str(files["plain", ext]))) == []
        modelfile.check_safe(str(files["plain", ext]))
        modelfile.check_safe(str(files["lambda", ext]), unsafe_load=True)
        with pytest.raises(modelfile.UnsafeModelError, match="--unsafe_load"):
            modelfile.check_safe(str(files["lambda", ext]))
    assert not files["marker"].exists()


def test_saved_model_folder_with_a_lambda_is_refused(tmp_path, monkeypatch, capsys):
    from tfopt.tflite.__main__ import main

    marker = tmp_path / "lambda_ran"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    folder = tmp_path / "saved"
    _model(True).save(folder, save_format="tf")
    marker.unlink()
    assert modelfile.unsafe_layers(modelfile.model_config(str(folder))) == ["double", "marker"]
    assert main(["convert", str(folder), "--mode=float32", f"--out={tmp_path / 'm.tflite'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(folder) in err[0] and "--unsafe_load" in err[0], err
    assert not marker.exists()


def test_nested_lambda_is_found():
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Sequential", "config": {"layers": [
            {"class_name": "TimeDistributed", "config": {"layer": {
                "class_name": "Lambda", "config": {"name": "deep"}}}}]}},
        {"class_name": "TFOpLambda", "config": {"name": "tf_op"}}]}}
    assert modelfile.unsafe_layers(config) == ["deep"]


@pytest.mark.parametrize("ext", [".h5", ".keras"])
@pytest.mark.parametrize("cli", ["tflite", "ocnna"])
def test_cli_refuses_a_lambda_model_in_one_line(files, tmp_path, cli, ext, run_cli):
    # In-process (run_cli); tests/test_bad_inputs.py runs both programs for real.
    from tfopt.compress import ocnna_cli
    from tfopt.tflite import __main__ as tflite_cli

    path = files["lambda", ext]
    if cli == "tflite":
        proc = run_cli(tflite_cli.main, "convert", path, "--mode=float32",
                       f"--out={tmp_path / 'm.tflite'}", cwd=tmp_path)
    else:
        proc = run_cli(ocnna_cli.main, f"--model={path}", "--dataset=synthetic:8x8x1:2:16",
                       "--k=30", f"--out={tmp_path / 'ocnna'}", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in lines[0] and "'double'" in lines[0] and "--unsafe_load" in lines[0]
    assert not files["marker"].exists()  # the Lambda's code never ran
    assert not (tmp_path / "m.tflite").exists() and not (tmp_path / "ocnna").exists()


@pytest.mark.parametrize("ext", [".h5", ".keras"])
def test_tflite_convert_loads_with_unsafe_load_and_plain_models_load(files, tmp_path, ext):
    from tfopt.tflite.__main__ import main

    out = tmp_path / "lambda.tflite"
    assert main(["convert", str(files["lambda", ext]), "--mode=float32", f"--out={out}",
                 "--unsafe_load"]) == 0
    assert out.stat().st_size > 0 and files["marker"].exists()
    files["marker"].unlink()
    out = tmp_path / "plain.tflite"
    assert main(["convert", str(files["plain", ext]), "--mode=float32", f"--out={out}"]) == 0
    assert out.stat().st_size > 0 and not files["marker"].exists()


def test_ocnna_loads_with_unsafe_load(files, tmp_path):
    from tfopt.compress import ocnna

    assert ocnna.main([f"--model={files['lambda', '.h5']}", "--dataset=synthetic:8x8x1:2:16",
                       "--k=30", f"--out={tmp_path / 'no'}"]) == 2
    assert not files["marker"].exists()
    out = tmp_path / "ocnna"
    assert ocnna.main([f"--model={files['plain', '.keras']}", "--dataset=synthetic:8x8x1:2:16",
                       "--k=30", "--n_images=8", "--eval_limit=0", f"--out={out}"]) == 0
    assert (out / "simplified.keras").exists()
    # scoring/surgery need not support a Lambda layer (exit 0 or 2): loading it is what is tested
    ocnna.main([f"--model={files['lambda', '.h5']}", "--dataset=synthetic:8x8x1:2:16",
                "--k=30", "--n_images=8", "--eval_limit=0", f"--out={out}", "--unsafe_load"])
    assert files["marker"].exists()


def test_experiments_modelio_refuses_a_lambda_model(files):
    from tfopt.experiments import modelio

    with pytest.raises(modelfile.UnsafeModelError):
        modelio.load_model(str(files["lambda", ".h5"]))
    assert not files["marker"].exists()
    assert modelio.load_model(str(files["plain", ".h5"])).count_params() > 0


def test_export_name_leaving_out_is_refused(files, tmp_path, capsys):
    from tfopt.tflite.__main__ import main

    tflite = tmp_path / "plain.tflite"
    assert main(["convert", str(files["plain", ".keras"]), "--mode=float32",
                 f"--out={tflite}"]) == 0
    capsys.readouterr()
    out = tmp_path / "a" / "b" / "out"
    for name in ("../../X", str(tmp_path / "X"), "sub/../../X"):
        assert main(["export", str(tflite), f"--out={out}", f"--name={name}",
                     "--no_micro"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0] and "--out" in err[0], err
    assert not list(tmp_path.rglob("X*")) and not out.exists()
    assert main(["export", str(tflite), f"--out={out}", "--name=fine", "--no_micro"]) == 0
    assert (out / "fine.tflite").exists()
