"""Magnitude pruning with tensorflow-model-optimization: schedules that reach their target.

tfmot prunes a wrapped layer only at steps where `begin_step <= step <= end_step` and
`(step - begin_step) % frequency == 0`, and the step its `UpdatePruningStep` callback feeds the
schedule runs 1, 2, ..., N over the N training batches (step 0 is never seen). A schedule written
in epochs, or with `frequency` larger than the run, silently never reaches its target (tfmot
issues #973, #975). `plan_schedule` derives begin/end/frequency from the dataset size, batch
size and epochs so the last pruning event is exactly `end_step` (where `PolynomialDecay` reaches
its final sparsity) and lies before the last epoch; `prune_and_finetune` then verifies the
achieved sparsity after `strip` and raises `SparsityError` if it is off by more than 0.5 pp.

Other tfmot traps handled here (design notes "ecosystem" §2):

- `prune_low_magnitude(model)` wraps the *same layer objects*, so pruning mutates the caller's
  model. Every function here first copies the model (`copy_model`: clone + set_weights).
- tfmot's prune registry lists `DepthwiseConv2D` with no prunable weights. The paper prunes
  depthwise kernels too (they are `nn.Conv2d` in PyTorch), so selected depthwise (and separable)
  convs are swapped for `PrunableDepthwiseConv2D` / `PrunableSeparableConv2D` (same weights,
  kernels exposed through tfmot's `PrunableLayer` protocol) and swapped back by `strip`.
- Masks are re-applied before stripping, so weights updated after the last mask op are zeroed.

Scope: "conv" prunes every convolution kernel (Conv2D incl. grouped/1x1, DepthwiseConv2D,
SeparableConv2D; the paper's set), "all" adds dense kernels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from tfopt._keras import keras, layers
from tfopt.compress import sparsity as _sp

SCHEDULES = ("polynomial", "constant")
DEFAULT_TOLERANCE = 0.005  # 0.5 percentage points


def _tfmot():
    import tensorflow_model_optimization as tfmot
    return tfmot


class SparsityError(RuntimeError):
    """The achieved sparsity differs from the requested one by more than the tolerance."""


# --------------------------------------------------------------------------------------------
# Prunable stand-ins for layers tfmot's registry will not prune.

def _prunable_classes():
    """(DepthwiseConv2D -> PrunableDepthwiseConv2D, SeparableConv2D -> PrunableSeparableConv2D)."""
    global _PRUNABLE
    if _PRUNABLE is None:
        tfmot = _tfmot()

        @keras.utils.register_keras_serializable(package="tfopt")
        class PrunableDepthwiseConv2D(layers.DepthwiseConv2D,
                                      tfmot.sparsity.keras.PrunableLayer):
            """DepthwiseConv2D whose depthwise kernel tfmot may prune (same weights/config)."""

            def get_prunable_weights(self):
                return [self.depthwise_kernel]

        @keras.utils.register_keras_serializable(package="tfopt")
        class PrunableSeparableConv2D(layers.SeparableConv2D,
                                      tfmot.sparsity.keras.PrunableLayer):
            """SeparableConv2D whose depthwise and pointwise kernels tfmot may prune."""

            def get_prunable_weights(self):
                return [self.depthwise_kernel, self.pointwise_kernel]

        _PRUNABLE = {layers.DepthwiseConv2D: PrunableDepthwiseConv2D,
                     layers.SeparableConv2D: PrunableSeparableConv2D}
    return _PRUNABLE


_PRUNABLE = None


def _fresh(layer, cls=None):
    return (cls or layer.__class__).from_config(layer.get_config())


def copy_model(model, *, clone_function: Callable | None = None):
    """An independent copy of a functional model: `clone_model` + `set_weights`.

    Args:
      model: A functional (or Sequential) tf_keras model.
      clone_function: Optional `layer -> new layer` (must create layers with the same weights).

    Returns:
      A new model with the same architecture and weight values and no shared variables.
    """
    if not isinstance(model, keras.Model) or not (
            model._is_graph_network or isinstance(model, keras.Sequential)):
        raise ValueError(f"expected a functional or Sequential tf_keras Model; got "
                         f"{type(model).__name__} (subclassed models cannot be cloned)")
    clone = keras.models.clone_model(model, clone_function=clone_function or _fresh)
    clone.set_weights(model.get_weights())
    return clone


def selected_layers(model, scope: str = "conv",
                    layer_names: Iterable[str] | None = None) -> list[str]:
    """Names of the layers that carry kernels in `scope` (optionally restricted to `layer_names`)."""
    _sp._check_scope(scope)
    names = []
    for layer in model.layers:
        inner = _sp.unwrap(layer)
        if _sp._kernel_attrs(inner) or (scope == "all" and _sp._dense_attrs(inner)):
            names.append(layer.name)
    if layer_names is not None:
        wanted = list(layer_names)
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise ValueError(f"layer_names {unknown} are not prunable layers in scope={scope!r} "
                             f"of model {model.name!r}; prunable: {names}")
        names = [n for n in names if n in set(wanted)]
    return names


def wrap(model, schedule, *, scope: str = "conv", layer_names: Iterable[str] | None = None):
    """Copy `model` and wrap its prunable layers with tfmot `PruneLowMagnitude`.

    Args:
      model: The caller's model; never modified.
      schedule: One tfmot `PruningSchedule` for every selected layer, or a mapping
        layer name -> schedule (only those layers are wrapped).
      scope: "conv" or "all" (see module docstring).
      layer_names: Restrict pruning to these layers (ignored when `schedule` is a mapping).

    Returns:
      A new functional model with wrappers; train it with `callbacks()` and `strip` it after.
    """
    tfmot = _tfmot()
    if isinstance(schedule, Mapping):
        schedules = dict(schedule)
        selected_layers(model, scope, schedules)  # validates the names
    else:
        if not isinstance(schedule, tfmot.sparsity.keras.PruningSchedule):
            raise ValueError(f"schedule={schedule!r}; expected a tfmot PruningSchedule or a "
                             "mapping layer name -> PruningSchedule (see make_schedule)")
        schedules = {n: schedule for n in selected_layers(model, scope, layer_names)}
    prunable = _prunable_classes()

    def to_prunable(layer):
        cls = prunable.get(type(layer)) if layer.name in schedules else None
        return _fresh(layer, cls)

    base = copy_model(model, clone_function=to_prunable)

    def add_wrapper(layer):
        if layer.name in schedules:
            return tfmot.sparsity.keras.prune_low_magnitude(
                layer, pruning_schedule=schedules[layer.name])
        return layer

    # Wraps `base`'s own layer objects, which nobody else holds.
    return keras.models.clone_model(base, clone_function=add_wrapper)


def wrappers(model) -> list:
    """The `PruneLowMagnitude` layers of a wrapped model."""
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
    wrapper_cls = pruning_wrapper.PruneLowMagnitude  # not re-exported by tfmot's public API
    return [l for l in model.layers if isinstance(l, wrapper_cls)]


def callbacks() -> list:
    """Callbacks that training a wrapped model needs (tfmot `UpdatePruningStep`)."""
    return [_tfmot().sparsity.keras.UpdatePruningStep()]


def apply_masks(model) -> None:
    """Multiply every wrapped kernel by its current mask (tfmot's weight mask op), in place."""
    for w in wrappers(model):
        w.pruning_obj.weight_mask_op()


def prune_now(model, step: int | None = None) -> None:
    """One-shot pruning without training: run each wrapper's schedule at `step`, then mask.

    Sets every wrapper's `pruning_step` to `step` (default: 0 if never trained, else the current
    step), lets tfmot recompute the masks where the schedule says so, and applies them.
    """
    ws = wrappers(model)
    if not ws:
        raise ValueError(f"model {model.name!r} has no pruning wrappers; call wrap() first")
    if step is None:
        step = max(0, int(ws[0].pruning_step.numpy()))
    for w in ws:
        w.pruning_step.assign(step)
        w.pruning_obj.conditional_mask_update()
        w.pruning_obj.weight_mask_op()


def strip(model):
    """Remove the pruning wrappers (after re-applying the masks); returns plain Keras layers.

    The prunable stand-ins (`PrunableDepthwiseConv2D`, ...) are swapped back for the stock
    classes, so the result quantizes, converts and saves like any other model. Variables are
    shared with `model`'s inner layers unless a swap-back copy was needed.
    """
    tfmot = _tfmot()
    apply_masks(model)
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    back = {v: k for k, v in _prunable_classes().items()}
    if not any(type(l) in back for l in stripped.layers):
        return stripped
    return copy_model(stripped, clone_function=lambda l: _fresh(l, back.get(type(l))))


def prune_scope():
    """Custom-object scope to load a saved wrapped model (tfmot's + tfopt's prunable layers)."""
    tfmot = _tfmot()
    objs = {c.__name__: c for c in _prunable_classes().values()}
    scope = tfmot.sparsity.keras.prune_scope()
    return _Scopes(scope, keras.utils.custom_object_scope(objs))


class _Scopes:
    def __init__(self, *scopes):
        self._scopes = scopes

    def __enter__(self):
        for s in self._scopes:
            s.__enter__()
        return self

    def __exit__(self, *exc):
        for s in reversed(self._scopes):
            s.__exit__(*exc)
        return False


# --------------------------------------------------------------------------------------------
# Schedules that reach their target.

@dataclasses.dataclass(frozen=True)
class PruningPlan:
    """When tfmot prunes, in training steps (batches) as `UpdatePruningStep` counts them (1..N).

    Attributes:
      steps_per_epoch: Batches per epoch.
      total_steps: steps_per_epoch * epochs; the schedule sees steps 1..total_steps.
      begin_step: First pruning event.
      end_step: Last pruning event (PolynomialDecay reaches final sparsity here).
      frequency: Steps between pruning events; divides end_step - begin_step.
    """

    steps_per_epoch: int
    total_steps: int
    begin_step: int
    end_step: int
    frequency: int

    @property
    def pruning_events(self) -> int:
        return (self.end_step - self.begin_step) // self.frequency + 1


def plan_schedule(*, num_examples: int, batch_size: int, epochs: int,
                  frequency: int = 100, drop_remainder: bool = False,
                  end_fraction: float | None = None) -> PruningPlan:
    """Begin/end/frequency that tfmot will actually hit in a run of `epochs`.

    Pruning starts at the first batch (step 1) and ends before the last epoch (or at
    `end_fraction` of the run; 0.8 if there is only one epoch), leaving the rest for recovery.
    `frequency` is lowered when the run is short (at least 4 pruning intervals) and the end
    step is moved back onto the last event, so `(end - begin) % frequency == 0`.

    Args:
      num_examples: Training examples per epoch.
      batch_size: Examples per batch.
      epochs: Fine-tuning epochs.
      frequency: Largest allowed step interval between mask updates (tfmot default 100).
      drop_remainder: Whether the last partial batch is dropped.
      end_fraction: Optional fraction (0, 1] of the run at which pruning must be finished.

    Returns:
      A `PruningPlan`.
    """
    for name, v in (("num_examples", num_examples), ("batch_size", batch_size),
                    ("epochs", epochs), ("frequency", frequency)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}={v!r}; expected a positive int")
    spe = num_examples // batch_size if drop_remainder else math.ceil(num_examples / batch_size)
    if spe < 1:
        raise ValueError(f"num_examples={num_examples} < batch_size={batch_size} with "
                         "drop_remainder=True gives no batch")
    total = spe * epochs
    if end_fraction is None:
        end = (epochs - 1) * spe if epochs > 1 else math.floor(0.8 * total)
    else:
        if not 0 < end_fraction <= 1:
            raise ValueError(f"end_fraction={end_fraction!r}; expected 0 < end_fraction <= 1")
        end = math.floor(end_fraction * total)
    begin = 1
    end = max(begin, end)
    span = end - begin
    freq = max(1, min(int(frequency), span // 4 if span >= 4 else 1))
    end = begin + (span // freq) * freq
    return PruningPlan(spe, total, begin, end, freq)


def make_schedule(kind: str, target_sparsity: float, plan: PruningPlan, *,
                  initial_sparsity: float = 0.0, power: int = 3):
    """A tfmot schedule that reaches `target_sparsity` within `plan`.

    Args:
      kind: "polynomial" (PolynomialDecay from `initial_sparsity`, cubic by default) or
        "constant" (ConstantSparsity: the target at every pruning event from step 1 on).
      target_sparsity: Final fraction of pruned weights, 0 <= s < 1.
      plan: From `plan_schedule`.

    Returns:
      A `tfmot.sparsity.keras.PruningSchedule`.
    """
    tfmot = _tfmot()
    if kind not in SCHEDULES:
        raise ValueError(f"schedule kind {kind!r}; expected one of {SCHEDULES}")
    if not 0 <= target_sparsity < 1:
        raise ValueError(f"target_sparsity={target_sparsity!r}; expected 0 <= s < 1")
    if kind == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(
            float(target_sparsity), begin_step=plan.begin_step, end_step=plan.end_step,
            frequency=plan.frequency)
    if plan.end_step <= plan.begin_step:
        raise ValueError(f"PolynomialDecay needs end_step > begin_step; the plan {plan} is too "
                         "short: use more epochs or examples, or kind='constant'")
    if not 0 <= initial_sparsity <= target_sparsity:
        raise ValueError(f"initial_sparsity={initial_sparsity!r}; expected 0 <= initial <= "
                         f"target ({target_sparsity})")
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=float(initial_sparsity), final_sparsity=float(target_sparsity),
        begin_step=plan.begin_step, end_step=plan.end_step, power=power,
        frequency=plan.frequency)


def verify_sparsity(model, target: float, *, layer_names: Iterable[str] | None = None,
                    scope: str = "conv", tolerance: float = DEFAULT_TOLERANCE) -> float:
    """Measured sparsity of the kernels of `layer_names` (default: all in `scope`).

    Returns:
      The achieved sparsity (fraction of zero kernel entries, size-weighted).

    Raises:
      SparsityError: If |achieved - target| > tolerance (fractions; 0.005 = 0.5 pp).
    """
    rows = _sp.layer_sparsities(model, scope)
    if layer_names is not None:
        names = set(layer_names)
        rows = [r for r in rows if r.layer in names]
    total = sum(r.size for r in rows)
    if not total:
        raise ValueError(f"no kernels to measure in model {model.name!r} (scope={scope!r})")
    achieved = sum(r.zeros for r in rows) / total
    if abs(achieved - target) > tolerance:
        worst = sorted(rows, key=lambda r: -abs(r.sparsity - target))[:3]
        detail = ", ".join(f"{r.layer}={r.sparsity:.3f}" for r in worst)
        raise SparsityError(
            f"achieved sparsity {achieved:.4f} differs from target {target:.4f} by more than "
            f"{tolerance * 100:.2f} pp (layers furthest off: {detail}); check that the schedule's "
            "end_step lies within the run and UpdatePruningStep was used")
    return achieved


@dataclasses.dataclass
class PruningResult:
    """What `prune_and_finetune` returns.

    Attributes:
      model: The stripped, pruned model (plain Keras layers).
      target_sparsity / achieved_sparsity: Fractions over the pruned kernels.
      plan: The schedule plan used.
      non_zeroed: Paper convention count (non-zero conv weights + all dense weights).
      metrics: Whatever `tfopt.train.fit` returned.
    """

    model: object
    target_sparsity: float
    achieved_sparsity: float
    plan: PruningPlan
    non_zeroed: int
    metrics: dict


def _count_batches(ds) -> int | None:
    import tensorflow as tf

    from tfopt.data.epochs import EpochData
    if isinstance(ds, EpochData):
        return ds.steps
    n = int(ds.cardinality().numpy()) if isinstance(ds, tf.data.Dataset) else -1
    return n if n > 0 else None


def prune_and_finetune(model, train_ds, config, *, target_sparsity: float,
                       schedule: str = "polynomial", scope: str = "conv",
                       num_examples: int | None = None, frequency: int = 100,
                       val_ds=None, workdir=None, tolerance: float = DEFAULT_TOLERANCE,
                       initial_sparsity: float = 0.0, extra_callbacks=()) -> PruningResult:
    """tfmot pruning during fine-tuning with `tfopt.train.fit`, stripped and verified.

    Args:
      model: Trained float model; never modified.
      train_ds: Batched `tf.data.Dataset` of (image, label).
      config: `tfopt.train.TrainConfig` (its `epochs` and `batch_size` drive the plan).
      target_sparsity: Fraction of the selected kernels' weights to remove (0 <= s < 1).
      schedule: "polynomial" or "constant".
      scope: "conv" (paper) or "all" (conv + dense).
      num_examples: Training examples per epoch; only needed when `config.steps_per_epoch` is
        unset and `train_ds`'s cardinality unknown (steps per epoch are then
        ceil(num_examples / config.batch_size)).
      frequency: Largest interval between mask updates, in steps.
      tolerance: Allowed |achieved - target| (fraction).

    Returns:
      A `PruningResult` holding the stripped model.

    Raises:
      SparsityError: If the stripped model misses the target by more than `tolerance`.
    """
    from tfopt import train as _train

    batches = config.steps_per_epoch or _count_batches(train_ds)
    if batches is not None:
        plan = plan_schedule(num_examples=batches, batch_size=1, epochs=config.epochs,
                             frequency=frequency)
    elif num_examples is not None:
        plan = plan_schedule(num_examples=num_examples, batch_size=config.batch_size,
                             epochs=config.epochs, frequency=frequency)
    else:
        raise ValueError("train_ds has unknown cardinality; pass num_examples= so the pruning "
                         "schedule can be placed inside the run")
    sched = make_schedule(schedule, target_sparsity, plan, initial_sparsity=initial_sparsity)
    wrapped = wrap(model, sched, scope=scope)
    names = [w.layer.name for w in wrappers(wrapped)]
    metrics = _train.fit(wrapped, train_ds, config, val_ds=val_ds, workdir=workdir,
                         extra_callbacks=(*callbacks(), *extra_callbacks))
    stripped = strip(wrapped)
    achieved = verify_sparsity(stripped, target_sparsity, layer_names=names, scope=scope,
                               tolerance=tolerance)
    return PruningResult(stripped, float(target_sparsity), achieved, plan,
                         _sp.paper_nonzero_count(stripped), dict(metrics or {}))


__all__ = [
    "DEFAULT_TOLERANCE",
    "SCHEDULES",
    "PruningPlan",
    "PruningResult",
    "SparsityError",
    "apply_masks",
    "callbacks",
    "copy_model",
    "make_schedule",
    "plan_schedule",
    "prune_and_finetune",
    "prune_now",
    "prune_scope",
    "selected_layers",
    "strip",
    "verify_sparsity",
    "wrap",
    "wrappers",
]
