"""tfopt.stats on small synthetic numbers (the arithmetic is in the comments). TF-free."""

import math
import subprocess
import sys

import pytest

from tfopt import stats


def test_summarize_mean_sample_std_and_n():
    s = stats.summarize([90.0, 91.0, 92.0])
    # mean 91; deviations -1, 0, 1; ddof=1: (1 + 0 + 1) / (3 - 1) = 1 -> std 1
    assert (s.mean, s.std, s.n) == (91.0, pytest.approx(1.0), 3)
    assert s.text() == "91.00 ± 1.00 (n=3)"
    one = stats.summarize([88.5])
    assert (one.mean, one.std, one.n) == (88.5, None, 1) and one.text(1) == "88.5 (n=1)"
    with pytest.raises(ValueError, match="no values"):
        stats.summarize([])
    with pytest.raises(ValueError, match="not all finite"):
        stats.summarize([1.0, float("nan")])


def test_group_summaries_per_variant_and_recipe():
    rows = [{"variant": "v01", "recipe": "none", "seed": 0, "accuracy": 90.0},
            {"variant": "v01", "recipe": "none", "seed": 1, "accuracy": 92.0},
            {"variant": "v01", "recipe": "qat", "seed": 0, "accuracy": 89.0},
            {"variant": "v01", "recipe": "qat", "seed": 1, "accuracy": None}]   # failed trial
    groups = stats.group_summaries(rows, by=("variant", "recipe"), value="accuracy")
    # (90 + 92) / 2 = 91; std = sqrt(((-1)^2 + 1^2) / 1) = sqrt(2)
    assert groups[("v01", "none")] == stats.Summary(91.0, pytest.approx(math.sqrt(2)), 2)
    assert groups[("v01", "qat")] == stats.Summary(89.0, None, 1)


def test_a_difference_inside_the_combined_spread_is_not_significant():
    a, b = [90.0, 91.0, 92.0], [89.0, 89.5, 90.0]
    # means 91 and 89.5 -> diff 1.5; stds 1 and 0.5 -> spread sqrt(1 + 0.25) = 1.118 < 1.5
    c = stats.compare(a, b)
    assert c.diff == pytest.approx(1.5) and c.spread == pytest.approx(math.sqrt(1.25))
    assert c.significant is True and stats.indistinguishable(a, b) is False
    # means 91 and 90.5 -> diff 0.5 < spread 1.118: not significant, indistinguishable
    c = stats.compare(a, [90.0, 90.5, 91.0])
    assert c.diff == pytest.approx(0.5) and c.significant is False
    assert stats.indistinguishable(a, [90.0, 90.5, 91.0]) is True
    # exactly the spread is not larger than it: 91 vs 89 with stds 1 and 1 -> diff 2 vs 1.414
    # is significant; 91 vs 90 with stds 1, 0 -> diff 1 == spread 1 -> not significant
    assert stats.compare(a, [90.0, 90.0, 90.0]).significant is False
    # one seed on a side: no spread, significance unknown
    c = stats.compare(a, [80.0])
    assert (c.spread, c.significant) == (None, None) and stats.indistinguishable(a, [80.0]) is None


def test_matched_drop_pairs_seeds_when_they_match():
    control = {0: 90.0, 1: 92.0, 2: 91.0}
    compressed = {0: 89.0, 1: 90.0, 2: 91.0}
    d = stats.matched_drop(control, compressed)
    # per-seed drops 1, 2, 0 -> mean 1; deviations 0, 1, -1 -> std sqrt(2 / 2) = 1
    assert (d.mean, d.std, d.n, d.paired) == (pytest.approx(1.0), pytest.approx(1.0), 3, True)
    # unpaired the same numbers would have std sqrt(1^2 + 1^2) = 1.414: pairing removes the
    # seed-to-seed spread both trials share
    unpaired = stats.matched_drop(control, {0: 89.0, 1: 90.0, 5: 91.0})
    assert unpaired.paired is False and unpaired.n == 3
    assert unpaired.mean == pytest.approx(1.0) and unpaired.std == pytest.approx(math.sqrt(2))
    # a single seed each: the drop is exact for that seed, no spread
    single = stats.matched_drop({0: 90.0}, {0: 88.5})
    assert (single.mean, single.std, single.n, single.paired) == (1.5, None, 1, True)
    with pytest.raises(ValueError, match="expected at least one accuracy on each side"):
        stats.matched_drop({}, {0: 1.0})


def test_bounds_for_recommend():
    # 91 ± 1 -> lower bound 90; one seed -> the mean itself
    assert stats.lower_bound([90.0, 91.0, 92.0]) == pytest.approx(90.0)
    assert stats.lower_bound(stats.Summary(88.0, None, 1)) == 88.0
    # drop 1 ± 1 -> pessimistic drop 2 (so a 1 pp budget rejects it, a 2 pp budget accepts)
    d = stats.matched_drop({0: 90.0, 1: 92.0, 2: 91.0}, {0: 89.0, 1: 90.0, 2: 91.0})
    assert stats.drop_upper_bound(d) == pytest.approx(2.0)
    assert stats.drop_upper_bound(stats.Drop(0.4, None, 1, True)) == 0.4


def test_stats_does_not_import_tensorflow():
    code = "import sys, tfopt.stats; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "False"


def test_errorbar_plots_write_pngs(tmp_path):
    from tfopt import plots_stats
    points = [("vgg19_v01 pruned", 0.0, [91.2, 90.8]), ("vgg19_v01 pruned", 20.0, [91.0, 90.2]),
              ("vgg19_v01 pruned", 36.0, [90.9, 91.3]), ("vgg19_v01 pruned", 59.0, [90.4, 91.0]),
              ("vgg19_v01 qat", 0.0, [90.7])]
    path = plots_stats.accuracy_vs_sparsity(points, str(tmp_path / "plots" / "sparsity.png"),
                                            reference=("control", [91.0, 90.6]))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    sized = [("vgg19_v01", 180_000, [91.0, 90.6]), ("vgg19_v04", 60_000, [90.1, 89.5, 89.9])]
    path = plots_stats.accuracy_vs_bytes(sized, str(tmp_path / "bytes.png"))
    assert (tmp_path / "bytes.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no points"):
        plots_stats.errorbar_plot([], str(tmp_path / "x.png"), xlabel="x", ylabel="y")


def test_drop_significance_uses_the_drops_own_spread():
    # paired drops 1, 2, 0: mean 1, std 1 -> |1| > 1 is false: not significant
    d = stats.matched_drop({0: 90.0, 1: 92.0, 2: 91.0}, {0: 89.0, 1: 90.0, 2: 91.0})
    assert stats.drop_significant(d) is False
    # paired drops 2, 2.5, 3: mean 2.5, std 0.5 -> significant, although the two groups'
    # own spreads (std 1 each, combined 1.41) are large: pairing removes the shared seed effect
    d = stats.matched_drop({0: 90.0, 1: 91.0, 2: 92.0}, {0: 88.0, 1: 88.5, 2: 89.0})
    assert (d.mean, d.std) == (pytest.approx(2.5), pytest.approx(0.5))
    assert stats.drop_significant(d) is True
    assert stats.drop_significant(stats.Drop(3.0, None, 1, True)) is None
