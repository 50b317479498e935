"""The paper's global L1 pruning series: exact counts, cumulative masks, tfmot path == numpy path."""

import json
import pathlib

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.compress import global_pruning as G
from tfopt.compress import sparsity as S
from small_models import conv_dw_grouped_dense

REFERENCE = pathlib.Path(__file__).parent / "data" / "reference_figures.json"


_small_model = conv_dw_grouped_dense  # 704 conv weights, 320 dense


def _paper_counts(conv, dense, total, steps):
    """r_{k+1} = r_k - round(0.2 r_k) (reference-variants.md §6); row 0 = trainable params."""
    out, r = [total], conv
    for _ in range(steps):
        r -= round(0.2 * r)
        out.append(r + dense)
    return out


def test_compute_masks_exact_count_with_ties_and_previous_masks():
    k = [np.array([0.5, 0.5, 0.5, 0.5, 2.0]), np.array([[0.5, 3.0], [0.1, 0.0]])]
    prev = [np.ones(5, bool), np.array([[True, True], [True, False]])]
    masks = G.compute_masks(k, masks=prev, amount=0.5)   # 8 unpruned -> remove 4
    assert sum(int(m.sum()) for m in masks) == 4
    assert not masks[1][1, 0] and not masks[1][1, 1]     # smallest (0.1) and the old prune
    assert masks[0][4] and masks[1][0, 1]                # largest survive
    lw = G.compute_masks(k, masks=prev, amount=0.5, allocation="layerwise")
    # Python rounds half to even, like PyTorch: 5 - round(2.5) = 3 kept; 3 - round(1.5) = 1 kept.
    assert [int(m.sum()) for m in lw] == [3, 1]
    with pytest.raises(ValueError, match="allocation='row'"):
        G.compute_masks(k, amount=0.2, allocation="row")


def test_series_counts_match_paper_rule_and_caller_untouched():
    model = _small_model()
    before = [w.copy() for w in model.get_weights()]
    assert (S.count_conv_weights(model), S.count_dense_weights(model)) == (704, 320)
    rows = G.run_series(model, steps=6, measure_size=True, zeros_are_pruned=False)
    expected = _paper_counts(704, 320, 1130, 6)  # 1130 trainable: 704 + 320 + biases + BN
    assert [r.non_zeroed for r in rows] == expected
    assert G.simulate_series(model, steps=6, zeros_are_pruned=False) == expected
    assert rows[4].sparsity == pytest.approx(1 - 0.8 ** 4, abs=0.002)
    assert rows[6].gzip_bytes < rows[0].gzip_bytes
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_pruner_masks_are_cumulative_through_finetuning():
    import tensorflow as tf
    rng = np.random.default_rng(0)
    ds = tf.data.Dataset.from_tensor_slices(
        (rng.normal(size=(64, 8, 8, 3)).astype("float32"), rng.integers(0, 10, 64))).batch(16)
    pruner = G.GlobalPruner(_small_model(), zeros_are_pruned=False)
    pruned_sets = []
    for _ in range(3):
        pruner.step(amount=0.2)
        pruner.model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                             keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        pruner.model.fit(ds, epochs=1, callbacks=pruner.callbacks(), verbose=0)
        stripped = pruner.stripped()
        zeros = {(r.layer, i) for r in S.layer_sparsities(stripped)
                 for i in np.flatnonzero(stripped.get_layer(r.layer).get_weights()[0] == 0)}
        pruned_sets.append(zeros)
    assert pruned_sets[0] <= pruned_sets[1] <= pruned_sets[2]
    assert [len(s) for s in pruned_sets] == [704 - 563, 704 - 450, 704 - 360]
    assert type(stripped.get_layer("dw")) is layers.DepthwiseConv2D


def test_layerwise_allocation_prunes_every_layer_alike():
    rows = G.run_series(_small_model(), steps=2, allocation="layerwise")
    pruner = G.GlobalPruner(_small_model(), allocation="layerwise")
    pruner.step(amount=0.2)
    for r in S.layer_sparsities(pruner.stripped()):
        assert r.sparsity == pytest.approx(0.2, abs=0.01), r
    assert rows[2].sparsity == pytest.approx(0.36, abs=0.01)


def test_explicit_sparsity_targets_and_errors():
    rows = G.run_series(_small_model(), sparsities=[0.3, 0.5])
    assert [round(r.sparsity * 704) for r in rows[1:]] == [round(0.3 * 704), round(0.5 * 704)]
    with pytest.raises(ValueError, match="strictly increase"):
        G.run_series(_small_model(), sparsities=[0.5, 0.3])
    with pytest.raises(ValueError, match="exactly one of steps= or sparsities="):
        G.run_series(_small_model())


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["resnet101_v01", "resnet101_v11", "resnet101_v13"])
@pytest.mark.parametrize("num_classes", [10, 100])
def test_paper_non_zeroed_counts_exact(variant, num_classes):
    """README pruning tables, steps 0-10 (tests/data/reference_figures.json, `pruning`).

    Untrained full-width model; masks start all-ones as in PyTorch (a random init can hold a
    few exact zeros), the same `compute_masks` as the tfmot path (checked below at 1/8 width).
    """
    from tfopt.models import build_model
    ref = json.loads(REFERENCE.read_text())["pruning"][variant][str(num_classes)]
    model = build_model(variant, num_classes=num_classes)
    assert S.count_conv_weights(model) == ref["conv_weights"]
    assert S.count_dense_weights(model) == ref["linear_weights"]
    counts = G.simulate_series(model, steps=10, zeros_are_pruned=False)
    assert counts == [ref["non_zeroed_by_step"][str(k)] for k in range(11)]


@pytest.mark.slow
def test_tfmot_path_equals_numpy_path_on_zoo_model():
    """resnet101_v13 (grouped 1x1 + shuffle + depthwise ghost modules) at 1/8 width."""
    from tfopt.models import build_model
    model = build_model("resnet101_v13", num_classes=10, width_multiplier=0.125)
    rows = G.run_series(model, steps=3, zeros_are_pruned=False)
    conv, dense = S.count_conv_weights(model), S.count_dense_weights(model)
    expected = _paper_counts(conv, dense, rows[0].non_zeroed, 3)
    assert [r.non_zeroed for r in rows] == expected
    assert G.simulate_series(model, steps=3, zeros_are_pruned=False) == expected
