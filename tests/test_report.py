"""tfopt.report: results.jsonl -> report.md, CSV, PNG plots (Agg) and TensorBoard HParams."""

import csv
import json
import os

import pytest

from tfopt import report
from tfopt.core.results import as_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "data", "results_fixture.jsonl")


def _row(
    variant,
    recipe,
    acc,
    params,
    nonzero=None,
    *,
    sparsity=0.0,
    flops=None,
    tech=None,
    int8=(1000, None),
    arena=5000,
    rpr=None,
    status="ok",
):
    steps = [s.split(":")[0] for s in recipe.split("+")]
    return {
        "trial_id": f"{variant}__{recipe}",
        "variant": variant,
        "recipe": recipe,
        "recipe_steps": steps,
        "status": status,
        "reference_variant": "a",
        "keras_accuracy_pct": acc,
        "params": params,
        "nonzero_params": nonzero if nonzero is not None else params,
        "paper_nonzero_params": nonzero if nonzero is not None else params,
        "conv_sparsity": sparsity,
        "target_sparsity": sparsity or None,
        "flops": flops or params * 10,
        "keras_weights_bytes": params * 4 + 1000,
        "techniques": tech or {},
        "rpr_pct": rpr,
        "accuracy_drop_pp": None,
        "tflite": {
            "int8": {
                "status": "ok",
                "bytes": int8[0],
                "gzip_bytes": int8[0] // 2,
                "accuracy_pct": int8[1] if int8[1] is not None else acc - 0.1,
                "latency_1t_median_ms": 0.5,
                "path": f"/x/{variant}.tflite",
            },
            "float32": {"status": "ok", "bytes": params * 4, "accuracy_pct": acc},
        },
        "micro": {"status": "ok", "arena_bytes": arena},
        "wall_time_s": 3.0,
    }


ROWS = [  # synthetic: pins table/plot logic; the real-run fixture is tested below
    _row("a", "none", 90.0, 1_000_000, tech={"se": False, "conv": "standard"}),
    _row("a", "prune_global:0.2", 89.9, 1_000_000, 800_000, sparsity=0.2),
    _row("a", "prune_global:0.2,0.36", 89.0, 1_000_000, 640_000, sparsity=0.36),
    _row("a", "qat", 89.7, 1_000_000, int8=(900, 89.7)),
    _row("a", "ocnna:k=30", 88.0, 600_000, rpr=60.0),
    _row("a", "ocnna_l1:k=30", 87.0, 600_000, rpr=60.0),
    _row("a", "ocnna_random:k=30", 85.0, 600_000, rpr=60.0),
    _row("b", "none", 87.0, 100_000, tech={"se": True, "conv": "depthwise"}, int8=(300, 86.8)),
    {
        "trial_id": "c__none",
        "variant": "c",
        "recipe": "none",
        "status": "failed",
        "error": "ValueError: boom",
        "traceback_path": "/x/tb.txt",
    },
]


def test_pareto_front_keeps_only_undominated_points():
    pts = [(1, 50), (2, 60), (3, 55), (4, 70), (5, 70), (0.5, 10)]
    assert report.pareto_front(pts) == [5, 0, 1, 3]


def test_technique_table_has_check_marks_and_percentages():
    techniques, variants, cells = report.technique_table(ROWS)
    assert variants == ["a", "b"] and techniques == ["se", "conv"]
    assert cells[("se", "b")] == "✓" and cells[("se", "a")] == ""
    assert cells[("conv", "b")] == "depthwise" and cells[("conv", "a")] == ""
    assert cells[("params [%]", "b")] == "10.00" and cells[("params [M]", "a")] == "1.000"
    assert cells[("accuracy [%]", "b")] == "87.00"


def test_pruning_table_orders_by_sparsity_after_the_baseline():
    rows = report.pruning_table(ROWS)
    assert [r["recipe"] for r in rows] == ["none", "prune_global:0.2", "prune_global:0.2,0.36"]
    assert rows[2]["nonzero"] == 640_000 and rows[2]["conv_sparsity_pct"] == pytest.approx(36.0)


def test_ocnna_table_compares_criteria_at_equal_k():
    rows = report.ocnna_table(ROWS)
    assert [r["criterion"] for r in rows] == ["ocnna", "ocnna_l1", "ocnna_random"]
    assert all(r["k"] == "30" and r["rpr_pct"] == 60.0 for r in rows)


def test_write_report_from_a_results_file(tmp_path):
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    paths = report.write_report(str(tmp_path), tensorboard=False)
    md = open(paths["markdown"]).read()
    for heading in (
        "Techniques per variant",
        "All trials",
        "Pruning",
        "Quantization",
        "OCNNA vs filter-ranking",
        "Smallest model",
        "Failed trials",
    ):
        assert heading in md, heading
    assert "| se | " in md and "c__none" in md and "ValueError: boom" in md
    for name in (
        "accuracy_vs_params",
        "accuracy_vs_int8_bytes",
        "accuracy_vs_sparsity",
        "ocnna_vs_baselines",
    ):
        p = paths[f"plot_{name}"]
        assert os.path.getsize(p) > 1000 and open(p, "rb").read(4) == b"\x89PNG"
        assert f"plots/{name}.png" in md
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(ROWS) and "tflite_int8_bytes" in rows[0]
    assert "tflite_int8_bytes_weights" not in rows[0]        # no inspect in these rows


def test_int8_bytes_breakdown_column_and_csv_from_the_stored_inspect(tmp_path):
    cats = {"weights": 138131, "quantization": 9276, "strings": 40, "metadata": 631,
            "structure": 51890, "duplicates": 0}
    row = _row("a", "none", 90.0, 150_000, int8=(sum(cats.values()), 89.0))
    row["tflite"]["int8"]["inspect"] = {"bytes_by_category": cats, "num_ops": 494,
                                        "peak_bytes": 155904}
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")
    paths = report.write_report(str(tmp_path), tensorboard=False, plots=False)
    md = open(paths["markdown"]).read()
    assert "W weights · Q quant." in md
    assert "| W 138,131 · Q 9,276 · S 40 · M 631 · G 51,890 |" in md   # D only when not 0
    with open(paths["csv"]) as f:
        (flat,) = list(csv.DictReader(f))
    assert flat["tflite_int8_bytes_structure"] == "51890" and flat["tflite_int8_num_ops"] == "494"
    assert "tflite_int8_inspect" not in flat
    with open(paths["csv_recommend"]) as f:
        rec = list(csv.DictReader(f))
    assert {r["max_drop_pp"] for r in rec} == {"0.5", "1.0", "2.0", "5.0"}


def test_hparams_export_writes_event_files(tmp_path):
    logdir = report.write_hparams(report.ok_rows(ROWS), str(tmp_path / "hp"))
    runs = os.listdir(logdir)
    assert "a__none" in runs and "b__none" in runs
    assert any(
        f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(logdir, "a__none"))
    )


@pytest.mark.skipif(not os.path.exists(FIXTURE), reason="fixture not generated yet")
def test_report_from_the_real_fixture(tmp_path):
    paths = report.write_report(FIXTURE, str(tmp_path), tensorboard=False)
    md = open(paths["markdown"]).read()
    assert "Quantization" in md and "int8" in md
    assert os.path.exists(paths["plot_accuracy_vs_params"])


# ---- across seeds (issue #14): mean ± std, matched controls, significance, convergence -----


def _seeded(recipe, seed, acc, int8_acc=None, variant="a", steps_values=None):
    r = _row(variant, recipe, acc, 1000, int8=(1000, int8_acc if int8_acc is not None else acc))
    r["seed"] = seed
    r["trial_id"] += f"__s{seed}" if seed else ""
    if steps_values is not None:
        r["steps"] = [{"kind": "train", **steps_values}]
    return r


SEEDED = [  # synthetic, 2 seeds: pruning gains over the baseline but not over its control
    _seeded("none", 0, 88.0, steps_values={"converged": False, "gain_last_k_pp": 2.5,
                                           "convergence_k": 3}),
    _seeded("none", 1, 88.4, steps_values={"converged": True, "gain_last_k_pp": 0.1,
                                           "convergence_k": 3}),
    _seeded("control:1", 0, 89.0), _seeded("control:1", 1, 89.4),
    _seeded("control:2", 0, 89.2), _seeded("control:2", 1, 89.6),
    _seeded("prune_global:0.2", 0, 89.1), _seeded("prune_global:0.2", 1, 89.3),
    _seeded("prune_global:0.2,0.5", 0, 87.0), _seeded("prune_global:0.2,0.5", 1, 87.6),
    _seeded("qat", 0, 89.0, 88.9), _seeded("qat", 1, 89.4, 89.3),
    _seeded("none", 0, 86.0, variant="b"), _seeded("none", 1, 86.6, variant="b"),
]


def test_seeds_table_pairs_each_trial_with_its_matched_control_per_seed():
    from tfopt.experiments.seedstats import group_stats, seeds_table

    by = {(g.variant, g.recipe): g for g in group_stats(as_results(SEEDED))}
    p1 = by[("a", "prune_global:0.2")]
    assert p1.control == "control:1" and p1.controlled and p1.seeds == (0, 1)
    assert p1.accuracy.n == 2 and p1.accuracy.mean == pytest.approx(89.2)
    # raw drop says pruning "gains" 1 pp; against equal training it is -0.1 ± 0.14: n.s.
    assert p1.raw_drop.mean == pytest.approx(-1.0) and p1.raw_drop.paired
    assert p1.controlled_drop.mean == pytest.approx(0.0) and p1.significant is False
    p2 = by[("a", "prune_global:0.2,0.5")]
    assert p2.control == "control:2" and p2.controlled_drop.mean == pytest.approx(2.1)
    assert p2.significant is True  # 2.1 > its paired spread (0.14)
    assert by[("b", "none")].control == "none" and by[("b", "none")].controlled  # vs a's baseline
    recs = {(r["variant"], r["recipe"]): r for r in seeds_table(as_results(SEEDED))}
    assert recs[("a", "prune_global:0.2")]["controlled_drop"].endswith("(n.s.)")
    assert recs[("a", "prune_global:0.2")]["accuracy"] == "89.20 ± 0.14 (n=2)"
    assert recs[("a", "prune_global:0.2,0.5")]["controlled_drop"] == "+2.10 ± 0.14"
    assert recs[("a", "none")]["converged"] == "not converged: s0: +2.50 pp in the last 3 epochs"
    assert recs[("a", "control:1")]["control"] == "—"


def test_one_seed_is_marked_unknown_and_a_missing_control_falls_back_to_the_baseline():
    from tfopt.experiments.seedstats import group_stats, seeds_table

    rows = as_results([_seeded("none", 0, 88.0), _seeded("qat", 0, 87.0, 86.5)])
    (qat,) = [g for g in group_stats(rows) if g.recipe == "qat"]
    assert not qat.controlled and qat.control == "none"  # no control:1 row in this run
    assert qat.significant is None
    rec = [r for r in seeds_table(rows) if r["recipe"] == "qat"][0]
    assert rec["controlled_drop"] == "+1.00 (?)" and "(no control)" in rec["control"]


def test_report_has_the_across_seeds_section_and_error_bar_plots(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in SEEDED) + "\n")
    paths = report.write_report(str(path), tensorboard=False)
    text = open(paths["markdown"]).read()
    assert "## Across seeds" in text and "89.20 ± 0.14 (n=2)" in text and "(n.s.)" in text
    assert "not converged: s0: +2.50 pp in the last 3 epochs" in text
    assert os.path.getsize(paths["plot_accuracy_vs_sparsity"]) > 0
    assert os.path.exists(paths["csv_seeds"])
