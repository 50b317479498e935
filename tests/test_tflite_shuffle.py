"""tfopt.tflite.rewrite_shuffle: int8 channel shuffles folded into a neighbouring conv's filter."""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite import lean, micro, rewrite_fc, rewrite_shuffle
from tfopt.tflite.convert import convert, make_lean
from tfopt.tflite.evaluate import predict
from tfopt.tflite.model_info import _model_object, inspect_model
from tflite_fixtures import op_names

SHAPE = (12, 12, 4)


def _shuffle(x, groups, name):
    h, w, c = (int(d) for d in x.shape[1:])
    x = layers.Reshape((h, w, groups, c // groups), name=f"{name}_split")(x)
    x = layers.Permute((1, 2, 4, 3), name=f"{name}_swap")(x)
    return layers.Reshape((h, w, c), name=f"{name}_merge")(x)


def _shuffle_model():
    """Three shuffles: dense conv -> s1 -> grouped conv (folds into the producer), grouped conv
    -> s2 -> dense 3x3 conv (folds into the consumer), grouped -> s3 -> grouped (only with
    densify)."""
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 1, activation="relu", name="dense_a")(inp)
    x = layers.Conv2D(8, 1, groups=2, name="grouped_b")(_shuffle(x, 2, "s1"))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="dense_c")(
        _shuffle(x, 4, "s2"))
    x = layers.Conv2D(8, 1, groups=2, name="grouped_d")(x)
    x = layers.Conv2D(8, 1, groups=2, name="grouped_e")(_shuffle(x, 2, "s3"))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, layers.Dense(5, name="logits")(x), name="shuffles")


@pytest.fixture(scope="module")
def plain():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((32,) + SHAPE).astype(np.float32)
    return convert(_shuffle_model(), "int8", representative_data=x, lean=False).content


def _plain_int8(inp, x, name: str) -> bytes:
    """The converter's int8 file of inp -> x -> GAP -> Dense(5), calibrated on 32 images."""
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inp, layers.Dense(5, name="logits")(x), name=name)
    x_cal = np.random.default_rng(0).standard_normal((32,) + SHAPE).astype(np.float32)
    return convert(model, "int8", representative_data=x_cal, lean=False).content


def _inputs(content, n=20):
    t = inspect_model(content).inputs[0]
    return np.random.default_rng(1).integers(-128, 128, (n,) + t.shape[1:]).astype(np.int8)


def _assert_same_outputs_everywhere(content, base, x):
    """Equal outputs on LiteRT reference kernels and XNNPACK; TFLM = LiteRT reference (0 LSB)."""
    for reference in (True, False):
        np.testing.assert_array_equal(predict(content, x, reference=reference, raw=True),
                                      predict(base, x, reference=reference, raw=True))
    if micro.micro_available():
        report = micro.run_micro(content, x, num_samples=len(x))
        assert report.ok and report.max_diff_lsb == 0


def test_permutation_of_the_converters_shuffle_chain(plain):
    m = _model_object(plain, "p")
    sg = m.subgraphs[0]
    from tfopt.tflite.rewrite import _graph, _op_names

    producer, consumers = _graph(sg)
    chains = rewrite_shuffle._chains(m, sg, _op_names(m), producer, consumers)
    perms = [list(p) for *_, p in chains]
    # groups=2 on 8 channels: k = j * 2 + g <- g * 4 + j
    assert perms == [[0, 4, 1, 5, 2, 6, 3, 7], [0, 2, 4, 6, 1, 3, 5, 7],
                     [0, 4, 1, 5, 2, 6, 3, 7]]


def test_fold_shuffles_is_bit_identical_and_removes_the_transposes(plain):
    """s1 folds into its dense producer, s2 into its dense consumer; s3 sits between grouped
    convs and stays (by default). Outputs equal on LiteRT reference, XNNPACK and TFLM."""
    base = make_lean(plain, fold_shuffles=False)[0]
    content, _, report = make_lean(plain)
    assert report["shuffles_folded"] == 2
    assert op_names(base).count("TRANSPOSE") == 3 and op_names(content).count("TRANSPOSE") == 1
    assert op_names(content).count("RESHAPE") == op_names(base).count("RESHAPE") - 4
    _assert_same_outputs_everywhere(content, base, _inputs(plain))


def test_densify_folds_the_shuffle_between_grouped_convs(plain):
    """With densify (make_lean's LiteRT-only dense_groups) the grouped consumer of s3 is
    written dense (block-diagonal) and takes the permutation: no TRANSPOSE left."""
    base = make_lean(plain, fold_shuffles=False)[0]
    m = _model_object(make_lean(plain, fold_shuffles=False, name="p")[0], "p")
    assert rewrite_shuffle.fold_shuffles(m, densify=True) == 3
    content = lean.serialize(m)
    assert "TRANSPOSE" not in op_names(content)
    x = _inputs(plain)
    for reference in (True, False):
        np.testing.assert_array_equal(predict(content, x, reference=reference, raw=True),
                                      predict(base, x, reference=reference, raw=True))
    assert make_lean(plain, dense_groups=True)[2]["shuffles_folded"] == 3


def test_shuffle_as_gather_is_bit_identical_and_leaves_no_transpose(plain):
    """The opt-in for TFLM: the shuffle left between grouped convs (s3) becomes one GATHER;
    smaller file, same outputs on LiteRT reference, XNNPACK and TFLM."""
    base = make_lean(plain)[0]
    content, _, report = make_lean(plain, shuffle_as_gather=True)
    assert report["shuffles_as_gather"] == 1
    assert "TRANSPOSE" not in op_names(content) and op_names(content).count("GATHER") == 1
    assert len(content) < len(base)
    _assert_same_outputs_everywhere(content, base, _inputs(plain))


def test_convert_target_picks_the_runtime_options():
    keras.utils.set_random_seed(0)
    model = _shuffle_model()
    x = np.random.default_rng(0).standard_normal((8,) + SHAPE).astype(np.float32)
    tflm = convert(model, "int8", representative_data=x, target="tflm")
    assert tflm.lean_report["shuffles_as_gather"] == 1 and "GATHER" in op_names(tflm.content)
    litert = convert(model, "int8", representative_data=x, target="litert")
    assert litert.lean_report["shuffles_folded"] == 3 and "GATHER" not in op_names(litert.content)
    with pytest.raises(ValueError, match=r"target='tlfm' \(did you mean 'tflm'\?\)"):
        convert(model, "int8", representative_data=x, target="tlfm")


def test_a_shuffle_feeding_a_graph_output_or_a_non_conv_stays():
    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 1, name="a")(inp)
    y = layers.MaxPooling2D(2, name="pool")(_shuffle(x, 2, "s"))   # producer dense: folds
    out = layers.Conv2D(8, 1, groups=2, name="g")(layers.Conv2D(8, 1, groups=2, name="h")(y))
    out = _shuffle(out, 2, "t")                                      # graph output: stays
    model = keras.Model(inp, out, name="tail")
    x = np.random.default_rng(0).standard_normal((16,) + SHAPE).astype(np.float32)
    content, _, report = make_lean(convert(model, "int8", representative_data=x,
                                           lean=False).content)
    assert report["shuffles_folded"] == 1 and op_names(content).count("TRANSPOSE") == 1


def test_a_shuffle_before_a_spatial_pad_folds_into_the_convs_after_the_pad():
    """shuffle -> PAD (H and W) -> dense conv (DiCE's weight-average conv once densified): the
    PAD reads the unshuffled tensor and the conv takes the permutation; a shuffle whose PAD
    also feeds a pooling op stays. Same outputs on LiteRT reference, XNNPACK and TFLM."""
    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 1, groups=2, activation="relu", name="grouped_a")(inp)
    x = layers.ZeroPadding2D(1, name="pad_a")(_shuffle(x, 2, "s1"))
    x = layers.Conv2D(8, 3, name="dense_b")(x)                     # 12x12 again
    x = layers.Conv2D(8, 1, groups=2, activation="relu", name="grouped_c")(x)
    padded = layers.ZeroPadding2D(1, name="pad_c")(_shuffle(x, 4, "s2"))
    y = layers.Conv2D(8, 3, name="dense_d")(padded)
    z = layers.AveragePooling2D(3, 1, name="pool_d")(padded)
    content = _plain_int8(inp, layers.Add(name="sum")([y, z]), "shuffle_pad")
    base = make_lean(content, fold_shuffles=False)[0]
    folded, _, report = make_lean(content)
    assert report["shuffles_folded"] == 1
    assert op_names(base).count("TRANSPOSE") == 2 and op_names(folded).count("TRANSPOSE") == 1
    _assert_same_outputs_everywhere(folded, base, _inputs(content))


def test_a_shuffle_before_a_max_pool_folds_and_lets_the_gate_follow_the_pool():
    """SE gate -> shuffle -> 2x2 max pool -> dense conv (vgg19_v12's stage ends): the pool reads
    the unshuffled tensor, the conv takes the permutation, and the gate MUL then moves after the
    pool (tfopt.tflite.rewrite_pool). Same outputs on LiteRT reference, XNNPACK and TFLM."""
    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 1, groups=2, activation="relu", name="grouped_a")(inp)
    g = layers.GlobalAveragePooling2D(keepdims=True, name="se_gap")(x)
    g = layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(g)
    x = layers.MaxPooling2D(2, name="pool")(_shuffle(layers.Multiply(name="se")([x, g]), 2, "s"))
    x = layers.Conv2D(8, 3, padding="same", name="dense_b")(x)
    content = _plain_int8(inp, x, "shuffle_pool")
    base = make_lean(content, fold_shuffles=False, gate_after_pool=False)[0]
    folded, _, report = make_lean(content)
    assert report["shuffles_folded"] == 1 and report["gates_after_pool"] == 1
    assert "TRANSPOSE" in op_names(base) and "TRANSPOSE" not in op_names(folded)
    x = _inputs(content)
    assert len({tuple(r) for r in predict(base, x, reference=True, raw=True)}) > 1
    _assert_same_outputs_everywhere(folded, base, x)


def test_any_size_densifies_a_grouped_neighbour_on_a_small_map():
    """32 channels on 12x12: a dense 1x1 filter has 1,024 weights > 144 pixels, so the size rule
    of `densify` keeps the shuffle; `any_size` (--target=litert) folds it, bit-identical."""
    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(32, 1, groups=4, activation="relu", name="grouped_a")(inp)
    x = layers.Conv2D(32, 1, groups=4, activation="relu", name="grouped_b")(_shuffle(x, 4, "s"))
    content = _plain_int8(inp, x, "small_map")
    base = make_lean(content, fold_shuffles=False)[0]
    by_size = _model_object(base, "b")
    assert rewrite_shuffle.fold_shuffles(by_size, densify=True) == 0
    folded, _, report = make_lean(content, dense_groups=True, densify_for_shuffles=True)
    assert report["shuffles_folded"] == 1 and "TRANSPOSE" not in op_names(folded)
    _assert_same_outputs_everywhere(folded, base, _inputs(content))


@pytest.mark.parametrize("groups, folded", [(4, 0), (16, 1)])
def test_any_size_keeps_a_shuffle_whose_dense_neighbours_would_cost_too_many_macs(groups, folded):
    """256 channels on 12x12: writing either grouped neighbour dense adds (1 - 1/g) x 65,536
    weights x 144 pixels > MAX_EXTRA_MACS. With 4 groups the shuffle stays (resnet101_v05's
    case); with 16 (>= MANY_GROUPS) it folds, bit-identical."""
    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(256, 1, activation="relu", name="dense")(inp)
    x = layers.Conv2D(256, 1, groups=groups, activation="relu", name="grouped_a")(x)
    x = layers.Conv2D(256, 1, groups=groups, name="grouped_b")(_shuffle(x, groups, "s"))
    content = _plain_int8(inp, x, f"wide_{groups}")
    extra = 144 * 65536 * (1 - 1 / groups)
    assert extra > rewrite_shuffle.MAX_EXTRA_MACS
    lean_file, _, report = make_lean(content, dense_groups=True, densify_for_shuffles=True)
    assert report["shuffles_folded"] == folded
    assert ("TRANSPOSE" in op_names(lean_file)) == (not folded)
    if folded:
        _assert_same_outputs_everywhere(lean_file, make_lean(content, fold_shuffles=False)[0],
                                        _inputs(content))


def test_a_shuffle_read_by_a_squeeze_excite_block_moves_past_it_and_folds():
    """fire + shuffle + SE (vgg19_v12): the shuffle's readers are the SE's MEAN and gate MUL;
    `shuffles_past_se` moves it after the MUL (squeeze filter and expand rows permuted), where
    the next grouped conv, written dense, takes it. Same outputs on every runtime."""
    from tfopt.blocks.se import squeeze_excite

    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(16, 1, groups=4, activation="relu", name="grouped_a")(inp)
    x = squeeze_excite(_shuffle(x, 4, "s"), name="se")
    x = layers.Conv2D(16, 1, groups=4, activation="relu", name="grouped_b")(x)
    content = _plain_int8(inp, x, "shuffle_se")
    base = make_lean(content, fold_shuffles=False)[0]
    assert op_names(base).count("TRANSPOSE") == 1
    m = _model_object(content, "p")
    assert rewrite_fc.fc_as_conv(m) == 3                   # the SE's FCs as 1x1 convs first
    unmoved = lean.serialize(m)
    assert rewrite_shuffle.shuffles_past_se(m) == 1
    assert rewrite_shuffle.shuffles_past_se(m) == 0       # after the MUL now: not read by an SE
    moved = lean.serialize(m)
    ops = op_names(moved)
    assert ops.index("TRANSPOSE") > ops.index("MUL")
    _assert_same_outputs_everywhere(moved, unmoved, _inputs(content))
    folded, _, report = make_lean(content, dense_groups=True, densify_for_shuffles=True)
    assert report["shuffles_past_se"] == 1 and "TRANSPOSE" not in op_names(folded)
    _assert_same_outputs_everywhere(folded, base, _inputs(content))
