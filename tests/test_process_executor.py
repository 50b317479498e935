"""The `processes` executor: trials in spawned worker processes, in dependency order, with a
stand-in trial function (module level: workers unpickle it)."""

import os
import time

import pytest

from tfopt.core.results import TrialResult
from tfopt.experiments import ablation
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.executors import make_executor
from tfopt.experiments.grid import plan
from tfopt.experiments.process_executor import (
    ProcessExecutor,
    chain_heights,
    epochs_cost,
    threads_per_worker,
)
from tfopt.experiments.store import read_results


def _config(tmp_path, **kw):
    base = dict(variants=("tiny_cnn",), recipes=("none", "prune_global:0.2,0.36", "qat"),
                workdir=str(tmp_path / "wd"), train_epochs=1, seeds=(0, 1),
                executor="processes")
    base.update(kw)
    return ExperimentConfig(**base)


def fake_trial(config, trial, dep_rows):
    """Runs in a worker: deps arrive finished; reports its pid and thread setting."""
    for d in trial.deps:
        assert dep_rows[d].ok and dep_rows[d].timings["end"] <= time.time()
    if trial.id == "tiny_cnn__qat__s1":
        return trial.failed("boom")
    if trial.id == "tiny_cnn__control_1":
        raise RuntimeError("raised in a worker")
    start = time.time()
    if trial.parent is None:  # the two baselines wait for each other: they must run at once
        mark = os.path.join(config.workdir, "started_")
        open(mark + trial.id, "w").close()
        other = "tiny_cnn__none__s1" if trial.seed == 0 else "tiny_cnn__none"
        deadline = time.time() + 60
        while not os.path.exists(mark + other):
            if time.time() > deadline:
                return trial.failed(f"{other} did not start while {trial.id} ran")
            time.sleep(0.05)
    return TrialResult(
        trial.id, trial.variant, str(trial.recipe), "ok", keras_accuracy_pct=90.0, params=1,
        flops=1, host=f"{os.getpid()}:{os.environ['TF_NUM_INTRAOP_THREADS']}",
        timings={"start": start, "end": time.time()},
    )


def dying_trial(config, trial, dep_rows):
    if trial.id == "tiny_cnn__none":
        os._exit(3)  # the worker dies without a word
    return TrialResult(trial.id, trial.variant, str(trial.recipe), "ok",
                       keras_accuracy_pct=90.0, params=1, flops=1)


def test_processes_run_trials_two_at_a_time_in_workers_in_dependency_order(tmp_path):
    c = _config(tmp_path)
    failed = ablation.run_grid(
        c, executor=ProcessExecutor(workers=2, trial_fn=fake_trial, threads=1),
        write_report=False,
    )
    by = {r.trial_id: r for r in read_results(c.workdir)}
    assert len(by) == 12  # (none, prune x2, qat, control x2) x 2 seeds
    assert failed == 3  # qat s1 failed, control_1 s0 raised, so control_2 s0 never ran
    assert by["tiny_cnn__qat__s1"].error == "boom"
    assert "raised in a worker" in by["tiny_cnn__control_1"].error
    assert "control_1" in by["tiny_cnn__control_2"].error
    ok = [r for r in by.values() if r.ok]
    assert {r.host.split(":")[0] for r in ok} - {str(os.getpid())} == {
        r.host.split(":")[0] for r in ok}  # never in the driver
    assert len({r.host for r in ok}) == 2 and all(r.host.endswith(":1") for r in ok)
    for r in ok:  # every dependency had ended before its trial started
        for d in (r.parent_trial, r.baseline_trial):
            if d and d != r.trial_id:
                assert by[d].timings["end"] <= r.timings["start"]
    assert by["tiny_cnn__none"].ok and by["tiny_cnn__none__s1"].ok  # they ran at once


def test_a_dead_worker_fails_its_trial_and_the_grid_goes_on(tmp_path):
    c = _config(tmp_path, seeds=(0,), recipes=("none",), variants=("tiny_cnn", "vgg16"))
    failed = ablation.run_grid(c, executor=ProcessExecutor(workers=2, trial_fn=dying_trial),
                               write_report=False)
    by = {r.trial_id: r for r in read_results(c.workdir)}
    assert "worker process died" in by["tiny_cnn__none"].error
    assert failed >= 1 and set(by) == {"tiny_cnn__none", "vgg16__none"}


def test_longest_chains_first_and_threads_split_between_workers(tmp_path):
    trials = plan(_config(tmp_path, seeds=(0,)))
    h = chain_heights(trials)
    assert h["tiny_cnn__none"] == 3 and h["tiny_cnn__prune_global_0.2"] == 2
    assert h["tiny_cnn__qat"] == 1 and h["tiny_cnn__control_2"] == 1
    c = _config(tmp_path, seeds=(0,), train_epochs=10, finetune_epochs=2, qat_epochs=3,
                variants=("tiny_cnn", "vgg16"), compress_variants=("tiny_cnn",))
    h = chain_heights(plan(c), epochs_cost(c))  # in epochs: the long baselines first
    assert h["tiny_cnn__none"] == 10 + 2 + 2 and h["vgg16__none"] == 10
    assert h["tiny_cnn__qat"] == 3 and h["tiny_cnn__prune_global_0.2"] == 4
    assert threads_per_worker(2, cores=2) == 1 and threads_per_worker(2, cores=16) == 8
    assert threads_per_worker(4, cores=2) == 1
    assert isinstance(make_executor(_config(tmp_path, workers=3)), ProcessExecutor)
    assert make_executor(_config(tmp_path, workers=3)).workers == 3
    with pytest.raises(ValueError, match="workers=0"):
        _config(tmp_path, workers=0)


def test_an_orphaned_worker_exits_when_its_driver_is_killed(tmp_path):
    """kill -9 of the driver: its worker processes end too (a resumed run must not race them)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "driver.py"
    script.write_text(
        "import os, sys, time\n"
        "from tfopt.experiments import process_executor as pe\n"
        "if __name__ == '__main__':\n"
        "    pool = pe.ProcessExecutor(workers=1, trial_fn=os.getpid)._pool()\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(60)\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    drv = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                           text=True, env={**os.environ, "PYTHONPATH": repo})
    worker = int(drv.stdout.readline())
    os.kill(drv.pid, signal.SIGKILL)
    drv.wait()
    for _ in range(50):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"worker {worker} still alive 5 s after its driver was killed")


def test_idle_wall_replay_of_the_benchmark(tmp_path):
    """benchmarks/ablation_idle_wall.py: the schedule replayed with per-trial seconds."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "benchmarks", "ablation_idle_wall.py")
    spec = importlib.util.spec_from_file_location("ablation_idle_wall", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    c = _config(tmp_path, seeds=(0,), recipes=("none", "qat"), finetune_epochs=1)
    trials = plan(c)  # none -> qat, none -> control_1
    secs = {"tiny_cnn__none": 10.0, "tiny_cnn__qat": 3.0, "tiny_cnn__control_1": 2.0}
    h = chain_heights(trials, epochs_cost(c))
    assert mod.replay(trials, secs, h, workers=2) == 13.0  # qat beside control after none
    assert mod.replay(trials, secs, h, workers=1) == 15.0
