"""Lean int8 flatbuffers (tfopt.tflite.lean / rewrite) and `python -m tfopt.tflite inspect`."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite import lean, micro, rewrite
from tfopt.tflite.convert import convert, make_lean
from tfopt.tflite.evaluate import predict
from tfopt.tflite.inspect import bytes_by_category, format_text, inspect_tflite
from tfopt.tflite.model_info import _model_object, inspect_model

SHAPE = (12, 12, 4)


def _concat_relu_model():
    """Fire-like concat -> ReLU, a channel shuffle and a 1-channel-group conv (DiCE style)."""
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    a = layers.Conv2D(8, 1, name="expand1x1")(x)
    b = layers.DepthwiseConv2D(3, padding="same", name="expand_dw")(x)
    x = layers.ReLU(name="fire_relu")(layers.Concatenate(name="fire_cat")([a, b]))
    x = layers.Reshape((12, 12, 2, 8), name="shuffle_split")(x)
    x = layers.Permute((1, 2, 4, 3), name="shuffle_swap")(x)
    x = layers.Reshape((12, 12, 16), name="shuffle_merge")(x)
    x = layers.Conv2D(32, 3, groups=16, padding="same", name="proj")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, layers.Dense(5, name="logits")(x), name="concat_relu")


def _images(n=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + SHAPE).astype(np.float32)


@pytest.fixture(scope="module")
def converted():
    keras.utils.set_random_seed(0)
    model = _concat_relu_model()
    plain = convert(model, "int8", representative_data=_images(32), lean=False)
    return plain.content, make_lean(plain.content, name="concat_relu", fuse_relu=True)


def _int8_inputs(content, n=6):
    t = inspect_model(content).inputs[0]
    return np.random.default_rng(1).integers(-128, 128, (n,) + t.shape[1:]).astype(np.int8)


def test_names_and_sharing_change_no_output(converted):
    plain, _ = converted
    shared, sidecar = lean.lean(plain)
    assert len(shared) < len(plain)
    x = _int8_inputs(plain)
    for reference in (True, False):
        np.testing.assert_array_equal(predict(shared, x, reference=reference, raw=True),
                                      predict(plain, x, reference=reference, raw=True))
    info = inspect_model(shared)
    assert info.inputs[0].name == inspect_model(plain).inputs[0].name   # I/O names kept
    restored = lean.restore_names(shared, sidecar)
    names = [t.name for t in _model_object(restored, "r").subgraphs[0].tensors]
    assert names == [t.name for t in _model_object(plain, "p").subgraphs[0].tensors]


def test_make_lean_rewrites_and_stays_integer(converted):
    plain, (content, sidecar, report) = converted
    ops_before = [op.name for op in inspect_model(plain).operators]
    ops_after = [op.name for op in inspect_model(content).operators]
    assert "RELU" in ops_before and "RELU" not in ops_after
    assert report["relu_fused"] == 1 and report["grouped_to_depthwise"] == 1
    assert ops_after.count("DEPTHWISE_CONV_2D") == ops_before.count("DEPTHWISE_CONV_2D") + 1
    assert report["per_tensor_layers"] >= 1
    assert len(content) < report["bytes_before"] == len(plain)
    assert sidecar["subgraphs"][0]["tensors"]
    assert not inspect_model(content).float_ops()


def test_grouped_to_depthwise_is_bit_identical(converted):
    plain, _ = converted
    model = _model_object(plain, "p")
    assert rewrite.grouped_to_depthwise(model) == 1
    x = _int8_inputs(plain)
    out = predict(lean.serialize(model), x, reference=True, raw=True)
    np.testing.assert_array_equal(out, predict(plain, x, reference=True, raw=True))


def test_per_tensor_keeps_layers_whose_channels_differ():
    w = np.ones((4, 1, 1, 8), dtype=np.int8) * 100
    scales = np.array([1.0, 1.0, 1.0, 1e-3])          # one channel 1000x smaller
    _, _, err = rewrite._requantize(w, scales, 0)
    assert err > rewrite.MAX_ERROR_INCREASE
    _, _, err = rewrite._requantize(w, np.ones(4), 0)
    assert err < 1e-6


@pytest.mark.skipif(not micro.micro_available(), reason=str(micro.micro_unavailable_reason()))
def test_lean_model_tflm_equals_litert_reference(converted):
    _, (content, _, _) = converted
    report = micro.run_micro(content, _images(6), num_samples=6)
    assert report.ok, report.error
    assert report.max_diff_lsb == 0


def test_inspect_bytes_ops_profile_and_peak(converted):
    _, (content, _, _) = converted
    result = inspect_tflite(content, runs=2, name="concat_relu")
    assert sum(result.bytes_by_category.values()) == result.size_bytes == len(content)
    assert result.bytes_by_category["duplicates"] == 0          # lean: nothing left to share
    assert result.bytes_by_category["strings"] < 200
    assert result.op_counts["DEPTHWISE_CONV_2D"] == 2 and "RELU" not in result.op_counts
    assert result.int8_coverage == 1.0 and result.float_ops == []
    assert result.num_ops == sum(result.op_counts.values())
    shares = [v["share"] for v in result.latency_by_op.values()]
    assert abs(sum(shares) - 1.0) < 1e-6 and all(s >= 0 for s in shares)
    assert result.peak_bytes == sum(t["bytes"] for t in result.peak_tensors) > 0
    if micro.micro_available():
        assert result.arena_bytes >= result.peak_bytes
    json.dumps(result.to_dict())
    assert "bytes by category" in format_text(result)


def test_converter_file_shows_its_strings_and_duplicates(converted):
    plain, _ = converted
    cats = bytes_by_category(plain)
    assert sum(cats.values()) == len(plain)
    assert cats["strings"] > 500 and cats["duplicates"] > 0 and cats["weights"] > 0


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tfopt.tflite", "inspect", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_json_and_sidecar_names(converted, tmp_path):
    _, (content, sidecar, _) = converted
    path = tmp_path / "m.tflite"
    path.write_bytes(content)
    (tmp_path / "m.names.json").write_text(lean.sidecar_json(sidecar))
    proc = _cli(str(path), "--format=json", "--no_profile", "--no_micro")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["size_bytes"] == len(content) and out["latency_by_op"] is None
    # Stripped names come back from the sidecar for the peak tensors.
    assert all(not t["name"].startswith("tensor ") for t in out["peak_tensors"])


@pytest.mark.parametrize("payload", [None, b"TFL3", b"\x1c\x00\x00\x00TFL3" + b"\xff" * 64,
                                     b"not a model at all"])
def test_cli_bad_file_one_line_error(tmp_path, payload):
    path = tmp_path / "bad.tflite"
    if payload is not None:
        path.write_bytes(payload)
    proc = _cli(str(path), "--no_profile", "--no_micro")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and str(path) in lines[-1]
    assert "Traceback" not in proc.stderr


def test_activations_refer_to_the_empty_buffer_zero(converted):
    """The converter gives every activation an empty buffer of its own; the lean file points
    them all at buffer 0 (the schema's empty buffer) and keeps only buffers with data."""
    plain, _ = converted
    before = _model_object(plain, "p")
    after = _model_object(lean.lean(plain, names=True)[0], "l")
    def empty(m, t):
        return lean._empty(m.buffers[t.buffer])
    assert sum(1 for t in before.subgraphs[0].tensors if empty(before, t) and t.buffer) > 3
    assert all(t.buffer == 0 for t in after.subgraphs[0].tensors if empty(after, t))
    assert sum(1 for b in after.buffers[1:] if lean._empty(b)) == 0
    assert len(after.buffers) < len(before.buffers)


def test_has_rank_is_cleared_where_the_shape_gives_the_rank(converted):
    """The converter sets has_rank on every ranked tensor; the lean file keeps it only on empty
    shapes, 4 B per tensor less, with outputs unchanged on LiteRT and TFLM."""
    plain, _ = converted
    model = _model_object(plain, "p")
    ranked = sum(1 for t in model.subgraphs[0].tensors if t.hasRank and len(t.shape))
    assert ranked > 10
    flagged = lean.serialize(model)            # the model object keeps its flags (copied)
    assert lean.ranks_from_shapes(model) == ranked
    assert lean.ranks_from_shapes(model) == 0
    after = _model_object(flagged, "l").subgraphs[0].tensors
    assert not any(t.hasRank for t in after if len(t.shape))
    x = _int8_inputs(plain)
    np.testing.assert_array_equal(predict(flagged, x, reference=True, raw=True),
                                  predict(plain, x, reference=True, raw=True))
    if micro.micro_available():
        # Against LiteRT's reference kernels the plain file itself may be 1 LSB off (the
        # converter's FULLY_CONNECTED rounds differently in TFLM); the flags change nothing.
        report = micro.run_micro(flagged, num_samples=4, name="ranks")
        plain_report = micro.run_micro(plain, num_samples=4, name="plain")
        assert report.ok and report.max_diff_lsb == plain_report.max_diff_lsb, report.error


def test_serialize_leaves_the_model_object_unchanged(converted):
    plain, _ = converted
    model = _model_object(plain, "p")
    lean.serialize(model)
    options = [op.builtinOptions for op in model.subgraphs[0].operators if op.builtinOptions]
    assert len({id(o) for o in options}) == len(options)   # no table merged in the caller's copy


def test_relu_as_max_pool_is_a_clamp_in_the_input_grid_that_tflm_matches(converted):
    plain, _ = converted
    content, _, report = make_lean(plain, name="concat_relu")              # on by default
    ops = [op.name for op in inspect_model(content).operators]
    assert report["relu_fused"] == 0 and report["relu_as_pool"] == 1
    assert "RELU" not in ops and ops.count("MAX_POOL_2D") == 1
    assert make_lean(plain, relu_as_pool=False)[2]["relu_as_pool"] == 0
    # The rewritten op alone: max(q, zero_point) of its input, in the input's quantization.
    m = _model_object(content, "lean")
    sg = m.subgraphs[0]
    pool = next(op for op in sg.operators
                if m.operatorCodes[op.opcodeIndex].builtinCode == 17)   # MAX_POOL_2D
    x_q, y_q = (sg.tensors[int(t)].quantization for t in (pool.inputs[0], pool.outputs[0]))
    assert list(x_q.scale) == list(y_q.scale) and list(x_q.zeroPoint) == list(y_q.zeroPoint)
    only = _model_object(plain, "plain")             # the same rewrite alone on the plain file
    assert rewrite.relu_as_max_pool(only) == 1
    x = _int8_inputs(content)
    pooled_file = lean.serialize(only)
    pooled = predict(pooled_file, x, reference=True, raw=True).astype(int)
    plain_logits = predict(plain, x, reference=True, raw=True).astype(int)
    assert np.abs(pooled - plain_logits).max() <= 3    # the RELU's output grid only (2 measured)


def _tflm_vs_reference(content, n):
    """Largest |TFLM - LiteRT reference| over n random int8 inputs (LSB)."""
    report = micro.run_micro(content, _int8_inputs(content, n), num_samples=n)
    assert report.ok, report.error
    return report.max_diff_lsb


@pytest.mark.skipif(not micro.micro_available(), reason=str(micro.micro_unavailable_reason()))
def test_default_lean_file_is_exact_on_tflm_over_many_inputs(converted):
    """The shipped default (RELU as max pool, per-tensor weights, FC as conv) gives TFLM =
    LiteRT reference on 300 random inputs; without the FC rewrite the converter's own
    FULLY_CONNECTED rounds differently in the two runtimes (1 LSB on some of these inputs)."""
    plain, _ = converted
    content, _, report = make_lean(plain, name="concat_relu")
    assert report["fc_as_conv"] == 1 and report["relu_as_pool"] == 1
    assert report["per_tensor_layers"] >= 1
    assert "FULLY_CONNECTED" not in {op.name for op in inspect_model(content).operators}
    assert _tflm_vs_reference(content, 300) == 0
    assert _tflm_vs_reference(plain, 300) == 1               # the converter's file: FC rounding
    assert _tflm_vs_reference(make_lean(plain, fc_as_conv=False)[0], 300) == 1


@pytest.mark.skipif(not micro.micro_available(), reason=str(micro.micro_unavailable_reason()))
def test_fc_as_conv_computes_what_tflm_computes_for_the_fc(converted):
    """LiteRT reference on the rewritten file = TFLM on the converter's file, bit for bit: the
    1x1 CONV_2D requantizes like TFLM's FULLY_CONNECTED (double rounding)."""
    from tflite_micro.python.tflite_micro import runtime

    from tfopt.tflite import rewrite_fc

    plain, _ = converted
    model = _model_object(plain, "p")
    assert rewrite_fc.fc_as_conv(model) == 1
    conv_file = lean.serialize(model)
    ops = [op.name for op in inspect_model(conv_file).operators]
    assert ops[-2:] == ["CONV_2D", "RESHAPE"] and "FULLY_CONNECTED" not in ops
    assert ops.count("RESHAPE") == 3            # the MEAN keeps dims: no RESHAPE before the conv
    x = _int8_inputs(plain, 200)
    interp = runtime.Interpreter.from_bytes(plain, arena_size=1 << 20)
    tflm = []
    for i in range(len(x)):
        interp.set_input(x[i:i + 1], 0)
        interp.invoke()
        tflm.append(np.array(interp.get_output(0)).reshape(-1))
    ref = predict(conv_file, x, reference=True, raw=True)
    np.testing.assert_array_equal(ref, np.stack(tflm))
    fast = predict(conv_file, x, raw=True).astype(int)        # XNNPACK runs the conv too
    assert np.abs(fast - ref.astype(int)).max() <= 2


def test_depthwise_multiplier_one_is_bit_identical_in_every_runtime(converted):
    """A depthwise with multiplier M > 1 (here the 1-channel-group proj, M = 2) becomes a
    one-hot 1x1 CONV_2D (exact channel copy) + multiplier 1: same outputs on LiteRT's
    reference kernels, on XNNPACK and on TFLM."""
    from tfopt.tflite import rewrite_dw

    plain, _ = converted
    model = _model_object(plain, "p")
    assert rewrite.grouped_to_depthwise(model) == 1
    before = lean.serialize(model)
    assert rewrite_dw.depthwise_multiplier_one(model) == 1
    after = lean.serialize(model)
    sg = model.subgraphs[0]
    assert all(op.builtinOptions.depthMultiplier == 1 for op in sg.operators
               if type(op.builtinOptions).__name__ == "DepthwiseConv2DOptionsT")
    x = _int8_inputs(plain, 20)
    for reference in (True, False):
        np.testing.assert_array_equal(predict(after, x, reference=reference, raw=True),
                                      predict(before, x, reference=reference, raw=True))
    assert make_lean(plain)[2]["dw_multiplier_one"] == 1
    if micro.micro_available():  # the plain file's FULLY_CONNECTED may round 1 LSB apart
        assert _tflm_vs_reference(after, 20) == _tflm_vs_reference(before, 20)


def test_dense_groups_is_opt_in_and_bit_identical():
    """A grouped 1x1 conv on a large activation written dense (block-diagonal filter): same
    int8 outputs on LiteRT's reference kernels and on XNNPACK; off by default."""
    from tfopt.tflite import rewrite_groups

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 8), name="image")
    x = layers.Conv2D(16, 1, groups=4, activation="relu", name="grouped")(inp)
    model = keras.Model(inp, layers.Conv2D(4, 1, name="head")(x), name="groups")
    rng = np.random.default_rng(0)
    plain = convert(model, "int8", lean=False,
                    representative_data=rng.standard_normal((16, 16, 16, 8)).astype(np.float32))
    assert make_lean(plain.content)[2]["dense_groups"] == 0
    content, _, report = make_lean(plain.content, dense_groups=True)
    assert report["dense_groups"] == 1
    m = _model_object(content, "m")
    shapes = [list(t.shape) for t in m.subgraphs[0].tensors if list(t.shape) == [16, 1, 1, 8]]
    assert shapes, "the grouped filter [16, 1, 1, 2] is now dense [16, 1, 1, 8]"
    x = _int8_inputs(content, 10)
    base = make_lean(plain.content)[0]
    for reference in (True, False):
        np.testing.assert_array_equal(predict(content, x, reference=reference, raw=True),
                                      predict(base, x, reference=reference, raw=True))
    tiny = _model_object(plain.content, "p")
    assert rewrite_groups.dense_groups(tiny, min_pixels_per_weight=1e9)["layers"] == 0


def _branchy_model():
    """Two 3-conv branches from one input, joined by a concat: the order matters."""
    inp = keras.Input((16, 16, 4), name="image")
    outs = []
    for b in range(2):
        x = inp
        for k in range(3):
            x = layers.Conv2D(16, 1, activation="relu", name=f"b{b}_c{k}")(x)
        outs.append(layers.Conv2D(2, 1, name=f"b{b}_out")(x))
    return keras.Model(inp, layers.Concatenate(name="cat")(outs), name="branchy")


def test_memory_order_finishes_branches_first_and_changes_no_output():
    from tfopt.tflite import schedule
    from tfopt.tflite.inspect import liveness_peak

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((8, 16, 16, 4)).astype(np.float32)
    plain = convert(_branchy_model(), "int8", representative_data=x, lean=False).content
    model = _model_object(plain, "p")
    sg = model.subgraphs[0]
    # interleave the branches (b0_c0, b1_c0, b0_c1, ...): a valid order with a high peak
    def rank(op):
        name = (sg.tensors[int(op.outputs[0])].name or b"").decode()
        layers_ = [f"b{b}_{'out' if k == 3 else f'c{k}'}" for k in range(4) for b in range(2)]
        return next((r for r, layer in enumerate(layers_) if layer in name), 99)

    order = sorted(sg.operators, key=rank)
    sg.operators = order
    interleaved = lean.serialize(model)
    peak = liveness_peak(model)[0]
    result = schedule.memory_order(model)
    assert result["reordered"] and result["peak_before"] == peak > result["peak_after"]
    assert result["peak_after"] == liveness_peak(model)[0]
    xq = _int8_inputs(plain, 5)
    np.testing.assert_array_equal(predict(lean.serialize(model), xq, reference=True, raw=True),
                                  predict(interleaved, xq, reference=True, raw=True))
    again = schedule.memory_order(model)          # already the best order found: kept
    assert not again["reordered"] and again["peak_before"] == result["peak_after"]


def test_requant_ratio_cap_makes_xnnpack_accept_a_degenerate_output_scale(converted):
    """A conv output calibrated to a near-zero range (an untrained SE conv) gives a
    requantization ratio >= 256, which XNNPACK refuses ("failed to create XNNPACK runtime",
    the unseeded vgg19_v13 failure); the cap raises that scale and the model runs."""
    from tfopt.tflite import rewrite_scale
    from tfopt.tflite.evaluate import make_interpreter

    plain, _ = converted
    model = _model_object(plain, "p")
    sg = model.subgraphs[0]
    kinds = rewrite._op_names(model)
    stem = kinds.index("CONV_2D")
    op = sg.operators[stem]
    x, w, y = (sg.tensors[int(t)].quantization for t in (op.inputs[0], op.inputs[1],
                                                           op.outputs[0]))
    y.scale = np.array([float(x.scale[0]) * float(np.max(w.scale)) / 300.0], np.float32)
    degenerate = lean.serialize(model)
    with pytest.raises(RuntimeError):
        make_interpreter(degenerate).invoke()
    assert rewrite_scale.cap_requant_ratio(model) == 1
    fixed = lean.serialize(model)
    make_interpreter(fixed).invoke()                                   # XNNPACK prepares
    ratio = float(x.scale[0]) * float(np.max(w.scale)) / float(
        sg.tensors[int(op.outputs[0])].quantization.scale[0])
    assert ratio == pytest.approx(rewrite_scale.MAX_RATIO, rel=1e-5)
    assert rewrite_scale.cap_requant_ratio(model) == 0                 # nothing left to cap
    xq = _int8_inputs(plain, 5)
    ref = predict(fixed, xq, reference=True, raw=True)
    np.testing.assert_array_equal(predict(fixed, xq, raw=True).shape, ref.shape)
    assert make_lean(plain)[2]["ratio_capped"] == 0                   # a healthy file: untouched


def test_requant_ratio_cap_raises_a_whole_concat_group():
    """A capped conv that feeds a concat: the concat's other input and its output take the same
    raised scale (TFLite's int8 concat refuses unequal scales; a 89 %-pruned resnet101_v13
    failed on LiteRT this way)."""
    from tfopt.tflite import rewrite_scale
    from tfopt.tflite.evaluate import make_interpreter

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    a = layers.Conv2D(2, 1, name="a")(inp)
    b = layers.Conv2D(2, 1, name="b")(inp)
    out = layers.Conv2D(3, 1, name="after")(layers.Concatenate(name="cat")([a, b]))
    x = np.random.default_rng(0).standard_normal((8, 8, 8, 3)).astype(np.float32)
    plain = convert(keras.Model(inp, out), "int8", representative_data=x, lean=False).content
    model = _model_object(plain, "p")
    sg = model.subgraphs[0]
    kinds = rewrite._op_names(model)
    cat = sg.operators[kinds.index("CONCATENATION")]
    group = [int(t) for t in cat.inputs] + [int(cat.outputs[0])]
    conv = next(op for k, op in zip(kinds, sg.operators)
                if k == "CONV_2D" and int(op.outputs[0]) == int(cat.inputs[0]))
    xs, ws = (sg.tensors[int(t)].quantization for t in (conv.inputs[0], conv.inputs[1]))
    tiny = np.array([float(xs.scale[0]) * float(np.max(ws.scale)) / 300.0], np.float32)
    for t in group:                       # the converter gives a concat group one grid
        sg.tensors[t].quantization.scale = tiny.copy()
    assert rewrite_scale.cap_requant_ratio(model) >= 1
    scales = {float(sg.tensors[t].quantization.scale[0]) for t in group}
    assert len(scales) == 1 and scales.pop() > float(tiny[0])
    fixed = lean.serialize(model)
    xq = _int8_inputs(plain, 3)
    predict(fixed, xq, reference=True, raw=True)        # the reference concat prepares
    make_interpreter(fixed).invoke()                    # and XNNPACK


def test_weight_bytes_count_a_shared_buffer_once(converted):
    """Two buffers with equal contents (as rewrite_dw's one-hot filters are): the lean
    serializer writes their data once, so the weights category counts it once and no
    category goes negative (it did: CIFAR-10 vgg19_v08 gave structure = -126,864 B)."""
    _, (content, _, _) = converted
    model = _model_object(content, "concat_relu")
    tensors = model.subgraphs[0].tensors
    biggest = max((t for t in tensors if model.buffers[t.buffer].data is not None),
                  key=lambda t: len(model.buffers[t.buffer].data))
    copy = type(model.buffers[biggest.buffer])()
    copy.data = np.array(model.buffers[biggest.buffer].data, dtype=np.uint8)
    model.buffers.append(copy)
    biggest.buffer = len(model.buffers) - 1            # same contents, a second buffer
    twice = bytes(lean.serialize(model))
    cats, once = bytes_by_category(twice), bytes_by_category(content)
    assert sum(cats.values()) == len(twice)
    assert all(v >= 0 for v in cats.values()), cats
    assert cats["weights"] == once["weights"]
