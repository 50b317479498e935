"""The OCNNA simplify report: per-group filter counts, parameter / FLOP ratios, accuracy.

Parameter counts are parameters; FLOPs follow fvcore (1 MAC = 1 FLOP); accuracies are top-1
in [0, 1]. Split out of `tfopt.compress.ocnna`, which re-exports every name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass
class LayerReport:
    """One pruned channel group: filters before/after, the scores, the kept indices."""

    name: str
    members: tuple[str, ...]
    filters_before: int
    filters_after: int
    kept: list[int]
    scores: list[float]
    note: str = ""


@dataclasses.dataclass
class SimplifyReport:
    """What `simplify` did. Parameter counts are parameters; FLOPs follow fvcore (1 MAC = 1 FLOP).

    Attributes:
      params_before / params_after: trainable parameters (`tfopt.metrics.count_params`).
      total_params_before / total_params_after: all parameters incl. BN moving statistics.
      accuracy_*: top-1 accuracy in [0, 1], filled by `evaluate_drop` (None until then).
    """

    criterion: str
    k: float
    scope: str
    options: dict
    layers: list[LayerReport]
    skipped: dict[str, str]
    params_before: int
    params_after: int
    total_params_before: int
    total_params_after: int
    flops_before: int | None
    flops_after: int | None
    n_images: int | None
    scoring_seconds: float
    accuracy_original: float | None = None
    accuracy_simplified: float | None = None
    accuracy_finetuned: float | None = None

    @property
    def rpr(self) -> float:
        """Remaining Parameters Ratio: % of trainable parameters kept."""
        return 100.0 * self.params_after / self.params_before

    @property
    def total_param_ratio(self) -> float:
        """% of all parameters (incl. non-trainable) kept."""
        return 100.0 * self.total_params_after / self.total_params_before

    @property
    def flops_ratio(self) -> float | None:
        """% of FLOPs kept (None if FLOPs could not be counted)."""
        if not self.flops_before:
            return None
        return 100.0 * self.flops_after / self.flops_before

    @property
    def accuracy_drop_pp(self) -> float | None:
        """Original minus simplified (before fine-tuning) top-1, in percentage points."""
        if self.accuracy_original is None or self.accuracy_simplified is None:
            return None
        return 100.0 * (self.accuracy_original - self.accuracy_simplified)

    @property
    def accuracy_drop_finetuned_pp(self) -> float | None:
        """Original minus simplified-and-fine-tuned top-1, in percentage points."""
        if self.accuracy_original is None or self.accuracy_finetuned is None:
            return None
        return 100.0 * (self.accuracy_original - self.accuracy_finetuned)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("rpr", "total_param_ratio", "flops_ratio", "accuracy_drop_pp",
                    "accuracy_drop_finetuned_pp"):
            d[key] = getattr(self, key)
        return d

    def to_markdown(self) -> str:
        fr = self.flops_ratio
        lines = [
            f"OCNNA simplify: criterion={self.criterion}, k={self.k}, scope={self.scope}",
            "",
            f"- Remaining Parameters Ratio (trainable): {self.rpr:.2f} % "
            f"({self.params_after:,} / {self.params_before:,})",
            f"- total-parameter ratio: {self.total_param_ratio:.2f} %",
            f"- FLOPs ratio: {'n/a' if fr is None else f'{fr:.2f} %'}",
        ]
        if self.accuracy_drop_pp is not None:
            lines.append(f"- accuracy: original {100 * self.accuracy_original:.2f} %, simplified "
                         f"{100 * self.accuracy_simplified:.2f} % (drop "
                         f"{self.accuracy_drop_pp:+.2f} pp)")
        if self.accuracy_drop_finetuned_pp is not None:
            lines.append(f"- after fine-tuning: {100 * self.accuracy_finetuned:.2f} % (drop "
                         f"{self.accuracy_drop_finetuned_pp:+.2f} pp)")
        lines += ["", "| group | members | filters before | after | note |",
                  "|---|---|---:|---:|---|"]
        for lr in self.layers:
            lines.append(f"| {lr.name} | {len(lr.members)} | {lr.filters_before} | "
                         f"{lr.filters_after} | {lr.note} |")
        if self.skipped:
            lines += ["", "Skipped producers:", ""]
            lines += [f"- {k}: {v}" for k, v in self.skipped.items()]
        return "\n".join(lines) + "\n"



def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
