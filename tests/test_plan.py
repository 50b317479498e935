"""`--dry_run` (tfopt/experiments/plan.py): the CIFAR-10 flagfiles parse and plan; tiny timing."""

import io
import os

import pytest

from tfopt.experiments import plan as dry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRUNE = ("prune_global:0.2,0.36,0.488,0.5904,0.67232,0.737856,0.7902848,0.83222784,"
         "0.865782272,0.8926258176")


def _config(tmp_path, name, *extra):
    from absl import flags

    from tfopt.experiments import flags as tf_flags

    fv = flags.FlagValues()
    for flag in tf_flags._FIELD_FLAGS:
        fv[flag] = tf_flags.FLAGS[flag]
    try:
        fv(["prog", f"--flagfile={os.path.join(REPO, 'experiments', name)}",
            f"--workdir={tmp_path / 'wd'}", *extra])
        return tf_flags.config_from_flags(fv)
    finally:
        fv.unparse_flags()


def _fake_speed(variant, config, data):
    return 100.0 if variant == "resnet8" else 10.0


@pytest.mark.parametrize("name,epochs,trials,fitted", [
    ("cifar10_cpu.cfg", 10, 30, 50_000 - 4_545),   # 3 seeds x 10; 1/11 held out (0.0909)
    ("cifar10_gpu.cfg", 150, 14, 50_000 - 4_545)])  # one seed; the default 1/11 held out
def test_cifar10_flagfiles_parse_and_plan(tmp_path, name, epochs, trials, fitted):
    config = _config(tmp_path, name)
    data = dry.data_shape(config)
    assert (data.examples, data.shape, data.classes) == (50_000, (32, 32, 3), 10)
    assert dry.fit_examples(data, config) == fitted
    rows = dry.make_plan(config, _fake_speed)
    controls = [r for r in rows if r.step == "control"]   # matched controls (issue 14)
    rows = [r for r in rows if r.step != "control"]
    assert len(rows) == trials and controls
    assert "resnet8" in config.variants
    for r in rows:
        want = epochs if r.step == "none" else config.qat_epochs
        images = fitted if r.step == "none" else config.finetune_examples(fitted)
        assert r.epochs == want, r.trial.id
        assert r.seconds == pytest.approx(want * images / _fake_speed(r.trial.variant, 0, 0))
    for r in controls:   # control:1 = one more fine-tuning fit of the baseline
        assert r.epochs == config.finetune_epochs > 0, r.trial.id
        assert r.seconds == pytest.approx(
            r.epochs * config.finetune_examples(fitted) / _fake_speed(r.trial.variant, 0, 0))
    out = io.StringIO()
    total = dry.print_plan(config, _fake_speed, out=out)
    assert total == pytest.approx(sum(r.seconds for r in rows + controls))
    assert "| 1 | " in out.getvalue() and "estimated training time" in out.getvalue()
    assert f"({fitted:,} fitted per epoch, {50_000 - fitted:,} held out for validation)" in out.getvalue()


def test_cpu_flagfile_uses_seeds_validation_and_early_stopping(tmp_path):
    config = _config(tmp_path, "cifar10_cpu.cfg")
    assert config.seeds == (0, 1, 2)
    assert config.val_fraction == pytest.approx(1 / 11, abs=1e-3)
    assert config.train_patience == 3
    text = open(os.path.join(REPO, "experiments", "cifar10_cpu.cfg"), encoding="utf-8").read()
    assert "TODO" not in text


def test_pruning_step_plans_the_series_on_v13_only(tmp_path):
    config = _config(tmp_path, "cifar10_cpu.cfg", "--compress_variants=resnet101_v13",
                     f"--recipes={PRUNE}", "--train_limit=1000")
    rows = dry.make_plan(config, _fake_speed)
    prune = [r for r in rows if r.step == "prune_global"]
    assert len(prune) == 3 * 10 and {r.trial.variant for r in prune} == {"resnet101_v13"}
    fitted = 1000 - 91   # --train_limit=1000 less its 1/11 validation part
    assert all(r.epochs == 1 and r.seconds == pytest.approx(fitted / 10.0) for r in prune)


def test_folder_dataset_is_sized_without_loading(tmp_path):
    from PIL import Image

    for part, n in (("train", 3), ("test", 1)):
        for cls in ("a", "b"):
            os.makedirs(tmp_path / "d" / part / cls)
            for i in range(n):
                Image.new("RGB", (6, 5)).save(tmp_path / "d" / part / cls / f"{i}.png")
    config = _config(tmp_path, "cifar10_cpu.cfg", f"--dataset=folder:{tmp_path / 'd'}")
    assert dry.data_shape(config) == dry.DataShape(6, (5, 6, 3), 2, 6)
    # folder: the validation part comes out of the whole train/, the limit caps the rest
    data = dry.DataShape(16_500, (32, 32, 3), 10, 45_000)
    assert dry.fit_examples(data, config) == 16_500
    assert dry.fit_examples(dry.DataShape(45_000, (32, 32, 3), 10, 45_000), config) == 40_910


def test_measure_and_cli_dry_run_on_a_tiny_model(tmp_path, run_cli):
    from tfopt.experiments import ablation

    args = ["--variants=tiny_cnn", "--recipes=none", "--recipes=qat",
            "--dataset=synthetic:8x8x3:3:64", "--train_epochs=2", "--train_batch_size=4",
            "--width_multiplier=0.25", f"--workdir={tmp_path / 'wd'}", "--dry_run"]
    done = run_cli(ablation.main, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("dry run: 3 trials; 64 train images 8x8x3 (58 fitted per epoch, 6 held out for validation), "
            "3 classes") in done.stdout  # + its control
    assert "| 1 | tiny_cnn__none | none | 2 |" in done.stdout
    assert not os.path.exists(tmp_path / "wd" / "results.jsonl")


def test_finetune_limit_shortens_the_planned_fine_tuning_not_the_baseline(tmp_path):
    config = _config(tmp_path, "cifar10_cpu.cfg", "--finetune_limit=1000")
    data = dry.data_shape(config)
    fitted = dry.fit_examples(data, config)
    for r in dry.make_plan(config, _fake_speed):
        images = fitted if r.step == "none" else 1024  # 8 batches of 128
        assert r.seconds == pytest.approx(
            r.epochs * images / _fake_speed(r.trial.variant, 0, 0)), r.trial.id
