"""`python -m tfopt.experiments.recommend`: the smallest model for an accepted accuracy drop.

Rows here are hand-made to pin the selection rules (they are labelled synthetic; the committed
real-run fixture is exercised in test_report.py and test_notebook.py).
"""

import json
import os
import subprocess
import sys

import pytest

from tfopt.experiments.recommend import candidates, format_recommendation, recommend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "data", "results_fixture.jsonl")


def _row(
    tid,
    acc,
    params,
    int8_bytes,
    int8_acc,
    *,
    f32_bytes=None,
    arena=None,
    lat=None,
    status="ok",
    variant="big",
):
    tfl = {
        "int8": {
            "status": "ok",
            "bytes": int8_bytes,
            "gzip_bytes": int8_bytes // 2,
            "accuracy_pct": int8_acc,
            "latency_1t_median_ms": lat,
            "path": f"/w/{tid}.int8.tflite",
        }
    }
    if f32_bytes:
        tfl["float32"] = {
            "status": "ok",
            "bytes": f32_bytes,
            "accuracy_pct": acc,
            "path": f"/w/{tid}.float32.tflite",
        }
    return {
        "trial_id": tid,
        "variant": variant,
        "recipe": tid.split("__")[1],
        "status": status,
        "keras_accuracy_pct": acc,
        "params": params,
        "nonzero_params": params,
        "flops": params * 10,
        "reference_variant": "big",
        "tflite": tfl,
        "micro": {"status": "ok" if arena else "skipped", "arena_bytes": arena},
    }


ROWS = [  # synthetic
    _row("big__none", 90.0, 1000, 4000, 89.8, f32_bytes=16000, arena=9000, lat=2.0),
    _row("big__prune", 89.5, 600, 3000, 89.0, arena=8000, lat=1.9),
    _row("small__none", 88.0, 200, 1500, 87.5, arena=4000, lat=0.5, variant="small"),
    _row("tiny__none", 80.0, 50, 700, 79.0, arena=2000, lat=0.2, variant="tiny"),
    _row("broken__none", 99.0, 10, 10, 99.0, status="failed", variant="broken"),
]


@pytest.mark.parametrize(
    "drop,expect",
    [(0.5, "big__none"), (1.0, "big__prune"), (3.0, "small__none"), (11.0, "tiny__none")],
)
def test_smallest_flash_within_the_accepted_drop(drop, expect):
    rec = recommend(ROWS, max_accuracy_drop=drop, metric="bytes")
    assert rec.best.trial_id == expect and rec.best.mode == "int8"
    assert rec.best.drop_pp <= drop
    assert rec.reference == "big" and rec.reference_accuracy_pct == 90.0


def test_drop_uses_the_tflite_accuracy_against_the_reference_keras_baseline():
    cands = {(c.trial_id, c.mode): c for c in candidates(ROWS)[0]}
    assert cands[("big__prune", "int8")].drop_pp == pytest.approx(1.0)
    assert cands[("big__none", "float32")].drop_pp == pytest.approx(0.0)
    assert not any(t == "broken__none" for t, _ in cands)  # failed trials never qualify


def test_flash_and_arena_budgets_and_metrics():
    assert recommend(ROWS, max_accuracy_drop=11, max_flash_kb=1.0).best.trial_id == "tiny__none"
    rec = recommend(ROWS, max_accuracy_drop=5, max_flash_kb=1.0)
    assert rec.best is None and "flash > 1 KiB" in rec.reason
    rec = recommend(ROWS, max_accuracy_drop=1.0, max_arena_kb=8.5)
    assert rec.best.trial_id == "big__prune"
    rec = recommend(ROWS, max_accuracy_drop=3, metric="latency")
    assert rec.best.trial_id == "small__none"
    rec = recommend(ROWS, max_accuracy_drop=0.2, metric="params")
    assert rec.best.trial_id == "big__none" and rec.best.mode == "float32"  # int8 drops 0.2+
    assert "smallest params" in rec.reason


def test_bad_metric_is_one_line_with_close_match():
    with pytest.raises(ValueError, match=r"metric='byte' is unknown \(did you mean bytes"):
        recommend(ROWS, max_accuracy_drop=1, metric="byte")


def test_cli_answers_and_prints_the_tflite_path(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfopt.experiments.recommend",
            f"--results={tmp_path}",
            "--max_accuracy_drop=1",
            "--metric=bytes",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "recommended: big__prune [int8]" in out.stdout
    assert "tflite: /w/big__prune.int8.tflite" in out.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfopt.experiments.recommend",
            f"--results={tmp_path / 'nope'}",
            "--max_accuracy_drop=1",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not os.path.exists(FIXTURE), reason="fixture not generated yet")
def test_answer_on_the_real_fixture_is_consistent_with_its_table():
    from tfopt.experiments.store import read_results

    rows = read_results(FIXTURE)
    for drop in (0.5, 1, 2, 5):
        rec = recommend(rows, max_accuracy_drop=drop, metric="bytes")
        if rec.best is None:
            continue
        cands, _, _ = candidates(rows)
        within = [c for c in cands if c.drop_pp <= drop]
        assert rec.best.bytes == min(c.bytes for c in within)


# ---- seeds and matched controls (issue #14) -------------------------------------------------


def _seeded(recipe, seed, acc, int8_bytes, int8_acc, variant="big"):
    r = _row(f"{variant}__{recipe}", acc, 1000, int8_bytes, int8_acc, variant=variant)
    r["recipe"], r["seed"] = recipe, seed
    r["trial_id"] += f"__s{seed}" if seed else ""
    return r


SEEDED = [  # synthetic, 2 seeds
    _seeded("none", 0, 88.0, 4000, 87.9), _seeded("none", 1, 88.4, 4000, 88.3),
    _seeded("control:1", 0, 89.0, 4000, 88.9), _seeded("control:1", 1, 89.4, 4000, 89.3),
    # pruned: gains over the baseline; its int8 vs the control's float: drop 0.5 ± 0.14
    _seeded("prune_global:0.5", 0, 88.7, 2500, 88.6), _seeded("prune_global:0.5", 1, 88.9,
                                                              2500, 88.8),
    # qat: controlled drop 0.8 ± 0.57 -> upper bound 1.37 > 1 pp, although the mean is 0.8
    _seeded("qat", 0, 88.6, 1000, 88.6), _seeded("qat", 1, 88.2, 1000, 88.2),
]


def test_accepts_on_the_controlled_drop_upper_bound_and_answers_the_lower_bound():
    rec = recommend(SEEDED, max_accuracy_drop=1.0, metric="bytes")
    b = rec.best
    assert b.recipe == "prune_global:0.5" and b.n == 2 and b.controlled and b.control == "control:1"
    assert b.drop_pp == pytest.approx(0.5) and b.drop_std_pp == pytest.approx(0.1414, abs=1e-3)
    assert b.bound == pytest.approx(0.5 + 0.1414, abs=1e-3)
    assert b.accuracy_lower_pct == pytest.approx(88.7 - 0.1414, abs=1e-3)
    assert "accuracy drop (mean + std) > 1 pp" in rec.rejected  # qat: mean 0.8 + std 0.57
    text = format_recommendation(rec)
    assert ">= 88.56% (mean − std, n=2" in text and "matched control control:1" in text
    assert all("control" not in c.recipe for c in candidates(SEEDED)[0])  # instruments only
    loose = recommend(SEEDED, max_accuracy_drop=2.0, metric="bytes")
    assert loose.best.recipe == "qat" and loose.runner_up.recipe == "prune_global:0.5"
    assert loose.indistinguishable is True  # 88.4 ± 0.28 vs 88.7 ± 0.14: 0.3 <= 0.32
    assert "indistinguishable from the recommended model" in format_recommendation(loose)


def test_one_seed_without_controls_keeps_the_reference_drop():
    rec = recommend(ROWS, max_accuracy_drop=1.0, metric="bytes")
    assert rec.best.n == 1 and not rec.best.controlled and rec.best.bound == rec.best.drop_pp
