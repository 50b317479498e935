"""The results of a trial as data: `TrialResult` (with nested `TFLiteResult` per conversion mode,
`MicroResult` and one typed `StepRecord` per step it ran: tfopt.core.step_records), one JSON
line each. TensorFlow-free.

Written by the trial runner, appended by the driver to WORKDIR/results.jsonl, and read back by
the report, the recommender and the notebook through `read_results` -- the one reader.

Units: parameters and FLOPs are counts (FLOPs in fvcore's convention, 1 multiply-add = 1 FLOP),
sizes in bytes, accuracies in percent, drops in percentage points (baseline minus this trial),
latency in milliseconds, wall time in seconds.

Schema versions: 2 (this module; key `schema_version`) and 1 (the untyped rows written before
it; key `schema`, or none at all). A version-1 line is read by `_from_v1`: the keys are the
same, so it maps field by field and drops keys version 2 no longer has. A newer version is
refused with one line saying how to re-run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Iterable, Mapping

from tfopt.core.choices import check, MICRO_STATUSES, TRIAL_STATUSES
from tfopt.core.step_records import StepRecord, step_record_from_dict

SCHEMA_VERSION = 2
RESULTS_FILE = "results.jsonl"


def failure_message(err: BaseException) -> str:
    """'ValueError: first line of the message' (at most 500 characters), for a failed row."""
    lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:500]


@dataclasses.dataclass(frozen=True)
class TFLiteResult:
    """One converted model (a TFLite mode): file, bytes, accuracy and interpreter latency."""

    status: str = "ok"
    path: str | None = None
    bytes: int | None = None
    gzip_bytes: int | None = None
    ops: tuple[str, ...] = ()
    input_scale: float | None = None
    input_zero_point: int | None = None
    accuracy_pct: float | None = None
    latency_1t_median_ms: float | None = None
    latency_1t_p90_ms: float | None = None
    latency_1t_threads: int | None = None
    latency_all_median_ms: float | None = None
    latency_all_p90_ms: float | None = None
    latency_all_threads: int | None = None
    error: str | None = None
    # int8: `tfopt.tflite.inspect` without the latency profile or a TFLM run (bytes by
    # category, op counts, int8 coverage, liveness peak and its largest tensors); see
    # tfopt.experiments.artefacts.inspect_summary.
    inspect: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclasses.dataclass(frozen=True)
class MicroResult:
    """The int8 model on TensorFlow Lite Micro: arena and flash bytes, max diff vs LiteRT (LSB)."""

    status: str = "skipped"
    arena_bytes: int | None = None
    flash_bytes: int | None = None
    max_diff_lsb: int | None = None
    num_compared: int | None = None
    unsupported_ops: tuple[str, ...] = ()
    error: str | None = None

    def __post_init__(self):
        check("micro status", self.status, MICRO_STATUSES)


@dataclasses.dataclass(frozen=True)
class TrialResult:
    """One trial's row. `status` 'failed' rows carry `error` and few measurements."""

    trial_id: str
    variant: str
    recipe: str
    status: str
    requested: bool = True
    error: str | None = None
    traceback_path: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    wall_time_s: float = 0.0
    versions: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    host: str | None = None
    config_fingerprint: str | None = None
    recipe_steps: tuple[str, ...] = ()
    parent_trial: str | None = None
    baseline_trial: str | None = None
    teacher_trial: str | None = None
    seed: int | None = None  # the trial's seed (one row per seed; never averaged in the file)
    control_trial: str | None = None  # matched control of a compression trial (issue #14)
    reference_variant: str | None = None
    techniques: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    paper_variant: str | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str | None = None
    num_classes: int | None = None
    input_shape: tuple[int, ...] = ()
    width_multiplier: float | None = None
    train_examples: int | None = None
    test_examples: int | None = None
    params: int = 0
    nonzero_params: int | None = None
    paper_nonzero_params: int | None = None
    conv_sparsity: float | None = None
    target_sparsity: float | None = None
    flops: int = 0
    macs: int | None = None
    keras_weights_bytes: int | None = None
    keras_accuracy_pct: float | None = None
    baseline_accuracy_pct: float | None = None
    accuracy_drop_pp: float | None = None
    baseline_params: int | None = None
    rpr_pct: float | None = None
    params_ratio_pct: float | None = None
    flops_ratio_pct: float | None = None
    steps: tuple[StepRecord, ...] = ()
    tflite: Mapping[str, TFLiteResult] = dataclasses.field(default_factory=dict)
    micro: MicroResult = dataclasses.field(default_factory=MicroResult)
    export_dir: str | None = None
    tensorboard_dir: str | None = None
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check("status", self.status, TRIAL_STATUSES)

    # ---- derived ------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def nonzero(self) -> int:
        """Non-zero parameters (all parameters where not measured)."""
        return self.params if self.nonzero_params is None else self.nonzero_params

    @property
    def kinds(self) -> tuple[str, ...]:
        """The step kinds of the recipe ('none', 'prune_global', ..., 'qat')."""
        return self.recipe_steps or tuple(s.split(":")[0] for s in self.recipe.split("+"))

    @property
    def int8(self) -> TFLiteResult:
        """The int8 conversion (an empty 'missing' result when there is none)."""
        return self.tflite.get("int8") or TFLiteResult(status="missing")

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def failed(
        cls, trial_id: str, variant: str, recipe: str, error: str, **fields
    ) -> "TrialResult":
        """The one shape of a failed row (trial raised, dependency failed, worker died)."""
        return cls(trial_id, variant, str(recipe), "failed", error=error[:500], **fields)

    # ---- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"schema_version": SCHEMA_VERSION}
        for f in dataclasses.fields(self):
            d[f.name] = getattr(self, f.name)
        d["steps"] = [s.to_dict() for s in self.steps]
        d["tflite"] = {m: _plain(dataclasses.asdict(t)) for m, t in self.tflite.items()}
        d["micro"] = _plain(dataclasses.asdict(self.micro))
        return _plain(d)

    def to_json(self) -> str:
        """One line of JSON (no newline inside), keys sorted."""
        return json.dumps(self.to_dict(), sort_keys=True, default=_json_default)

    @classmethod
    def from_dict(cls, d: Mapping, *, where: str = "results row") -> "TrialResult":
        """A row of any known schema version (2, or 1 through `_from_v1`)."""
        version = d.get("schema_version", d.get("schema", 1))
        if version == 1:
            return _from_v1(d)
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"{where}: schema_version {version!r} is not readable by this tfopt (reads 1 and "
                f"{SCHEMA_VERSION}); upgrade tfopt, or re-run the ablation with --overwrite"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - names - {"schema_version"})
        if extra:
            raise ValueError(f"{where}: unknown keys {extra} for schema_version {version}")
        return _build(cls, {k: v for k, v in d.items() if k in names})


def _build(cls, kw: dict) -> TrialResult:
    kw = dict(kw)
    kw["steps"] = tuple(step_record_from_dict(s) for s in kw.get("steps") or ())
    kw["tflite"] = {m: _tflite(t) for m, t in (kw.get("tflite") or {}).items()}
    kw["micro"] = _micro(kw.get("micro") or {})
    for key in ("recipe_steps", "input_shape"):
        if key in kw:
            kw[key] = tuple(kw[key] or ())
    for key in ("versions", "techniques", "config", "timings"):
        if key in kw:
            kw[key] = dict(kw[key] or {})
    return cls(**kw)


def _tflite(d: Mapping) -> TFLiteResult:
    names = {f.name for f in dataclasses.fields(TFLiteResult)}
    kw = {k: v for k, v in d.items() if k in names}
    kw["ops"] = tuple(kw.get("ops") or ())
    return TFLiteResult(**kw)


def _micro(d: Mapping) -> MicroResult:
    names = {f.name for f in dataclasses.fields(MicroResult)}
    kw = {k: v for k, v in d.items() if k in names}
    kw["unsupported_ops"] = tuple(kw.get("unsupported_ops") or ())
    return MicroResult(**kw)


def _from_v1(d: Mapping) -> TrialResult:
    """Reader for version 1 (untyped dict rows): same key names; keys v2 dropped are ignored."""
    names = {f.name for f in dataclasses.fields(TrialResult)}
    kw = {k: v for k, v in d.items() if k in names and v is not None}
    kw.setdefault("variant", "?")
    kw.setdefault("recipe", "?")
    kw.setdefault("status", "failed")
    kw.setdefault("trial_id", f"{kw['variant']}__{kw['recipe']}")
    return _build(TrialResult, kw)


def _plain(obj):
    """Tuples -> lists, mappings -> dicts, recursively (what json writes)."""
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _json_default(obj):
    item = getattr(obj, "item", None)  # numpy scalars (numpy is not imported here)
    if callable(item):
        return item()
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(obj, set):
        return sorted(obj)
    return str(obj)


# --------------------------------------------------------------------------------------------
# reading a results file
# --------------------------------------------------------------------------------------------


def read_results(path: str) -> list[TrialResult]:
    """Every complete row of a results.jsonl (a WORKDIR or the file itself), in file order.

    A torn last line (a `kill -9` mid-write) is skipped. Later rows for a trial win in `latest`.
    """
    if os.path.isdir(path):
        path = os.path.join(path, RESULTS_FILE)
    if not os.path.exists(path):
        raise ValueError(f"results file {path!r} does not exist")
    rows, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                if raw.endswith("\n"):
                    bad.append(n)  # a line torn by an older tfopt, then terminated
                continue  # else: an unterminated last line (a writer died or is mid-write)
            rows.append(TrialResult.from_dict(d, where=f"{path} line {n}"))
    if bad:
        logging.warning("%s: skipped unparsable line(s) %s", path, bad[:10])
    return rows


def latest(rows: Iterable[TrialResult]) -> list[TrialResult]:
    """One row per trial id: the last one written."""
    out: dict[str, TrialResult] = {}
    for row in rows:
        out[row.trial_id] = row
    return list(out.values())


def as_results(rows: Iterable) -> list[TrialResult]:
    """TrialResults from TrialResults or row dicts (any schema version)."""
    return [r if isinstance(r, TrialResult) else TrialResult.from_dict(r) for r in rows]
