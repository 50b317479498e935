"""What each recipe step did, as one typed record per step kind. TensorFlow-free.

A trial step (tfopt.experiments.steps) returns one of these beside the model it produced:

    TrainRecord("train", history)                                 # baseline training
    PruneSeriesRecord("prune_global", history, allocation="global", achieved_sparsity=0.36, ...)
    OcnnaRecord("ocnna", history, k=30, ocnna_rpr_pct=42.1, ...)

`history` is the trainer's summary of the step's (fine-)training: scalars such as `epochs`,
`best_epoch`, `wall_time_s` and `final_<metric>` (the last value of each per-epoch list). In
results.jsonl a record is one flat object: `{"kind": ..., <typed fields>, <history keys>}`, so
rows written before the typed records read back unchanged (`step_record_from_dict`). Units:
sparsities are fractions of prunable weights, percentages are in %, times in seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

from tfopt.core.choices import OCNNA_KINDS, PRUNE_SCHEDULE_KINDS, PRUNE_SERIES_KINDS


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """Base record: the step's kind and its training history summary (any kind)."""

    kind: str
    history: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    KINDS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        if self.KINDS and self.kind not in self.KINDS:
            raise ValueError(f"{type(self).__name__} kind={self.kind!r}; expected one of "
                             f"{self.KINDS}")

    def fields(self) -> dict:
        """The kind-specific fields (none for the base record)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("kind", "history")}

    @property
    def values(self) -> dict:
        """Every measured value, flat: history keys, then the kind-specific fields."""
        return {**dict(self.history), **self.fields()}

    def to_dict(self) -> dict:
        return {"kind": self.kind, **self.values}

    @classmethod
    def from_dict(cls, d: Mapping) -> "StepRecord":
        return step_record_from_dict(d)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainRecord(StepRecord):
    """`none` recipes: the variant trained from scratch with the baseline recipe."""

    KINDS: ClassVar[tuple[str, ...]] = ("train",)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruneSeriesRecord(StepRecord):
    """One cumulative step of the iterative L1 magnitude series (conv kernels)."""

    KINDS: ClassVar[tuple[str, ...]] = PRUNE_SERIES_KINDS
    allocation: str = "global"            # "global" or "layerwise"
    achieved_sparsity: float = 0.0        # zeros / prunable conv weights after stripping
    removed: int = 0                      # weights set to zero by this step
    tie_repairs: int = 0                  # equal-magnitude ties broken to hit the count


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruneScheduleRecord(StepRecord):
    """tfmot pruning during fine-tuning with a PolynomialDecay or ConstantSparsity schedule."""

    KINDS: ClassVar[tuple[str, ...]] = PRUNE_SCHEDULE_KINDS
    schedule: str = "polynomial"          # or "constant"
    achieved_sparsity: float = 0.0
    begin_step: int = 0                   # optimizer steps
    end_step: int = 0
    frequency: int = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class QatRecord(StepRecord):
    """Quantization-aware fine-tuning (pruning-preserving when the parent was pruned)."""

    KINDS: ClassVar[tuple[str, ...]] = ("qat",)
    preserve_sparsity: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class OcnnaRecord(StepRecord):
    """Filter removal by surgery (OCNNA, L1 or random ranking), then fine-tuning."""

    KINDS: ClassVar[tuple[str, ...]] = OCNNA_KINDS
    criterion: str = "ocnna"
    k: float = 0.0                        # percentile below which filters are removed
    scope: str = "layer"
    ocnna_rpr_pct: float | None = None    # Remaining Parameters Ratio, %
    ocnna_flops_ratio_pct: float | None = None
    params_before: int | None = None
    params_after: int | None = None
    filters_before: int | None = None
    filters_after: int | None = None
    skipped: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    scoring_images: int | None = None
    scoring_seconds: float | None = None
    accuracy_before_finetune_pct: float | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class KdRecord(StepRecord):
    """Knowledge distillation from the teacher trial (stand-alone or as recovery)."""

    KINDS: ClassVar[tuple[str, ...]] = ("kd",)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ControlRecord(StepRecord):
    """A matched control: the baseline fine-tuned as often as the compression it controls."""

    KINDS: ClassVar[tuple[str, ...]] = ("control",)
    fits: int = 0                         # fine-tuning runs, as many as the paired recipe's


RECORD_TYPES = (TrainRecord, PruneSeriesRecord, PruneScheduleRecord, QatRecord, OcnnaRecord,
                KdRecord, ControlRecord)
_BY_KIND = {kind: cls for cls in RECORD_TYPES for kind in cls.KINDS}


def step_record_from_dict(d: Mapping) -> StepRecord:
    """The typed record of a flat results object; keys that are not fields are history."""
    d = dict(d)
    kind = d.pop("kind", "?")
    cls = _BY_KIND.get(kind, StepRecord)
    names = {f.name for f in dataclasses.fields(cls)} - {"kind", "history"}
    own = {k: d.pop(k) for k in list(d) if k in names}
    if "skipped" in own:
        own["skipped"] = dict(own["skipped"] or {})
    return cls(kind, d, **own)


__all__ = ["ControlRecord", "KdRecord", "OcnnaRecord", "PruneScheduleRecord", "PruneSeriesRecord", "QatRecord",
           "RECORD_TYPES", "StepRecord", "TrainRecord", "step_record_from_dict"]
