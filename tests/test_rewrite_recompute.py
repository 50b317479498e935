"""A cheap tensor recomputed (or an op deferred) at the arena peak (tfopt.tflite.rewrite_recompute)."""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.blocks.ghost import ghost_bottleneck
from tfopt.models.trained_like import trained_like_batch_norm
from tfopt.tflite import arena_plan, micro
from tfopt.tflite.convert import convert, make_lean
from tfopt.tflite.evaluate import predict
from tfopt.tflite.model_info import _model_object

HW = 16


def _stride2_ghost_model():
    """A residual ghost block (grouped primary + shuffle) before a stride-2 ghost bottleneck:
    resnet101_v13's arena peak, where both ghost halves are padded for the strided depthwise."""
    inp = keras.Input((HW, HW, 3))
    x = layers.Conv2D(8, 3, padding="same")(inp)
    x = ghost_bottleneck(x, expand=16, filters=8, groups=2, name="b1")
    x = ghost_bottleneck(x, expand=32, filters=12, stride=2, downsample=True,
                         downsample_dw=True, groups=2, name="b2")
    return keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))


@pytest.fixture(scope="module")
def files():
    keras.utils.set_random_seed(0)
    model = _stride2_ghost_model()
    trained_like_batch_norm(model, seed=0)   # BN offsets != 0: the ghost offset ADDs exist
    x = np.random.default_rng(0).standard_normal((16, HW, HW, 3)).astype(np.float32)
    plain = convert(model, "int8", representative_data=x, lean=False).content
    kept, _, kept_report = make_lean(plain, recompute=False)
    changed, _, report = make_lean(plain)
    return kept, kept_report, changed, report


def _inputs(n=12):
    return np.random.default_rng(1).integers(-128, 128, (n, HW, HW, 3)).astype(np.int8)


def test_recompute_lowers_the_planned_head(files):
    kept, kept_report, changed, report = files
    assert report["recomputed"] >= 1 and kept_report["recomputed"] == 0
    heads = [arena_plan.best_plan(_model_object(c, "m"))[1] for c in (kept, changed)]
    assert heads[1] < heads[0]
    assert report["planned_head_bytes"] == heads[1]


def test_recompute_changes_no_output(files):
    kept, _, changed, _ = files
    for reference in (True, False):
        np.testing.assert_array_equal(predict(changed, _inputs(), reference=reference, raw=True),
                                      predict(kept, _inputs(), reference=reference, raw=True))


@pytest.mark.skipif(not micro.micro_available(), reason="tflite-micro not installed")
def test_tflm_runs_the_recomputed_graph_exactly_and_in_less_arena(files):
    kept, _, changed, _ = files
    runs = [micro.run_micro(c, num_samples=4, compare=True, name="m") for c in (kept, changed)]
    assert runs[1].max_diff_lsb == 0
    assert runs[1].arena_bytes < runs[0].arena_bytes
