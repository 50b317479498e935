"""The paper's pruning series: iterative L1 magnitude pruning of all conv kernels, via tfmot.

Sobolewski & Szyc (reference-variants.md §6; their `pruning_*.py`, `utils/model_pruning.py`)
prune the weight tensors of every `nn.Conv2d` (stem, depthwise, grouped, shortcut and 1x1 head
convs; not the Linear layers, biases or BN) with PyTorch's *global* L1-unstructured pruning.
Masks are cumulative: step k removes round(0.2 * R) of the R weights still unpruned, so after k
steps 0.8^k of the conv weights remain (sparsity 20, 36, 48.8, 59.0, 67.2, ... %), and the
model is fine-tuned between steps.

tfmot prunes per layer. Here one global magnitude threshold over the still-unpruned entries of
all conv kernels decides how many weights each layer loses; those per-layer targets are given to
tfmot as `ConstantSparsity` schedules (one per layer, firing once, at the step the pruning is
applied) on `PruneLowMagnitude` wrappers, and tfmot's masks then hold during fine-tuning with
`UpdatePruningStep`. `allocation="layerwise"` instead removes round(0.2 * R_l) in every layer
(tfmot's usual uniform allocation). tfmot keeps every weight tied with its threshold; where
that differs from the exact count (ties in float32 magnitudes are common in million-weight
layers), the exact mask (PyTorch's `topk` rule) is written into tfmot's mask variable and the
number of repaired entries is reported.

Counts follow the paper's tables: "non-zeroed" = non-zero conv weights + all dense weights, and
the row of step 0 is the total trainable parameter count.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import numpy as np

from tfopt.compress import pruning as _pr
from tfopt.compress import sparsity as _sp

ALLOCATIONS = ("global", "layerwise")
PAPER_AMOUNT = 0.2  # fraction of the still-unpruned weights removed per step (§6)


def paper_sparsities(steps: int, amount: float = PAPER_AMOUNT) -> list[float]:
    """Nominal conv sparsity after 1..steps steps: 1 - (1 - amount)^k (0.2, 0.36, 0.488, ...)."""
    return [1.0 - (1.0 - amount) ** k for k in range(1, steps + 1)]


def _check(allocation: str, amount, sparsity) -> None:
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation={allocation!r}; expected one of {ALLOCATIONS}")
    if (amount is None) == (sparsity is None):
        raise ValueError("give exactly one of amount= (fraction of the remaining weights to "
                         "remove) or sparsity= (cumulative target)")
    value = amount if amount is not None else sparsity
    if not 0 <= value < 1:
        raise ValueError(f"{'amount' if amount is not None else 'sparsity'}={value!r}; "
                         "expected 0 <= value < 1")


def compute_masks(kernels: Sequence[np.ndarray], *, masks: Sequence[np.ndarray] | None = None,
                  amount: float | None = None, sparsity: float | None = None,
                  allocation: str = "global") -> list[np.ndarray]:
    """Exact cumulative keep-masks (bool) for one pruning step; pure numpy.

    Entries outside the previous `masks` (default: entries that are exactly zero) count as
    pruned and stay pruned. With `amount`, the step
    removes round(amount * R) of the R unpruned entries (per layer: round(amount * R_l) for
    "layerwise"); with `sparsity`, it removes as many as needed for round(sparsity * N) zeros
    in total (per layer for "layerwise"). The removed entries are those of smallest |w|; ties
    are broken by position, so the count is exact (PyTorch `l1_unstructured` semantics; Python
    `round`, like PyTorch's `_compute_nparams_toprune`).

    Args:
      kernels: Current kernel values.
      masks: Previous keep-masks (True = unpruned), same shapes; default `kernels != 0`.
      amount / sparsity: Exactly one of them.
      allocation: "global" (one threshold over all kernels) or "layerwise".

    Returns:
      One boolean array per kernel, True where the weight is kept.
    """
    _check(allocation, amount, sparsity)
    flat = [np.abs(np.asarray(k, dtype=np.float32).ravel()) for k in kernels]
    if masks is None:
        keep = [f != 0 for f in flat]
    else:
        keep = [np.asarray(m, dtype=bool).ravel().copy() for m in masks]
        if [k.size for k in keep] != [f.size for f in flat]:
            raise ValueError("masks must have the same shapes as kernels")

    def n_to_remove(unpruned: int, size: int) -> int:
        if amount is not None:
            return round(amount * unpruned)
        n = round(sparsity * size) - (size - unpruned)
        if n < 0:
            raise ValueError(f"sparsity={sparsity} is below the current sparsity "
                             f"{(size - unpruned) / size:.4f}; masks are cumulative")
        return n

    def remove_smallest(values: np.ndarray, unpruned: np.ndarray, n: int) -> None:
        """Clear the n entries of smallest |w| among `unpruned` (in place, exact count)."""
        if n <= 0:
            return
        # Pruned entries become +inf so they are never picked again. The n-th smallest value
        # t (np.partition, O(size)) is the threshold: everything below t goes, then as many
        # entries equal to t as needed, lowest position first (deterministic, exact count).
        v = np.where(unpruned, values, np.inf)
        t = np.partition(v, n - 1)[n - 1]
        below = v < t
        need = n - int(np.count_nonzero(below))
        unpruned &= ~below
        if need > 0:
            unpruned[np.flatnonzero(v == t)[:need]] = False

    if allocation == "layerwise":
        for f, k in zip(flat, keep):
            remove_smallest(f, k, n_to_remove(int(k.sum()), f.size))
    else:
        all_keep = np.concatenate(keep) if keep else np.empty(0, bool)
        remove_smallest(np.concatenate(flat) if flat else np.empty(0, np.float32), all_keep,
                        n_to_remove(int(all_keep.sum()), all_keep.size))
        offsets = np.cumsum([0] + [f.size for f in flat])
        keep = [all_keep[offsets[i]:offsets[i + 1]] for i in range(len(flat))]
    return [k.reshape(np.shape(kern)) for k, kern in zip(keep, kernels)]


def _nonzero(a) -> np.ndarray:
    return np.asarray(a) != 0


def _tfmot_sparsity(size: int, keep: int) -> float:
    """A float sparsity for which tfmot's float32 rule round(size * (1 - s)) keeps `keep`."""
    keep = max(keep, 1)  # tfmot always keeps >= 1 weight; the exact mask repairs keep == 0
    s = 1.0 - keep / size

    def kept(s_):
        one = np.float32(1.0)
        return max(int(np.round(np.float32(size) * (one - np.float32(s_)))), 1)

    for _ in range(64):
        k = kept(s)
        if k == keep:
            break
        s = float(np.nextafter(np.float32(s), np.float32(1.0 if k > keep else 0.0)))
    return min(max(s, 0.0), float(np.nextafter(np.float32(1.0), np.float32(0.0))))


def _count_outside(model, pruned_names) -> int:
    """Paper count of the kernels not in `pruned_names`: non-zero conv entries + dense sizes."""
    total = 0
    for layer in model.layers:
        inner = _sp.unwrap(layer)
        if inner.name in pruned_names:
            continue
        for attr in _sp._kernel_attrs(inner):
            total += int(np.count_nonzero(_sp._kernel_var(inner, attr, layer).numpy()))
        for attr in _sp._dense_attrs(inner):
            total += int(np.prod(_sp._kernel_var(inner, attr, layer).shape))
    return total


def simulate_series(model, *, steps: int | None = None,
                    sparsities: Sequence[float] | None = None, amount: float = PAPER_AMOUNT,
                    allocation: str = "global", scope: str = "conv",
                    zeros_are_pruned: bool = True) -> list[int]:
    """The series' non-zeroed counts computed with numpy only (no tfmot, model untouched).

    Same masks as `GlobalPruner` / `run_series` (both use `compute_masks`), without wrapping
    or fine-tuning: a quick way to tabulate a series for a full-size model (ResNet-101's 42M
    conv weights take about a second per step).

    Returns:
      Non-zeroed counts for steps 0..n (step 0: total trainable parameters, as the paper).
    """
    from tfopt import metrics as _metrics

    targets = _targets(steps, sparsities, amount)
    kernels = _sp.prunable_kernels(model, scope)
    names = {name for name, _ in kernels}
    values = [v.numpy() for _, v in kernels]
    masks = [_nonzero(v) if zeros_are_pruned else np.ones(v.shape, bool) for v in values]
    outside = _count_outside(model, names)
    counts = [_metrics.count_params(model)]
    for target in targets:
        masks = compute_masks(values, masks=masks, allocation=allocation,
                              **({"sparsity": target} if sparsities is not None
                                 else {"amount": amount}))
        counts.append(sum(int(m.sum()) for m in masks) + outside)
    return counts


def _targets(steps, sparsities, amount) -> list[float]:
    if (steps is None) == (sparsities is None):
        raise ValueError("give exactly one of steps= or sparsities=")
    if steps is not None and (not isinstance(steps, int) or steps < 0):
        raise ValueError(f"steps={steps!r}; expected an int >= 0")
    targets = list(sparsities) if sparsities is not None else paper_sparsities(steps, amount)
    if any(b <= a for a, b in itertools.pairwise(targets)):
        raise ValueError(f"sparsities={targets}; they must strictly increase (masks are "
                         "cumulative)")
    return targets


def _set_schedule(wrapper, schedule) -> None:
    # tfmot reads the schedule from the wrapper and from its Pruning object; swapping both lets
    # one wrapped model go through the whole series (no re-wrapping of a 700-layer graph).
    wrapper.pruning_schedule = schedule
    wrapper.pruning_obj._pruning_schedule = schedule  # pylint: disable=protected-access


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What one pruning step did (counts are weights, i.e. kernel entries)."""

    step: int
    removed: int          # weights newly pruned in this step
    remaining: int        # unpruned conv weights after the step
    conv_weights: int     # all conv weights in scope
    sparsity: float       # achieved sparsity over the kernels in scope
    tie_repairs: int      # mask entries where tfmot's >= threshold rule was overridden


class GlobalPruner:
    """Holds one tfmot-wrapped copy of a model through a series of cumulative pruning steps.

    tfmot's mask variables hold the cumulative masks (the set of unpruned weights). With
    `zeros_are_pruned` (default) they start as `weights != 0`, right for a model stripped after
    earlier pruning; pass False for a fresh model, whose masks then start all-ones as in PyTorch
    (random initialisation can produce exact zeros: about 3 of ResNet-101's 42.4M conv weights).

    Usage:
      pruner = GlobalPruner(model)                  # model is copied, never modified
      for k in range(4):
          pruner.step(amount=0.2)                   # masks now hold 0.8^(k+1) of the weights
          tfopt.train.fit(pruner.model, ds, cfg, extra_callbacks=pruner.callbacks())
      pruned = pruner.stripped()                    # plain Keras model, independent copy
    """

    def __init__(self, model, *, allocation: str = "global", scope: str = "conv",
                 zeros_are_pruned: bool = True):
        if allocation not in ALLOCATIONS:
            raise ValueError(f"allocation={allocation!r}; expected one of {ALLOCATIONS}")
        tfmot = _pr._tfmot()
        self.allocation = allocation
        self.scope = scope
        names = _pr.selected_layers(model, scope)
        if not names:
            raise ValueError(f"model {model.name!r} has no layers to prune in scope={scope!r}")
        idle = {n: tfmot.sparsity.keras.ConstantSparsity(0.0, begin_step=0, end_step=0,
                                                         frequency=1) for n in names}
        self.model = _pr.wrap(model, idle, scope=scope)
        self._wrappers = _pr.wrappers(self.model)
        self._names = {w.layer.name for w in self._wrappers}
        self.steps_done = 0
        if zeros_are_pruned:
            # A model stripped after earlier pruning re-enters with its zeros as pruned entries.
            for _, weight, mask in self._kernel_vars():
                mask.assign(_nonzero(weight.numpy()).astype(mask.dtype.as_numpy_dtype))

    @staticmethod
    def callbacks() -> list:
        """Pass to `fit` when fine-tuning `model` (tfmot's UpdatePruningStep)."""
        return _pr.callbacks()

    def _kernel_vars(self):
        out = []
        for w in self._wrappers:
            for weight, mask, _ in w.pruning_vars:
                out.append((w, weight, mask))
        return out

    def step(self, *, amount: float | None = PAPER_AMOUNT,
             sparsity: float | None = None) -> StepInfo:
        """Prune once: compute exact masks, apply them through per-layer ConstantSparsity.

        Args:
          amount: Fraction of the still-unpruned weights to remove (the paper: 0.2).
          sparsity: Alternatively, the cumulative target sparsity (amount is then ignored).
        """
        if sparsity is not None:
            amount = None
        tfmot = _pr._tfmot()
        kv = self._kernel_vars()
        _pr.apply_masks(self.model)  # weights updated after the last mask op are zeroed first
        values = [weight.numpy() for _, weight, _ in kv]
        prev = [mask.numpy() != 0 for _, _, mask in kv]
        before = sum(int(np.count_nonzero(m)) for m in prev)
        masks = compute_masks(values, masks=prev, amount=amount, sparsity=sparsity,
                              allocation=self.allocation)
        step = max(0, int(self._wrappers[0].pruning_step.numpy()))
        by_wrapper: dict[int, list] = {}
        for (w, _, _), m in zip(kv, masks):
            by_wrapper.setdefault(id(w), []).append(m)
        for w in self._wrappers:
            ms = by_wrapper[id(w)]
            # tfmot has one schedule per wrapper; layers with two kernels (separable) get the
            # pooled target and are repaired below if needed.
            size = sum(m.size for m in ms)
            keep = sum(int(m.sum()) for m in ms)
            _set_schedule(w, tfmot.sparsity.keras.ConstantSparsity(
                _tfmot_sparsity(size, keep), begin_step=step, end_step=step, frequency=1))
        _pr.prune_now(self.model, step)   # tfmot computes per-layer masks at the targets
        repairs = 0
        for (_, _, mask_var), m in zip(kv, masks):
            got = mask_var.numpy() != 0
            diff = int(np.count_nonzero(got != m))
            if diff:
                repairs += diff
                mask_var.assign(m.astype(mask_var.dtype.as_numpy_dtype))
        _pr.apply_masks(self.model)
        remaining = sum(int(m.sum()) for m in masks)
        total = sum(int(m.size) for m in masks)
        self.steps_done += 1
        return StepInfo(self.steps_done, before - remaining, remaining, total,
                        1.0 - remaining / total, repairs)

    def non_zeroed(self) -> int:
        """The paper's count: unpruned conv weights (mask entries) + all dense weights."""
        kept = sum(int(np.count_nonzero(mask.numpy())) for _, _, mask in self._kernel_vars())
        return kept + _count_outside(self.model, self._names)

    def stripped(self):
        """A plain-Keras, independent copy of the current pruned model."""
        return _pr.copy_model(_pr.strip(self.model))


@dataclasses.dataclass(frozen=True)
class SeriesRow:
    """One row of the paper's pruning table.

    Attributes:
      step: 0 = the unpruned model.
      target_sparsity: Nominal sparsity of the step (1 - 0.8^k for the paper's series).
      sparsity: Achieved fraction of zero conv weights (scope kernels).
      non_zeroed: Paper's count (row 0: total trainable parameters).
      accuracy / loss: On `eval_ds` (None without one).
      weight_bytes / gzip_bytes: The stripped model's weights, raw and gzip -9 (bytes; None if
        not measured; see `sparsity.gzip_size`).
      tie_repairs: See `StepInfo`.
    """

    step: int
    target_sparsity: float
    sparsity: float
    non_zeroed: int
    accuracy: float | None = None
    loss: float | None = None
    weight_bytes: int | None = None
    gzip_bytes: int | None = None
    tie_repairs: int = 0


def run_series(model, *, steps: int | None = None, sparsities: Sequence[float] | None = None,
               amount: float = PAPER_AMOUNT, allocation: str = "global", scope: str = "conv",
               train_ds=None, config=None, eval_ds=None, measure_size: bool = False,
               zeros_are_pruned: bool = True,
               on_step: Callable | None = None, val_ds=None) -> list[SeriesRow]:
    """The paper's iterative pruning series, optionally fine-tuning between steps.

    Args:
      model: Trained float model; never modified.
      steps: Number of steps removing `amount` of the remaining weights each (the paper: 10).
      sparsities: Alternatively, cumulative targets per step (e.g. [0.2, 0.36, 0.488, 0.59]);
        counts then follow round(s * N) instead of the paper's 0.8^k recursion.
      allocation: "global" (paper) or "layerwise".
      train_ds, config: If both given, fine-tune with `tfopt.train.fit` after each step (a
        fresh optimizer per step, as the paper's new trainer per iteration).
      eval_ds: If given, evaluate (`tfopt.train.evaluate`) after each step and for step 0.
      measure_size: Also report each stripped model's weight bytes, raw and gzip.
      zeros_are_pruned: See `GlobalPruner` (False for a fresh model, as PyTorch's all-ones
        initial masks).
      on_step: Called as `on_step(row, pruner)` after every step (e.g. to save
        `pruner.stripped()`).
      val_ds: Held-out validation data forwarded to every fine-tuning `fit` (needed by a
        `val_*` monitor, e.g. `tfopt.train.plateau_finetune`); never the test split.

    Returns:
      Rows for step 0..n.
    """
    from tfopt import metrics as _metrics

    targets = _targets(steps, sparsities, amount)
    if (train_ds is None) != (config is None):
        raise ValueError("fine-tuning needs both train_ds and config (or neither)")

    def evaluate(m):
        if eval_ds is None:
            return None, None
        from tfopt import train as _train
        r = _train.evaluate(m, eval_ds)
        return float(r["accuracy"]), float(r["loss"])

    def size(m):
        if not measure_size:
            return None, None
        s = _sp.gzip_size(m)
        return s["bytes"], s["gzip_bytes"]

    acc, loss = evaluate(model)
    rows = [SeriesRow(0, 0.0, _sp.model_sparsity(model, scope), _metrics.count_params(model),
                      acc, loss, *size(model))]
    if on_step is not None:
        on_step(rows[0], None)
    pruner = GlobalPruner(model, allocation=allocation, scope=scope,
                          zeros_are_pruned=zeros_are_pruned)
    for k, target in enumerate(targets, start=1):
        info = (pruner.step(sparsity=target) if sparsities is not None
                else pruner.step(amount=amount))
        if train_ds is not None:
            from tfopt import train as _train
            _train.fit(pruner.model, train_ds, config, val_ds=val_ds,
                       extra_callbacks=pruner.callbacks())
            _pr.apply_masks(pruner.model)
        stripped = pruner.stripped() if (measure_size or eval_ds is not None) else None
        acc, loss = evaluate(stripped) if stripped is not None else (None, None)
        row = SeriesRow(k, float(target), info.sparsity, pruner.non_zeroed(), acc, loss,
                        *(size(stripped) if stripped is not None else (None, None)),
                        info.tie_repairs)
        rows.append(row)
        if on_step is not None:
            on_step(row, pruner)
    return rows


def rows_to_markdown(rows: Sequence[SeriesRow]) -> str:
    """The pruning table as markdown: step, sparsity [%], non-zeroed, accuracy [%], gzip [bytes]."""
    out = ["| step | sparsity [%] | non-zeroed | accuracy [%] | gzip weights [bytes] |",
           "|---:|---:|---:|---:|---:|"]
    for r in rows:
        acc = f"{100 * r.accuracy:.2f}" if r.accuracy is not None else "-"
        gz = f"{r.gzip_bytes:,}" if r.gzip_bytes is not None else "-"
        out.append(f"| {r.step} | {100 * r.sparsity:.2f} | {r.non_zeroed:,} | {acc} | {gz} |")
    return "\n".join(out)


__all__ = [
    "ALLOCATIONS",
    "PAPER_AMOUNT",
    "GlobalPruner",
    "SeriesRow",
    "StepInfo",
    "compute_masks",
    "paper_sparsities",
    "rows_to_markdown",
    "run_series",
    "simulate_series",
]
