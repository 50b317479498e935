"""Offline TFLM arena plan (tfopt.tflite.arena_plan) and the arena breakdown in `inspect`."""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite import arena_plan, lean, micro
from tfopt.tflite.convert import convert
from tfopt.tflite.inspect import inspect_tflite, requant_array_bytes
from tfopt.tflite.model_info import _model_object

pytestmark = pytest.mark.skipif(not micro.micro_available(), reason="tflite-micro not installed")


def _residual_ghost_model(blocks=3, c=4, hw=16):
    """Residual blocks around a ghost concat (conv + depthwise of it), then a padded stride-2
    depthwise: the pattern where TFLM's online planner leaves a hole (resnet101_v13)."""
    inp = keras.Input((hw, hw, 3))
    x = layers.Conv2D(c, 3, padding="same")(inp)
    for _ in range(blocks):
        a = layers.Conv2D(2 * c, 1, activation="relu")(x)
        y = layers.Concatenate()([a, layers.DepthwiseConv2D(3, padding="same")(a)])
        x = layers.Add()([x, layers.Conv2D(c, 1)(y)])
    x = layers.DepthwiseConv2D(3, strides=2)(layers.ZeroPadding2D(1)(x))
    return keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))


@pytest.fixture(scope="module")
def planned():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((8, 16, 16, 3)).astype(np.float32)
    content = convert(_residual_ghost_model(), "int8", representative_data=x).content
    obj = _model_object(content, "m")
    entry = next(m for m in obj.metadata if m.name in (arena_plan.METADATA_NAME,
                                                       arena_plan.METADATA_NAME.encode()))
    n = len(obj.subgraphs[0].tensors)
    obj.buffers[entry.buffer].data = np.array([1, 0, n] + [-1] * n, "<i4").view(np.uint8)
    return content, lean.serialize(obj)


def _tflm_outputs(content, x):
    interp, _ = micro.load(content)
    out = []
    for i in range(len(x)):
        interp.set_input(x[i:i + 1], 0)
        interp.invoke()
        out.append(np.array(interp.get_output(0)).copy())
    return np.stack(out)


def test_offline_plan_reaches_the_liveness_peak_and_saves_arena(planned):
    content, online = planned
    obj = _model_object(content, "m")
    peak = arena_plan.liveness_peak(obj)
    head = micro.arena_breakdown(content)["head"]
    online_head = micro.arena_breakdown(online)["head"]
    assert head == peak == 9216            # measured: the online planner gives 10,240
    assert online_head == arena_plan.greedy_head(obj) > head
    assert micro.arena_bytes_of(micro.load(content)[0]) == micro.arena_bytes_of(
        micro.load(online)[0]) - (online_head - head)


def test_offline_plan_changes_no_output(planned):
    content, online = planned
    x = np.random.default_rng(1).integers(-128, 128, (20, 16, 16, 3)).astype(np.int8)
    np.testing.assert_array_equal(_tflm_outputs(content, x), _tflm_outputs(online, x))
    report = micro.run_micro(content, x, num_samples=20)
    assert report.ok and report.max_diff_lsb == 0


def test_plan_never_overlaps_buffers_alive_together(planned):
    content, _ = planned
    obj = _model_object(content, "m")
    life = arena_plan.lifetimes(obj)
    offsets, _ = arena_plan.best_plan(obj)
    in_place = arena_plan._in_place_adds(obj, life)
    shared = {frozenset(p) for p in in_place.items()}
    for t, (a, b, s) in life.items():
        for u, (c, d, z) in life.items():
            if t < u and a <= d and c <= b and frozenset((t, u)) not in shared:
                assert offsets[t] + s <= offsets[u] or offsets[u] + z <= offsets[t], (t, u)


def test_inspect_breaks_the_arena_down(planned):
    content, _ = planned
    r = inspect_tflite(content, profile=False)
    b = r.arena_breakdown
    parts = ("head", "node_and_registration", "eval_tensors", "kernel_data",
             "persistent_tensors", "other_tail")
    assert sum(b[k] for k in parts) == b["total"] == r.arena_bytes
    assert b["node_and_registration"] == 64 * r.num_ops
    assert b["eval_tensors"] == 24 * r.num_tensors
    assert b["offline_plan"] and 0 < b["requant_arrays"] < b["kernel_data"]
    assert b["requant_arrays"] == requant_array_bytes(_model_object(content, "m"))
