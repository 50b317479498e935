"""`python -m tfopt.experiments.compare_pruning`: several runs' pruning series in one plot.

Rows come from the committed real-run fixture (a tiny_cnn run on Fashion-MNIST with a
two-step prune_global series), and from a copy of it relabelled as a CIFAR-10 resnet101_v13 run
so the paper's points join the plot.
"""

import json
import os
import subprocess
import sys

import pytest

from tfopt.experiments import compare_pruning as cp
from tfopt.experiments.report import load_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "data", "results_fixture.jsonl")


def _as_cifar_v13(tmp_path):
    out = tmp_path / "cifar" / "results.jsonl"
    out.parent.mkdir()
    with open(FIXTURE) as f, open(out, "w") as g:
        for line in f:
            row = json.loads(line)
            row.update(dataset="folder:/data/cifar10_holdout", variant="resnet101_v13")
            g.write(json.dumps(row) + "\n")
    return str(out.parent)


def test_parse_run_splits_at_the_first_equals_sign():
    assert cp.parse_run("lr 1e-3 plateau=runs/a") == ("lr 1e-3 plateau", "runs/a")
    assert cp.parse_run("a=b=c") == ("a", "b=c")
    for bad in ("runs/a", "=runs/a", "label="):
        with pytest.raises(ValueError, match="expected LABEL=WORKDIR"):
            cp.parse_run(bad)


def test_two_runs_give_two_labelled_series_and_a_png(tmp_path):
    rows = load_rows(FIXTURE)
    png = tmp_path / "cmp.png"
    points = cp.compare([("A", rows), ("B", rows)], str(png))
    assert png.stat().st_size > 1000
    by_series = {}
    for series, x, accs in points:
        by_series.setdefault(series, []).append((round(x, 1), accs))
    # baseline at 0 %, the two pruning steps at their measured sparsity; qat / ocnna left out
    assert sorted(by_series) == ["tiny_cnn A", "tiny_cnn B"]
    assert sorted(by_series["tiny_cnn A"]) == [(0.0, [19.5312]), (20.0, [19.5312]),
                                               (36.0, [18.75])]
    table = cp.points_table(points)
    assert "| tiny_cnn A | 36.0 | 18.75 (n=1) |" in table


def test_int8_mode_reads_each_trials_int8_file(tmp_path):
    points = cp.compare([("A", load_rows(FIXTURE))], str(tmp_path / "i.png"), mode="int8")
    assert sorted((round(x, 1), a) for _, x, a in points) == [
        (0.0, [19.5312]), (20.0, [19.5312]), (36.0, [19.5312])]


def test_cifar10_runs_get_the_papers_points_beside_them(tmp_path):
    rows = load_rows(_as_cifar_v13(tmp_path))
    points = cp.compare([("ours", rows)], str(tmp_path / "c.png"))
    paper = [p for p in points if "paper" in p[0]]
    assert paper and all(p[0].startswith("resnet101_v13 paper") for p in paper)
    assert (89.2 <= max(x for _, x, _ in paper) <= 89.3)   # the paper's last step, 80.02 %


def test_a_run_without_pruning_rows_is_refused_by_name(tmp_path):
    rows = [r for r in load_rows(FIXTURE) if r.recipe in ("qat", "ocnna:k=30")]
    with pytest.raises(ValueError, match="--run=solo: no pruning trial"):
        cp.compare([("solo", rows)], str(tmp_path / "x.png"))


@pytest.mark.parametrize("args, message", [
    (["--run=nolabel", "--out=x.png"], "--run=nolabel: expected LABEL=WORKDIR"),
    (["--run=a=/no/such/dir", "--out=x.png"], "does not exist"),
    (["--run=a=" + FIXTURE, "--out=x.svg"], "--out=x.svg: expected a .png path"),
    (["--run=a=" + FIXTURE, "--out=x.png", "--mode=f16"], "--mode=f16: expected one of"),
])
def test_cli_user_errors_are_one_line(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "tfopt.experiments.compare_pruning", *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_cli_prints_the_table_and_writes_the_png(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tfopt.experiments.compare_pruning",
                           f"--run=fixture={FIXTURE}", "--out=out.png"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| tiny_cnn fixture | 20.0 | 19.53 (n=1) |" in proc.stdout
    assert (tmp_path / "out.png").stat().st_size > 1000
