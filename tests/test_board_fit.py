"""Per-variant widths, the ablation's `--board` pre-pass (tfopt.experiments.board_fit), and the
claim behind it: fit's flash/arena of an untrained candidate equal the trained model's."""

import json
import os
import subprocess
import sys

import pytest

from tfopt.core.recipe import parse_recipe
from tfopt.experiments import ablation, board_fit, fit
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.executors import LocalExecutor
from tfopt.experiments.grid import Trial, plan
from tfopt.experiments.store import read_results
from tfopt.tflite import boards, micro

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_micro = pytest.mark.skipif(not micro.micro_available(),
                                 reason=str(micro.micro_unavailable_reason()))


def _config(tmp_path, **kw):
    base = dict(variants=("tiny_cnn", "vgg19_v04"), recipes=("none",),
                workdir=str(tmp_path / "wd"), train_epochs=1)
    return ExperimentConfig(**{**base, **kw})


def test_variant_widths_parse_validate_and_apply(tmp_path):
    c = _config(tmp_path, variant_widths=("vgg19_v04:0.25",), width_multiplier=0.5)
    assert c.variant_widths == {"vgg19_v04": 0.25}
    assert (c.width_of("vgg19_v04"), c.width_of("tiny_cnn")) == (0.25, 0.5)
    assert ExperimentConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    # unset: not in the fingerprint, so a workdir made before the flag existed still resumes
    assert "variant_widths" not in _config(tmp_path).trial_settings()
    assert c.fingerprint() != _config(tmp_path, width_multiplier=0.5).fingerprint()
    for bad, message in [(("vgg19_v04",), "is not VARIANT:WIDTH"),
                         (("vgg19_v04:0",), "expected 0 < width <= 8"),
                         (("vgg19_v04:half",), "expected 0 < width <= 8"),
                         (("resnet101_v13:0.5",), "is not in variants"),
                         (("vgg19_v4:0.5",), "unknown variant 'vgg19_v4'")]:
        with pytest.raises(ValueError, match=message):
            _config(tmp_path, variant_widths=bad)
    with pytest.raises(ValueError, match="board='nano' is unknown"):
        _config(tmp_path, board="nano")


def test_variant_widths_flag_is_one_line_on_bad_input(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tfopt.experiments.ablation", "--variants=tiny_cnn",
         "--recipes=none", f"--workdir={tmp_path}", "--variant_widths=tiny_cnn@0.5"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "variant_widths: 'tiny_cnn@0.5' is not VARIANT:WIDTH" in out.stderr


def test_skip_reason_names_the_board_and_the_figures():
    b = boards.budget("nano33ble", 0.2)  # arena 209,715 B = 204.8 KiB
    row = {"status": "ok", "flash_bytes": 100_000, "arena_bytes": 339_000}
    assert board_fit.skip_reason(b, row) == (
        "does not fit nano33ble: arena 331.1 KiB > 204.8 KiB")
    assert board_fit.skip_reason(b, {**row, "arena_bytes": 1000}) is None
    assert board_fit.skip_reason(b, {"status": "failed"}) is None  # the trial says for itself


def test_split_trials_keeps_what_a_kept_trial_depends_on(tmp_path):
    c = _config(tmp_path, recipes=("none", "kd"), kd_teacher="vgg19_v04",
                compress_variants=("tiny_cnn",))
    run, dropped = board_fit.split_trials(plan(c), {"vgg19_v04": "too big"})
    assert {t.id for t in run} == {"tiny_cnn__none", "tiny_cnn__kd", "vgg19_v04__none"}
    assert dropped == []  # the teacher's baseline is needed by tiny_cnn__kd
    run, dropped = board_fit.split_trials(plan(_config(tmp_path)), {"vgg19_v04": "too big"})
    assert [t.id for t in run] == ["tiny_cnn__none"] and [t.id for t in dropped] == [
        "vgg19_v04__none"]


def _fake(config, trial, deps):
    from tfopt.core.results import TrialResult

    return TrialResult(trial.id, trial.variant, trial.recipe.spec(), "ok",
                       width_multiplier=config.width_of(trial.variant),
                       keras_accuracy_pct=90.0, params=100, flops=1000)


@needs_micro
def test_board_prepass_skips_and_records_the_misfit(tmp_path):
    c = _config(tmp_path, dataset="synthetic:16x16x3:10:32", board="nano33ble",
                variant_widths=("tiny_cnn:0.25",))  # vgg19_v04 at width 1: 20 M weights
    lines = []
    failed = ablation.run_grid(c, executor=LocalExecutor(_fake), write_report=True,
                               out=_Lines(lines))
    assert failed == 0
    rows = {r.trial_id: r for r in read_results(os.path.join(c.workdir, "results.jsonl"))}
    assert rows["tiny_cnn__none"].ok and rows["tiny_cnn__none"].width_multiplier == 0.25
    skipped = rows["vgg19_v04__none"]
    assert skipped.status == "skipped" and skipped.width_multiplier == 1.0
    assert skipped.error.startswith("skipped: does not fit nano33ble: flash ")
    report = open(os.path.join(c.workdir, "report.md")).read()
    assert "1 failed" not in report and "1 skipped (do not fit the --board)" in report
    assert "## Skipped by the board pre-pass" in report and "vgg19_v04__none" in report
    cache = fit.read_cache(os.path.join(c.workdir, "board_fit.fit.jsonl"))
    assert len(cache) == 2
    # a resume re-measures nothing and records the skip once
    lines.clear()
    assert ablation.run_grid(c, executor=LocalExecutor(_fake), write_report=False,
                             out=_Lines(lines)) == 0
    assert sum("[cached]" in m for m in lines) == 2
    assert sum(r.status == "skipped" for r in read_results(
        os.path.join(c.workdir, "results.jsonl"))) == 1


class _Lines:
    def __init__(self, lines):
        self.lines = lines

    def write(self, text):
        self.lines += [t for t in text.splitlines() if t]

    def flush(self):
        pass


def _fashion_mnist_available():
    try:
        from tfopt.data import idx

        return idx.find_fashion_mnist() is not None
    except Exception:
        return False


TINY_BOARD_FLAGS = """--variants=tiny_cnn,vgg19_v04,resnet101_v13
--variant_widths=tiny_cnn:0.5,vgg19_v04:0.25
--recipes=none
--dataset=fashion_mnist
--image_size=16
--to_rgb
--train_limit=256
--val_fraction=0.25
--test_limit=64
--train_batch_size=64
--train_epochs=1
--calibration_samples=16
--latency_runs=3
--convert_modes=int8
--board=nano33ble
--board_reserve=0.9
--verbose=0
"""


@pytest.mark.slow
@needs_micro
@pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST files not installed")
def test_tiny_board_run_fit_figures_equal_the_trained_models(tmp_path):
    """A real run with --board: fit's untrained figures vs the trained, calibrated int8 model.

    The graph bytes (file with the tfopt JSON emptied) and the TFLM arena are equal exactly; the
    file bytes differ only by that JSON (labels, normalisation, decimal digits)."""
    flagfile = tmp_path / "run.cfg"
    flagfile.write_text(TINY_BOARD_FLAGS)
    wd = tmp_path / "wd"
    out = subprocess.run([sys.executable, "-m", "tfopt.experiments.ablation",
                          f"--flagfile={flagfile}", f"--workdir={wd}"],
                         capture_output=True, text=True, cwd=REPO, timeout=900)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    rows = {r.trial_id: r for r in read_results(str(wd / "results.jsonl"))}
    cache = {(r["variant"], r["width"]): r
             for r in fit.read_cache(str(wd / "board_fit.fit.jsonl")).values()}
    assert rows["resnet101_v13__none"].status == "skipped"  # 1 MB x 10 %: nothing that big fits
    kept = [t for t, r in rows.items() if r.ok]
    assert kept, out.stdout[-3000:]
    for tid in kept:
        r = rows[tid]
        pred = cache[(r.variant, r.width_multiplier)]
        assert r.micro.arena_bytes == pred["arena_bytes"], tid
        from tfopt.tflite.model_info import with_metadata

        content = open(r.int8.path, "rb").read()
        assert len(with_metadata(content, {})) == pred["graph_bytes"], tid
        # the trained file also carries its dataset's labels and normalisation in the tfopt
        # JSON (measured: +216 B for Fashion-MNIST); fit's models have none
        extra = r.int8.bytes - pred["flash_bytes"]
        assert 0 < extra <= 256, (tid, extra)
        app = r.int8.path[: -len(".tflite")] + ".mediapipe.tflite"
        assert os.path.exists(app), os.listdir(os.path.dirname(r.int8.path))
