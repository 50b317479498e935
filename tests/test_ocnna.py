"""OCNNA scoring, selection and simplify() (tfopt.compress.ocnna)."""

import json

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.compress import ocnna, surgery
from tests.test_surgery import bottleneck_net, separable_net, vgg_like


def _images(shape=(16, 16, 3), n=24, seed=2):
    return np.random.default_rng(seed).normal(size=(n,) + shape).astype("float32")


def _pca_frobenius_reference(o, n_components):
    """sklearn.decomposition.PCA(n_components).fit_transform(o), then the Frobenius norm.

    Written out with numpy (rows = samples, columns = features), as sklearn does it.
    """
    c = o - o.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(c, full_matrices=False)
    if n_components is None:
        keep = len(s)
    elif isinstance(n_components, float):
        ratio = np.cumsum(s ** 2) / np.sum(s ** 2)
        keep = int(np.searchsorted(ratio, n_components, side="right")) + 1
    else:
        keep = n_components
    projected = c @ vt[:keep].T
    return np.linalg.norm(projected)


@pytest.mark.parametrize("n_components", [None, 2, 0.7])
def test_frobenius_norm_matches_pca_definition(n_components):
    inp = keras.Input((6, 5, 2))
    out = layers.Conv2D(3, 3, padding="same", name="c")(inp)
    model = keras.Model(inp, layers.Dense(2)(layers.Flatten()(out)))
    x = _images((6, 5, 2), n=5)
    norms, notes = ocnna.frobenius_norms(model, x, ["c"], n_components=n_components,
                                         batch_size=2)
    maps = model.get_layer("c").output
    maps = keras.Model(inp, maps)(x).numpy()
    want = np.array([[_pca_frobenius_reference(maps[i, :, :, m].astype(np.float64), n_components)
                      for m in range(3)] for i in range(5)])
    np.testing.assert_allclose(norms["c"], want, rtol=1e-4, atol=1e-5)
    assert notes == {}


def test_dataset_axis_is_distance_to_mean_map():
    inp = keras.Input((4, 4, 1))
    c = layers.Conv2D(2, 3, padding="same", name="c")(inp)
    model = keras.Model(inp, layers.GlobalAveragePooling2D()(c))
    x = _images((4, 4, 1), n=7)
    norms, _ = ocnna.frobenius_norms(model, x, ["c"], pca_axis="dataset", batch_size=3)
    maps = keras.Model(inp, c)(x).numpy().astype(np.float64)
    want = np.sqrt(((maps - maps.mean(axis=0)) ** 2).sum(axis=(1, 2)))
    np.testing.assert_allclose(norms["c"], want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="n_components"):
        ocnna.frobenius_norms(model, x, ["c"], pca_axis="dataset", n_components=2)


def test_coefficient_of_variation_population_std_and_dead_filters():
    f = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]])
    np.testing.assert_allclose(ocnna.coefficient_of_variation(f), [0.5, 0.0, 0.0])


def test_one_row_maps_fall_back_to_uncentred_norm():
    inp = keras.Input((1, 1, 3))
    c = layers.Conv2D(4, 1, name="c")(inp)
    model = keras.Model(inp, layers.Flatten()(c))
    x = _images((1, 1, 3), n=6)
    norms, notes = ocnna.frobenius_norms(model, x, ["c"])
    np.testing.assert_allclose(norms["c"], np.abs(model(x).numpy()), rtol=1e-5)
    assert "uncentred" in notes["c"]


def test_select_filters_percentile_rule():
    scores = {"a": np.array([0.1, 0.4, 0.2, 0.3, 0.5]), "b": np.array([1.0, 2.0])}
    keep = ocnna.select_filters(scores, 0)
    assert [list(v) for v in keep.values()] == [[0, 1, 2, 3, 4], [0, 1]]
    keep = ocnna.select_filters(scores, 30)  # 30th percentile of a = 0.22, of b = 1.3
    assert list(keep["a"]) == [1, 3, 4] and list(keep["b"]) == [1]
    keep = ocnna.select_filters(scores, 100, min_filters=2)
    assert list(keep["a"]) == [1, 4] and list(keep["b"]) == [0, 1]
    glob = ocnna.select_filters(scores, 50, scope="global")  # median of all 7 = 0.4
    assert list(glob["a"]) == [1, 4] and list(glob["b"]) == [0, 1]


@pytest.mark.parametrize("bad", [dict(k=-1), dict(k=101), dict(k=10, scope="glob"),
                                 dict(k=10, min_filters=0)])
def test_select_filters_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        ocnna.select_filters({"a": np.ones(3)}, **bad)


def test_bad_options_raise_value_errors():
    model = vgg_like()
    with pytest.raises(ValueError, match="did you mean 'ocnna'"):
        ocnna.simplify(model, _images(), k=10, criterion="ocna")
    with pytest.raises(ValueError, match="n_components"):
        ocnna.simplify(model, _images(), k=10, n_components=1.5)
    with pytest.raises(ValueError, match="needs images"):
        ocnna.simplify(model, None, k=10)


def test_k0_rebuilds_an_equal_model():
    model = vgg_like()
    small, report = ocnna.simplify(model, _images(), k=0)
    x = _images(n=4, seed=5)
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-6)
    assert report.rpr == pytest.approx(100.0)
    assert report.flops_ratio == pytest.approx(100.0)
    assert all(lr.filters_before == lr.filters_after for lr in report.layers)


@pytest.mark.parametrize("criterion", ["ocnna", "l1"])
def test_zeroed_filter_is_removed_first(criterion):
    model = vgg_like()
    conv = model.get_layer("b1_c1")  # 8 filters
    kernel, bias = conv.get_weights()
    kernel[..., 5] = 0.0
    bias[5] = 0.0
    conv.set_weights([kernel, bias])
    _, report = ocnna.simplify(model, _images(), k=10, criterion=criterion)
    lr = next(lr for lr in report.layers if lr.name == "b1_c1")
    assert lr.filters_after == 7 and 5 not in lr.kept
    assert lr.scores[5] == min(lr.scores)


@pytest.mark.parametrize("builder,kwargs", [
    (vgg_like, {}), (bottleneck_net, dict(prune_residual_groups=True)), (separable_net, {}),
    (vgg_like, dict(scope="global", prune_dense=True)),
    (vgg_like, dict(tap="activation", n_components=2))])
def test_simplified_model_equals_zeroed_original(builder, kwargs):
    model = builder()
    images = _images(model.input_shape[1:])
    small, report = ocnna.simplify(model, images, k=40, **kwargs)
    analysis = surgery.analyze(model, prune_residual_groups=kwargs.get("prune_residual_groups",
                                                                       False),
                               prune_dense=kwargs.get("prune_dense", False))
    keep = {lr.name: lr.kept for lr in report.layers}
    zeroed = surgery.zero_pruned(model, keep, analysis=analysis)
    x = _images(model.input_shape[1:], n=4, seed=9)
    np.testing.assert_allclose(small(x).numpy(), zeroed(x).numpy(), atol=1e-4)
    assert report.params_after < report.params_before
    assert report.params_after == int(sum(np.prod(w.shape) for w in small.trainable_weights))
    assert 0 < report.flops_ratio < 100


def test_criteria_share_widths_at_equal_k():
    model = vgg_like()
    widths = {}
    for criterion in ocnna.CRITERIA:
        _, report = ocnna.simplify(model, _images(), k=30, criterion=criterion)
        widths[criterion] = [lr.filters_after for lr in report.layers]
    assert widths["ocnna"] == widths["l1"] == widths["random"]


def test_random_criterion_is_seeded():
    model = vgg_like()
    kept = [ocnna.simplify(model, None, k=50, criterion="random", seed=s)[1].layers[1].kept
            for s in (3, 3, 4)]
    assert kept[0] == kept[1] and kept[0] != kept[2]


def test_balanced_subset_is_balanced_and_seeded():
    y = np.repeat(np.arange(4), [50, 30, 20, 10])
    x = np.arange(len(y))
    xs, ys = ocnna.balanced_subset(x, y, 22, seed=1)
    assert np.bincount(ys).tolist() == [6, 6, 5, 5]
    np.testing.assert_array_equal(y[xs], ys)
    xs2, _ = ocnna.balanced_subset(x, y, 22, seed=1)
    np.testing.assert_array_equal(xs, xs2)


def test_dataset_input_gives_same_scores_as_array():
    import tensorflow as tf
    model = vgg_like()
    images = _images(n=10)
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(10))).batch(4)
    s1, _, _ = ocnna.score_filters(model, images, batch_size=4)
    s2, _, _ = ocnna.score_filters(model, ds)
    for name in s1:
        np.testing.assert_allclose(s1[name], s2[name], rtol=1e-6)


def test_report_accuracy_drop_and_serialisation():
    model = vgg_like()
    small, report = ocnna.simplify(model, _images(), k=50)
    x = _images(n=16, seed=3)
    y = np.argmax(model(x).numpy(), axis=1)
    result = ocnna.evaluate_drop(model, small, (x, y), report)
    assert report.accuracy_original == 1.0
    assert report.accuracy_drop_pp == pytest.approx(result["accuracy_drop_pp"])
    d = json.loads(json.dumps(report.to_dict(), default=ocnna._json_default))
    assert d["rpr"] == pytest.approx(report.rpr) and d["accuracy_drop_pp"] is not None
    assert "Remaining Parameters Ratio" in report.to_markdown()


def test_cli_on_a_saved_model(tmp_path):
    model = vgg_like(input_shape=(8, 8, 3), classes=10)
    path = str(tmp_path / "m.keras")
    model.save(path)
    out = tmp_path / "out"
    rc = ocnna.main([f"--model={path}", "--dataset=synthetic:8x8x3:10:60", "--k=30",
                     f"--out={out}", "--n_images=20", "--eval_limit=20"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["rpr"] < 100 and report["accuracy_original"] is not None
    small = keras.models.load_model(str(out / "simplified.keras"), compile=False)
    assert small.count_params() < model.count_params()


# ---------------------------------------------------------------------------- the model zoo

def _params_from_widths(model) -> int:
    """Trainable parameters implied by each layer's config and its (new) input width."""
    total = 0
    for layer in model.layers:
        cls, cfg = layer.__class__.__name__, layer.get_config()
        cin = layer.input_shape[-1] if not isinstance(layer.input_shape, list) else None
        if cls == "Conv2D":
            kh, kw = cfg["kernel_size"]
            total += (kh * kw * cin // cfg["groups"] * cfg["filters"]
                      + cfg["filters"] * cfg["use_bias"])
        elif cls == "DepthwiseConv2D":
            kh, kw = cfg["kernel_size"]
            m = cfg["depth_multiplier"]
            total += kh * kw * cin * m + cin * m * cfg["use_bias"]
        elif cls == "SeparableConv2D":
            kh, kw = cfg["kernel_size"]
            m = cfg["depth_multiplier"]
            total += kh * kw * cin * m + cin * m * cfg["filters"] + cfg["filters"] * cfg["use_bias"]
        elif cls == "Dense":
            total += cin * cfg["units"] + cfg["units"] * cfg["use_bias"]
        elif cls == "BatchNormalization":
            total += cin * (int(cfg["scale"]) + int(cfg["center"]))
        else:
            assert not layer.trainable_weights, f"unexpected weights in {layer.name} ({cls})"
    return total


def _tame_logits(model, x):
    """Random-init deep nets give logits ~1e4; rescale the classifier so the 1e-4 tolerance
    tests the surgery rather than float32 round-off of huge numbers."""
    head = model.layers[-1]
    w = head.get_weights()
    scale = 1.0 / max(1.0, float(np.abs(model(x).numpy()).max()))
    head.set_weights([v * scale for v in w])


ZOO = [("vgg16", {}), ("vgg19_v01", {}), ("resnet50", dict(prune_residual_groups=True)),
       ("resnet101_v01", {}), ("densenet40", {}), ("mobilenet_v1", {})]


@pytest.mark.slow
@pytest.mark.parametrize("variant,kwargs", ZOO, ids=[z[0] for z in ZOO])
def test_zoo_models_simplify_exactly(variant, kwargs):
    import tfopt
    model = tfopt.build_model(variant, num_classes=10, width_multiplier=0.125)
    x = _images(model.input_shape[1:], n=6, seed=4)
    _tame_logits(model, x)
    small, report = ocnna.simplify(model, x, k=30, batch_size=6, **kwargs)
    assert report.layers, f"nothing prunable in {variant}: {report.skipped}"
    assert all(lr.filters_after < lr.filters_before for lr in report.layers
               if lr.filters_before >= 4)
    for lr in report.layers:
        for m in lr.members:
            assert small.get_layer(m).output_shape[-1] == lr.filters_after
    analysis = surgery.analyze(model, **kwargs)
    zeroed = surgery.zero_pruned(model, {lr.name: lr.kept for lr in report.layers},
                                 analysis=analysis)
    diff = np.abs(small(x[:4]).numpy() - zeroed(x[:4]).numpy()).max()
    assert diff < 1e-4, diff
    assert report.params_after == _params_from_widths(small)
    assert report.params_before == _params_from_widths(model)
    assert report.rpr < 100 and report.flops_ratio < 100


def test_recalibrate_batchnorm_sets_statistics_of_the_images():
    inp = keras.Input((4, 4, 2))
    x = layers.Conv2D(3, 1, name="c")(inp)
    x = layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inp, layers.GlobalAveragePooling2D()(x))
    images = _images((4, 4, 2), n=30)
    assert ocnna.recalibrate_batchnorm(model, images, batch_size=10) == 3
    maps = keras.Model(inp, model.get_layer("c").output)(images).numpy().reshape(3, -1, 3)
    _, _, mean, var = model.get_layer("bn").get_weights()
    np.testing.assert_allclose(mean, maps.mean(axis=(0, 1)), rtol=1e-4, atol=1e-5)
    # Mean of per-batch variances (Keras stores the unbiased, ddof=1, batch variance).
    np.testing.assert_allclose(var, maps.var(axis=1, ddof=1).mean(axis=0), rtol=1e-4)
    assert model.get_layer("bn").momentum == 0.99


def test_finetune_trains_the_simplified_model():
    import tensorflow as tf
    from tfopt import train
    model = vgg_like(input_shape=(8, 8, 3))
    small, _ = ocnna.simplify(model, None, k=50, criterion="l1")
    x = _images((8, 8, 3), n=32)
    y = (np.arange(32) % 5).astype("int32")
    before = [w.copy() for w in small.get_weights()]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    result = ocnna.finetune(small, ds, train.TrainConfig(epochs=1, optimizer="sgd", verbose=0))
    assert result["epochs"] == 1
    assert any(not np.array_equal(a, b) for a, b in zip(before, small.get_weights()))
