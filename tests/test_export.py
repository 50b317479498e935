"""tfopt.tflite.export: .tflite + C array pair + op resolver + JSON metadata, and the CLI."""

import json
import re
import shutil
import subprocess

import pytest
import tflite_fixtures as fx

from tfopt.tflite import export, micro
from tfopt.tflite.__main__ import main as cli


@pytest.fixture
def int8_path(tmp_path):
    path = tmp_path / "in" / "fmnist_tiny__int8.tflite"
    path.parent.mkdir()
    path.write_bytes(fx.fmnist_int8_bytes())
    return path


def _c_bytes(source: str) -> bytes:
    body = source[source.index("{") + 1:source.index("};")]
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))


@pytest.mark.parametrize("name, ident", [
    ("tiny_cnn__int8", "tiny_cnn_int8"),           # "__" is reserved in C++
    ("resnet101-v04.int8", "resnet101_v04_int8"),
    ("3x3net", "m_3x3net"),
])
def test_c_identifier(name, ident):
    assert export.c_identifier(name) == ident


def test_c_identifier_rejects_empty():
    with pytest.raises(ValueError, match="no character usable"):
        export.c_identifier("---")


def test_export_writes_all_files_with_metadata(int8_path, tmp_path):
    _, _, x_te, y_te, _ = fx.fmnist_slice()
    out = tmp_path / "out"
    res = export.export_model(int8_path, out, x=x_te[:100], y=y_te[:100])
    stem = "fmnist_tiny__int8"
    assert {p.name for p in out.iterdir()} == {f"{stem}.tflite", f"{stem}.cc", f"{stem}.h",
                                              f"{stem}_op_resolver.h", f"{stem}.json"}
    content = int8_path.read_bytes()
    assert res.tflite.read_bytes() == content
    meta = json.loads(res.metadata_json.read_text())
    assert meta["input_shape"] == [1, 28, 28, 1] and meta["input_dtype"] == "int8"
    assert isinstance(meta["input_scale"], float) and isinstance(meta["input_zero_point"], int)
    assert meta["normalization"]["std"] == pytest.approx([0.35302424])
    assert meta["labels"][0] == "T-shirt/top"
    assert 0.6 < meta["accuracy"] <= 1.0 and meta["accuracy_examples"] == 100
    assert meta["flash_bytes"] == len(content)
    assert meta["ops"] == ["CONV_2D", "MAX_POOL_2D", "RESHAPE"]   # lean: FC as a 1x1 conv
    if micro.micro_available():
        assert meta["arena_bytes"] > 1000
    # The C array is the file, byte for byte, 16-byte aligned and const.
    source = res.source.read_text()
    assert "alignas(16) const unsigned char fmnist_tiny_int8_tflite[] = {" in source
    assert f"const unsigned int fmnist_tiny_int8_tflite_len = {len(content)};" in source
    assert _c_bytes(source) == content
    header = res.header.read_text()
    assert "extern const unsigned char fmnist_tiny_int8_tflite[];" in header
    assert f"#define FMNIST_TINY_INT8_INPUT_ZERO_POINT {meta['input_zero_point']}" in header
    # The resolver lists exactly the model's ops.
    resolver = res.op_resolver.read_text()
    assert "tflite::MicroMutableOpResolver<kFmnistTinyInt8OpCount>" in resolver
    assert "kFmnistTinyInt8OpCount = 3;" in resolver
    assert re.findall(r"resolver\.(Add\w+)\(\)", resolver) == [
        "AddConv2D", "AddMaxPool2D", "AddReshape"]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to compile the C array")
def test_generated_c_array_compiles_links_from_c_and_is_aligned(int8_path, tmp_path):
    res = export.export_model(int8_path, tmp_path, name="model", micro=False)
    main_c = tmp_path / "main.c"
    main_c.write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "model.h"\n'
        "int main(void) {\n"
        "  if ((uintptr_t)model_tflite % 16 != 0) return 3;\n"
        "  fwrite(model_tflite, 1, model_tflite_len, stdout);\n  return 0;\n}\n")
    exe = tmp_path / "dump"
    gcc = shutil.which("gcc") or "g++"
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Werror", "-c", str(res.source), "-o",
                    str(tmp_path / "model.o")], check=True)
    subprocess.run([gcc, "-x", "c" if gcc.endswith("gcc") else "c++", str(main_c), "-x", "none",
                    str(tmp_path / "model.o"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    assert out == int8_path.read_bytes()


def test_model_with_an_op_tflm_lacks_gets_no_resolver_and_says_why(tmp_path):
    with pytest.raises(ValueError, match=r"no kernel for op\(s\) \['DENSIFY'\]"):
        export.op_resolver_header("m", ["FULLY_CONNECTED", "DENSIFY"])
    res = export.export_model(fx.sparse_tflite_bytes(), tmp_path, name="sparse")
    assert res.op_resolver is None and not (tmp_path / "sparse_op_resolver.h").exists()
    assert res.metadata["tflm_unsupported_ops"] == ["DENSIFY"]
    assert res.metadata["arena_bytes"] is None
    assert _c_bytes(res.source.read_text()) == fx.sparse_tflite_bytes()


def test_cli_export(int8_path, tmp_path, capsys):
    rc = cli(["export", str(int8_path), f"--out={tmp_path / 'cli'}", "--name=fm"])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"wrote {tmp_path / 'cli' / 'fm.cc'}" in out
    assert json.loads((tmp_path / "cli" / "fm.json").read_text())["name"] == "fm"


def test_cli_export_rejects_non_tflite(tmp_path, capsys):
    bad = tmp_path / "model.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    rc = cli(["export", str(bad), f"--out={tmp_path}"])
    assert rc == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {bad}: not a TFLite model (file identifier b'\\r\\n\\x1a\\n', "
        "expected b'TFL3')")


def test_committed_example_files_agree_with_each_other():
    import hashlib
    import pathlib

    here = pathlib.Path(__file__).resolve().parents[1] / "tflite_models" / "example"
    content = (here / "fmnist_tiny_int8.tflite").read_bytes()
    meta = json.loads((here / "fmnist_tiny_int8.json").read_text())
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()
    assert meta["flash_bytes"] == len(content)
    assert _c_bytes((here / "fmnist_tiny_int8.cc").read_text()) == content
    from tfopt.tflite.model_info import inspect_model

    info = inspect_model(content)
    assert meta["ops"] == list(info.op_names)
    assert meta["input_scale"] == info.inputs[0].scale
    assert meta["input_zero_point"] == info.inputs[0].zero_point
