"""tfopt.core.paper_figures (the paper's CIFAR-10 accuracies) and the report plot that draws the
paper's pruning points beside ours on CIFAR-10 runs only. Rows are hand-made (synthetic)."""

import json
import os

import pytest

from tfopt.core import paper_figures as paper
from tfopt.core.results import TrialResult
from tfopt.experiments import seedstats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_headline_figures():
    assert paper.paper_accuracy("resnet101_v01") == 94.33
    assert paper.paper_accuracy("resnet101_v13") == 90.82
    assert paper.paper_accuracy("resnet8") == 85.0            # MLPerf Tiny target
    assert paper.paper_accuracy("vgg19_v04") is None          # the paper's VGG table is invalid
    curve = paper.pruning_curve("resnet101_v13")
    assert curve[0] == (0.0, 90.82) and curve[-1] == (89.262, 80.02) and len(curve) == 11
    assert paper.pruning_curve("vgg19_v01") == ()


@pytest.mark.parametrize("variant", sorted(paper.PRUNING_CIFAR10))
def test_pruning_points_are_the_20_percent_series(variant):
    """Each point's sparsity is 1 - 0.8**k for some step k; the dense point is the variant's
    baseline figure."""
    curve = paper.pruning_curve(variant)
    assert curve[0][1] == paper.paper_accuracy(variant)
    for x, acc in curve:
        k = min(range(25), key=lambda k: abs(100 * (1 - 0.8**k) - x))
        assert abs(100 * (1 - 0.8**k) - x) < 0.1, (variant, x)
        assert 50 < acc < 100


def test_pruning_points_match_the_reference_counts_file():
    """The series has a point for every step tests/data/reference_figures.json counts."""
    with open(os.path.join(REPO, "tests", "data", "reference_figures.json")) as f:
        ref = json.load(f)["pruning"]
    for variant in ("resnet101_v11", "resnet101_v13"):
        steps = ref[variant]["10"]["non_zeroed_by_step"]
        assert len(paper.pruning_curve(variant)) == len(steps)


@pytest.mark.parametrize("dataset,classes,want", [
    ("cifar10", 10, True), ("folder:/tmp/cifar10_holdout", 10, True),
    ("folder:/tmp/cifar10_holdout/", None, True), ("folder:/tmp/cifar100", 100, False),
    ("folder:/tmp/cifar10_holdout", 5, False), ("folder:/data/pets", 10, False),
    ("fashion_mnist", 10, False), ("cifar100", 100, False), (None, 10, False)])
def test_is_cifar10(dataset, classes, want):
    assert paper.is_cifar10(dataset, classes) is want


def _row(tid, recipe, acc, sparsity, dataset):
    return TrialResult(tid, "resnet101_v13", recipe, "ok", keras_accuracy_pct=acc,
                       conv_sparsity=sparsity, dataset=dataset, num_classes=10, seed=0)


def test_paper_points_beside_ours_on_cifar10_only(tmp_path):
    rows = [_row("b", "none", 40.0, 0.0, "folder:/tmp/cifar10_holdout"),
            _row("p", "prune_global:0.2", 39.0, 0.2, "folder:/tmp/cifar10_holdout")]
    points, _ = seedstats.sparsity_points(rows)
    extra = seedstats.paper_sparsity_points(rows, points)
    label = seedstats.PAPER_LABEL.format(variant="resnet101_v13")
    assert [(x, v) for lab, x, v in extra if lab == label][-1] == (89.262, [80.02])
    assert len(extra) == 11
    fm = [_row(r.trial_id, r.recipe, r.keras_accuracy_pct, r.conv_sparsity, "fashion_mnist")
          for r in rows]
    assert seedstats.paper_sparsity_points(fm, seedstats.sparsity_points(fm)[0]) == []


def test_baseline_only_cifar10_run_still_plots_against_the_paper(tmp_path):
    rows = [_row("b", "none", 40.0, 0.0, "cifar10")]
    paths = seedstats.write_seed_plots(rows, str(tmp_path))
    assert os.path.getsize(paths["accuracy_vs_sparsity"]) > 1000
    assert "accuracy_vs_sparsity" not in seedstats.write_seed_plots(
        [_row("b", "none", 40.0, 0.0, "fashion_mnist")], str(tmp_path / "fm"))
