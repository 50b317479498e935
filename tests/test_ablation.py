"""The ablation driver: grid bookkeeping, results store, resume, refusal, failures (fast, with a
stand-in trial function), and a tiny real run end to end (slow) including kill -9 + resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tfopt.experiments import ablation
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.executors import LocalExecutor
from tfopt.core.results import TrialResult
from tfopt.experiments.store import ResultsStore, read_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(tmp_path, **kw):
    base = dict(
        variants=("tiny_cnn",),
        recipes=("none", "prune_global:0.2,0.36", "qat"),
        workdir=str(tmp_path / "wd"),
        train_epochs=1,
    )
    base.update(kw)
    return ExperimentConfig(**base)


def _fake_trial_fn(fail=(), calls=None):
    def fn(config, trial, dep_rows):
        assert isinstance(config, ExperimentConfig)  # the validated object itself
        if calls is not None:
            calls.append(trial.id)
        for d in (trial.parent, trial.baseline):
            if d and d != trial.id:
                assert dep_rows[d].ok  # deps are passed in, finished
        if trial.id in fail:
            return trial.failed("boom")
        return TrialResult(
            trial.id, trial.variant, str(trial.recipe), "ok",
            keras_accuracy_pct=90.0, params=100, flops=1000,
        )

    return fn


def test_grid_runs_every_trial_once_and_appends_one_line_each(tmp_path, capsys):
    calls = []
    c = _config(tmp_path)
    failed = ablation.run_grid(
        c, executor=LocalExecutor(_fake_trial_fn(calls=calls)), write_report=False
    )
    assert failed == 0
    assert calls == [
        "tiny_cnn__none",
        "tiny_cnn__prune_global_0.2",
        "tiny_cnn__prune_global_0.2_0.36",
        "tiny_cnn__qat",
        "tiny_cnn__control_1",  # matched controls: the longest recipe fine-tunes twice
        "tiny_cnn__control_2",
    ]
    rows = read_results(c.workdir)
    assert [r.trial_id for r in rows] == calls
    assert all(r.config_fingerprint == c.fingerprint() for r in rows)
    out = capsys.readouterr().out
    assert "[1/6] start  tiny_cnn__none" in out and "[6/6] ok" in out and "eta" in out
    cfgjson = json.load(open(os.path.join(c.workdir, "config.json")))
    assert cfgjson["fingerprint"] == c.fingerprint()


def test_rerun_skips_finished_trials_and_extends_the_grid(tmp_path):
    c = _config(tmp_path)
    ablation.run_grid(c, executor=LocalExecutor(_fake_trial_fn()), write_report=False)
    calls = []
    c2 = _config(tmp_path, recipes=("none", "prune_global:0.2,0.36", "qat", "prune_poly:0.5"))
    assert (
        ablation.run_grid(
            c2, executor=LocalExecutor(_fake_trial_fn(calls=calls)), write_report=False
        )
        == 0
    )
    assert calls == ["tiny_cnn__prune_poly_0.5"]  # its control (control:1) exists already
    assert len(read_results(c.workdir)) == 7


def test_adding_a_seed_resumes_and_runs_only_the_new_seeds_trials(tmp_path):
    c = _config(tmp_path, recipes=("none", "qat"))
    ablation.run_grid(c, executor=LocalExecutor(_fake_trial_fn()), write_report=False)
    calls = []
    c2 = _config(tmp_path, recipes=("none", "qat"), seeds=(0, 1))
    assert ablation.run_grid(
        c2, executor=LocalExecutor(_fake_trial_fn(calls=calls)), write_report=False) == 0
    assert calls == ["tiny_cnn__none__s1", "tiny_cnn__qat__s1", "tiny_cnn__control_1__s1"]
    assert len(read_results(c.workdir)) == 6  # one row per (trial, seed)


def test_failed_trial_is_recorded_blocks_its_children_and_is_retried(tmp_path):
    c = _config(tmp_path)
    n = ablation.run_grid(
        c,
        executor=LocalExecutor(_fake_trial_fn(fail={"tiny_cnn__prune_global_0.2"})),
        write_report=False,
    )
    rows = {r.trial_id: r for r in read_results(c.workdir)}
    assert n == 2  # the failing trial and the one built on it
    assert rows["tiny_cnn__prune_global_0.2"].error == "boom"
    assert "depends on failed" in rows["tiny_cnn__prune_global_0.2_0.36"].error
    assert rows["tiny_cnn__qat"].status == "ok"  # the run went on
    calls = []
    assert (
        ablation.run_grid(
            c, executor=LocalExecutor(_fake_trial_fn(calls=calls)), write_report=False
        )
        == 0
    )
    assert calls == ["tiny_cnn__prune_global_0.2", "tiny_cnn__prune_global_0.2_0.36"]


def test_a_raising_trial_function_becomes_a_failed_row(tmp_path):
    def boom(*_):
        raise RuntimeError("kaput")

    c = _config(tmp_path, recipes=("none",))
    assert ablation.run_grid(c, executor=LocalExecutor(boom), write_report=False) == 1
    (row,) = read_results(c.workdir)
    assert row.status == "failed" and "kaput" in row.error


def test_different_config_is_refused_unless_overwrite(tmp_path):
    c = _config(tmp_path)
    ablation.run_grid(c, executor=LocalExecutor(_fake_trial_fn()), write_report=False)
    with pytest.raises(ValueError, match=r"different config \(train_epochs: 1 -> 3\).*--overwrite"):
        ablation.run_grid(
            _config(tmp_path, train_epochs=3),
            executor=LocalExecutor(_fake_trial_fn()),
            write_report=False,
        )
    c3 = _config(tmp_path, train_epochs=3, overwrite=True)
    assert ablation.run_grid(c3, executor=LocalExecutor(_fake_trial_fn()), write_report=False) == 0
    assert len(read_results(c.workdir)) == 6  # fresh results
    archived = os.listdir(os.path.join(c.workdir, "archive"))
    assert len(archived) == 1


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    store = ResultsStore(str(tmp_path))
    store.append(TrialResult("a", "tiny_cnn", "none", "ok"))
    with open(store.path, "a") as f:
        f.write('{"trial_id": "b", "sta')  # a kill -9 mid-write
    assert [r.trial_id for r in store.rows()] == ["a"]
    store.append(TrialResult("c", "tiny_cnn", "none", "ok"))
    assert [r.trial_id for r in store.rows()] == ["a", "c"]
    assert set(store.finished()) == {"a", "c"}


def test_second_live_driver_is_refused(tmp_path):
    store = ResultsStore(str(tmp_path))
    with open(os.path.join(str(tmp_path), ".lock"), "w") as f:
        f.write(str(os.getppid()))  # a live process that is not us
    with pytest.raises(ValueError, match="in use by process"):
        store.lock()
    with open(os.path.join(str(tmp_path), ".lock"), "w") as f:
        f.write("999999999")  # stale lock from a killed driver
    store.lock()


# --------------------------------------------------------------------------------------------
# A real tiny run (slow): tiny_cnn on a Fashion-MNIST slice, end to end, then kill -9 + resume
# --------------------------------------------------------------------------------------------

TINY_FLAGS = """# tiny end-to-end run for tests
--variants=tiny_cnn
--recipes=none,prune_global:0.2,0.36,qat,ocnna:k=30
--dataset=fashion_mnist
--image_size=16
--to_rgb
--train_limit=512
--test_limit=128
--train_batch_size=64
--width_multiplier=0.5
--train_epochs=1
--finetune_epochs=1
--qat_epochs=1
--ocnna_images=64
--calibration_samples=32
--latency_runs=2
--convert_modes=int8
--verbose=0
"""


def _run_driver(flagfile, workdir, timeout=600):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tfopt.experiments.ablation",
            f"--flagfile={flagfile}",
            f"--workdir={workdir}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def _fashion_mnist_available():
    try:
        from tfopt.data import idx

        return idx.find_fashion_mnist() is not None
    except Exception:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST files not installed")
def test_tiny_real_run_end_to_end_and_resume_after_kill(tmp_path, run_cli):
    ff = tmp_path / "tiny.cfg"
    ff.write_text(TINY_FLAGS)
    wd = tmp_path / "wd"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    # Start, wait for the first finished trial, kill -9 mid-grid.
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfopt.experiments.ablation", f"--flagfile={ff}", f"--workdir={wd}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    results = wd / "results.jsonl"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and len(read_results(str(results))) >= 1:
            break
        time.sleep(0.5)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [r.trial_id for r in read_results(str(results))] if results.exists() else []
    res = _run_driver(ff, wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = read_results(str(results))
    ids = [r.trial_id for r in rows]
    expected = {
        "tiny_cnn__none",
        "tiny_cnn__prune_global_0.2",
        "tiny_cnn__prune_global_0.2_0.36",
        "tiny_cnn__qat",
        "tiny_cnn__ocnna_k_30",
        "tiny_cnn__control_1",  # matched controls of the 2-step series (and qat, ocnna)
        "tiny_cnn__control_2",
    }
    assert set(ids) == expected
    assert len(ids) == len(set(ids)), "a trial was repeated"
    assert ids[: len(before)] == before
    by = {r.trial_id: r for r in rows}
    base = by["tiny_cnn__none"]
    assert base.status == "ok" and 10 < base.keras_accuracy_pct <= 100
    assert base.int8.bytes > 1000 and base.micro.status == "ok"
    assert base.micro.arena_bytes > 0
    p36 = by["tiny_cnn__prune_global_0.2_0.36"]
    assert abs(p36.conv_sparsity - 0.36) < 0.01
    assert p36.nonzero_params < base.nonzero_params
    assert by["tiny_cnn__ocnna_k_30"].params < base.params
    assert by["tiny_cnn__prune_global_0.2_0.36"].control_trial == "tiny_cnn__control_2"
    assert by["tiny_cnn__control_2"].parent_trial == "tiny_cnn__control_1"
    assert "## Across seeds" in (wd / "report.md").read_text()
    for r in rows:
        assert r.versions["tensorflow"] and r.wall_time_s > 0
    assert os.path.exists(wd / "report.md")
    # Each .tflite written once (int8: only the firmware export); its manifest holds what the
    # row measured; models are saved as .keras (QAT: .h5, which tfmot can reload).
    exp = wd / "tflite_models" / "tiny_cnn__none"
    assert base.int8.path == str(exp / "tiny_cnn__none.tflite")
    assert not (wd / "trials" / "tiny_cnn__none" / "tiny_cnn__none.int8.tflite").exists()
    manifest = json.loads((exp / "tiny_cnn__none.json").read_text())
    assert manifest["accuracy"] == pytest.approx(base.int8.accuracy_pct / 100)
    assert manifest["arena_bytes"] == base.micro.arena_bytes
    assert (wd / "trials" / "tiny_cnn__none" / "model.keras").exists()
    assert (wd / "trials" / "tiny_cnn__qat" / "model.h5").exists()
    # The same command again (in-process: no trial runs, so no fresh TensorFlow import is
    # needed): nothing to do, nothing appended.
    res2 = run_cli(ablation.main, f"--flagfile={ff}", f"--workdir={wd}", cwd=REPO)
    assert res2.returncode == 0
    assert len(read_results(str(results))) == len(rows)
    assert "already done" in res2.stdout


def test_the_config_is_validated_once_not_per_trial(tmp_path, monkeypatch):
    from tfopt.experiments import config as cfg

    c = _config(tmp_path)
    calls = []
    monkeypatch.setattr(cfg, "check_dataset", lambda *a: calls.append(a))
    seen = []
    inner = _fake_trial_fn()

    def fn(config, trial, deps):
        seen.append(config)
        return inner(config, trial, deps)

    assert ablation.run_grid(c, executor=LocalExecutor(fn), write_report=False) == 0
    assert calls == [] and len(seen) == 6  # no trial rebuilt (re-validated) the config
    assert all(s is c for s in seen)  # the driver hands the validated object itself
