"""tfmot pruning: schedules planned from dataset/batch size reach their target; caller untouched."""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.compress import pruning as P
from tfopt.compress import sparsity as S
from small_models import conv_dw_grouped_dense


_small_model = conv_dw_grouped_dense  # 704 conv weights, 320 dense


def _dataset(n=90, batch=16):
    import tensorflow as tf
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 10, n).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def test_plan_ends_on_a_pruning_event_inside_the_run():
    plan = P.plan_schedule(num_examples=1000, batch_size=128, epochs=3, frequency=100)
    assert plan.steps_per_epoch == 8 and plan.total_steps == 24
    assert plan.begin_step == 1                       # step 0 is never fed by UpdatePruningStep
    assert (plan.end_step - plan.begin_step) % plan.frequency == 0
    assert plan.end_step <= 2 * 8                     # pruning over before the last epoch
    assert plan.frequency <= (plan.end_step - plan.begin_step)
    big = P.plan_schedule(num_examples=60000, batch_size=32, epochs=4, frequency=100)
    assert big.frequency == 100 and (big.end_step - 1) % 100 == 0


def test_plan_rejects_bad_values():
    with pytest.raises(ValueError, match="batch_size=0"):
        P.plan_schedule(num_examples=10, batch_size=0, epochs=1)
    with pytest.raises(ValueError, match="schedule kind 'cubic'"):
        P.make_schedule("cubic", 0.5, P.plan_schedule(num_examples=10, batch_size=1, epochs=2))


@pytest.mark.parametrize("kind", ["polynomial", "constant"])
def test_schedule_reaches_target_and_caller_is_untouched(kind):
    model = _small_model()
    before = [w.copy() for w in model.get_weights()]
    ds = _dataset()
    plan = P.plan_schedule(num_examples=90, batch_size=16, epochs=2)
    wrapped = P.wrap(model, P.make_schedule(kind, 0.7, plan))
    # Depthwise kernels are pruned too (tfmot's registry alone would skip them).
    assert sorted(w.layer.name for w in P.wrappers(wrapped)) == ["c1", "dw", "g"]
    wrapped.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    wrapped.fit(ds, epochs=2, callbacks=P.callbacks(), verbose=0)
    stripped = P.strip(wrapped)
    assert type(stripped.get_layer("dw")) is layers.DepthwiseConv2D
    achieved = P.verify_sparsity(stripped, 0.7)
    assert abs(achieved - 0.7) <= 0.005
    for row in S.layer_sparsities(stripped):
        assert abs(row.sparsity - 0.7) < 0.01, row
    assert S.model_sparsity(stripped, "all") < 0.7   # dense kernel not pruned in scope "conv"
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_schedule_that_never_fires_is_caught():
    """A classic trap: begin_step=0 is never seen and frequency > run length."""
    import tensorflow_model_optimization as tfmot
    model = _small_model()
    sched = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=100)
    wrapped = P.wrap(model, sched)
    wrapped.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    wrapped.fit(_dataset(), epochs=1, callbacks=P.callbacks(), verbose=0)
    with pytest.raises(P.SparsityError, match="differs from target 0.5000"):
        P.verify_sparsity(P.strip(wrapped), 0.5)


def test_scope_all_prunes_dense_and_one_shot_pruning():
    import tensorflow_model_optimization as tfmot
    model = _small_model()
    wrapped = P.wrap(model, tfmot.sparsity.keras.ConstantSparsity(0.5, 0, 0, 1), scope="all")
    assert "fc" in [w.layer.name for w in P.wrappers(wrapped)]
    P.prune_now(wrapped)
    stripped = P.strip(wrapped)
    assert P.verify_sparsity(stripped, 0.5, scope="all", tolerance=1e-9) == 0.5
    assert S.model_sparsity(model, "all") == 0.0


def test_prune_and_finetune_with_train_fit():
    from tfopt import train

    ds = _dataset()
    config = train.TrainConfig(epochs=2, batch_size=16, optimizer="adam")
    result = P.prune_and_finetune(_small_model(), ds, config, target_sparsity=0.6)
    assert abs(result.achieved_sparsity - 0.6) <= 0.005
    assert result.plan.steps_per_epoch == 6
    # non-zeroed = remaining conv weights (704 * 0.4, per-layer rounding) + 320 dense.
    assert abs(result.non_zeroed - (round(704 * 0.4) + 320)) <= 3


def test_prune_schedule_follows_a_capped_epoch():
    from tfopt import train

    # --finetune_limit: 3 of the dataset's 6 batches per epoch; the schedule must end inside them
    config = train.TrainConfig(epochs=2, batch_size=16, optimizer="adam", steps_per_epoch=3)
    result = P.prune_and_finetune(_small_model(), _dataset(), config, target_sparsity=0.6)
    assert result.plan.steps_per_epoch == 3 and result.plan.end_step <= 6
    assert abs(result.achieved_sparsity - 0.6) <= 0.005


def test_wrapped_model_saves_and_loads_in_scope(tmp_path):
    import tensorflow_model_optimization as tfmot
    wrapped = P.wrap(_small_model(), tfmot.sparsity.keras.ConstantSparsity(0.5, 0, 0, 1))
    P.prune_now(wrapped)
    path = str(tmp_path / "wrapped.h5")
    wrapped.save(path)
    with P.prune_scope():
        loaded = keras.models.load_model(path)
    assert S.model_sparsity(P.strip(loaded)) == pytest.approx(0.5, abs=0.01)


def test_gzip_size_shrinks_after_pruning():
    import tensorflow_model_optimization as tfmot
    model = _small_model()
    wrapped = P.wrap(model, tfmot.sparsity.keras.ConstantSparsity(0.8, 0, 0, 1))
    P.prune_now(wrapped)
    dense, pruned = S.gzip_size(model), S.gzip_size(P.strip(wrapped))
    assert pruned["gzip_bytes"] < dense["gzip_bytes"]
    with pytest.raises(ValueError, match="strip it first"):
        S.gzip_size(wrapped)
