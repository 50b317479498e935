"""benchmarks/tflite_latency_floor.py: the timing-only bypass graph behind the measured floors."""

import importlib.util
import os
import sys

import numpy as np

from tfopt._keras import keras, layers
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import make_interpreter
from tfopt.tflite.model_info import inspect_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))   # its `from tflite_latency import ...`
_spec = importlib.util.spec_from_file_location(
    "tflite_latency_floor", os.path.join(REPO, "benchmarks", "tflite_latency_floor.py"))
floor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor)


def _model():
    """Fire-like concat -> ReLU (a clamp) -> BN (a MUL by a constant) -> shuffle -> grouped conv."""
    inp = keras.Input((12, 12, 4), name="image")
    p = layers.Conv2D(8, 1, name="primary")(inp)
    x = layers.Concatenate(name="cat")([layers.DepthwiseConv2D(3, padding="same")(p), p])
    x = layers.BatchNormalization(name="bn")(layers.ReLU(name="relu")(x))
    x = layers.Reshape((12, 12, 2, 8))(x)
    x = layers.Reshape((12, 12, 16))(layers.Permute((1, 2, 4, 3))(x))
    x = layers.Conv2D(8, 1, groups=2, name="grouped")(x)
    return keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)), name="ghost")


def test_bypass_removes_shuffle_mul_and_clamp_and_the_graph_still_runs_on_xnnpack():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((16, 12, 12, 4)).astype(np.float32)
    content = convert(_model(), "int8", representative_data=x).content
    ops = [op.name for op in inspect_model(content).operators]
    assert {"TRANSPOSE", "MUL", "MAX_POOL_2D"} <= set(ops)
    bypassed, counts, n = floor.timing_graph(content, bypass=True)
    assert counts == {"shuffle": 1, "mul": 1, "clamp": 1}
    left = [op.name for op in inspect_model(bypassed).operators]
    assert not {"TRANSPOSE", "MUL", "MAX_POOL_2D"} & set(left) and n == len(left)
    assert len(left) == len(ops) - 5          # RESHAPE, TRANSPOSE, RESHAPE, MUL, MAX_POOL_2D
    assert floor.timing_graph(content, bypass=False)[2] == len(ops)
    interp = make_interpreter(bypassed, num_threads=1)    # XNNPACK prepares the graph
    interp.invoke()
    assert any(d["op_name"] == "DELEGATE" for d in interp._get_ops_details())
