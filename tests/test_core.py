"""tfopt.core: allowed values, recipe step types, TrialResult JSON and the version-1 reader
(TensorFlow-free)."""

import json
import os

import pytest

from tfopt.core import choices
from tfopt.core.recipe import KdStep, OcnnaStep, PruneStep, QatStep, parse_recipe
from tfopt.core.results import (
    SCHEMA_VERSION,
    MicroResult,
    TFLiteResult,
    TrialResult,
    read_results,
)
from tfopt.core.step_records import (
    OcnnaRecord,
    PruneSeriesRecord,
    StepRecord,
    TrainRecord,
    step_record_from_dict,
)

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "results_fixture.jsonl")


def test_recipes_parse_once_into_typed_steps():
    r = parse_recipe("prune_global:0.2,0.36+qat")
    assert r.steps == (PruneStep("prune_global", (0.2, 0.36)), QatStep())
    assert r.last.kind == "qat" and r.is_pruned and r.steps[0].target == 0.36
    o = parse_recipe("ocnna_l1:k=30,scope=global").last
    assert isinstance(o, OcnnaStep) and o.criterion == "l1" and o.scope == "global"
    assert parse_recipe("kd:t=2,alpha=0.5").last == KdStep(temperature=2.0, alpha=0.5)
    assert parse_recipe(r) is r  # a Recipe is not parsed again
    assert set(choices.RECIPE_STEP_KINDS) == {"none", *choices.PRUNE_KINDS, "qat",
                                              *choices.OCNNA_KINDS, "kd", "control"}


def test_trial_result_round_trips_through_one_json_line():
    row = TrialResult(
        "t__none", "tiny_cnn", "none", "ok", params=10, flops=20, keras_accuracy_pct=50.0,
        steps=(TrainRecord("train", {"loss": 1.5}),
               PruneSeriesRecord("prune_global", {"epochs": 2}, achieved_sparsity=0.2)),
        tflite={"int8": TFLiteResult(bytes=100, ops=("CONV_2D",), accuracy_pct=49.0)},
        micro=MicroResult("ok", arena_bytes=512), input_shape=(8, 8, 3),
    )
    line = row.to_json()
    assert "\n" not in line and json.loads(line)["schema_version"] == SCHEMA_VERSION
    assert TrialResult.from_dict(json.loads(line)) == row
    assert row.int8.bytes == 100 and row.nonzero == 10 and row.kinds == ("none",)


def test_the_failed_row_has_one_shape():
    row = TrialResult.failed("t__qat", "tiny_cnn", "qat", "ValueError: x" * 100)
    assert row.status == "failed" and len(row.error) == 500 and not row.ok


def test_version_1_rows_load_through_the_v1_reader():
    rows = read_results(FIXTURE)
    assert len(rows) == 5 and all(isinstance(r, TrialResult) for r in rows)
    base = next(r for r in rows if r.trial_id == "tiny_cnn__none")
    assert base.int8.bytes == 11928 and base.micro.arena_bytes == 5424
    assert base.steps[0].kind == "train" and base.input_shape == (16, 16, 3)
    # and they are written back as version 2
    assert json.loads(base.to_json())["schema_version"] == 2


def test_an_unknown_schema_version_is_refused_with_one_line(tmp_path):
    p = tmp_path / "results.jsonl"
    p.write_text(json.dumps({"schema_version": 9, "trial_id": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"schema_version 9 .*re-run the ablation") as err:
        read_results(str(p))
    assert "\n" not in str(err.value)


def test_bad_statuses_are_refused():
    with pytest.raises(ValueError, match=r"status='done' is unknown"):
        TrialResult("t", "v", "none", "done")


def test_step_records_are_typed_per_kind_and_read_flat_rows():
    flat = {"kind": "prune_global", "allocation": "layerwise", "achieved_sparsity": 0.36,
            "removed": 12, "tie_repairs": 0, "epochs": 2, "final_loss": 0.5}
    rec = step_record_from_dict(flat)           # a row as written before the typed records
    assert isinstance(rec, PruneSeriesRecord) and rec.allocation == "layerwise"
    assert rec.achieved_sparsity == 0.36 and rec.history == {"epochs": 2, "final_loss": 0.5}
    assert rec.to_dict() == flat and rec.values["removed"] == 12
    ocnna = step_record_from_dict({"kind": "ocnna_l1", "k": 30, "skipped": {"a": "b"}})
    assert isinstance(ocnna, OcnnaRecord) and ocnna.k == 30 and ocnna.skipped == {"a": "b"}
    assert type(step_record_from_dict({"kind": "new_kind", "x": 1})) is StepRecord
    with pytest.raises(ValueError, match="PruneSeriesRecord kind='qat'"):
        PruneSeriesRecord("qat")


def test_every_recipe_step_kind_has_exactly_one_record_type():
    from tfopt.core.step_records import RECORD_TYPES
    kinds = [k for cls in RECORD_TYPES for k in cls.KINDS]
    assert len(kinds) == len(set(kinds))                       # no kind claimed twice
    step_kinds = {"train" if k == "none" else k for k in choices.RECIPE_STEP_KINDS}
    assert set(kinds) == step_kinds                            # baseline "none" trains: TrainRecord
