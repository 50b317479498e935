"""The Ray executor on a real local 2-CPU Ray cluster (Ray's local_mode no longer exists)."""

import os

import pytest

ray = pytest.importorskip("ray")

from tfopt.core.results import TrialResult  # noqa: E402
from tfopt.experiments import ablation  # noqa: E402
from tfopt.experiments.config import ExperimentConfig  # noqa: E402
from tfopt.experiments.executors import RayExecutor, gpus_per_trial_for  # noqa: E402
from tfopt.experiments.store import read_results  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"TF_USE_LEGACY_KERAS": "1"}},
    )
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_runs_the_grid_in_dependency_order_one_task_per_trial(tmp_path, ray_cluster):
    def trial_fn(config, trial, dep_rows):
        # Runs in a Ray worker process: deps arrive finished, results go back to the driver.
        import os as _os
        import time as _time

        for d in (trial.parent, trial.baseline):
            if d and d != trial.id:
                assert dep_rows[d].ok
                assert dep_rows[d].timings["finished"] <= _time.time()
        if trial.id.endswith("prune_poly_0.5"):
            raise RuntimeError("simulated failure")
        return TrialResult(
            trial.id, trial.variant, str(trial.recipe), "ok", host=str(_os.getpid()),
            timings={"finished": _time.time()}, keras_accuracy_pct=50.0, params=1, flops=1,
        )

    c = ExperimentConfig(
        variants=("tiny_cnn", "vgg16"),
        recipes=("none", "prune_global:0.2,0.36", "prune_poly:0.5"),
        workdir=str(tmp_path / "wd"),
        executor="ray",
        train_epochs=1,
    )
    failed = ablation.run_grid(
        c, executor=RayExecutor(trial_fn=trial_fn, gpus_per_trial=0), write_report=False
    )
    assert gpus_per_trial_for(None, ray.cluster_resources().get("GPU", 0)) == 0  # CPU cluster
    rows = read_results(c.workdir)
    by = {r.trial_id: r for r in rows}
    assert len(rows) == 12 and failed == 2   # 8 trials + 4 matched controls
    assert by["vgg16__prune_poly_0.5"].status == "failed"
    assert "simulated failure" in by["vgg16__prune_poly_0.5"].error
    assert by["vgg16__prune_global_0.2_0.36"].status == "ok"
    assert all(by[t].host != str(os.getpid()) for t in by if by[t].ok)
    # resume through Ray: only the failed trials run again
    calls = []

    def ok_fn(config, trial, dep_rows):
        return TrialResult(
            trial.id, trial.variant, str(trial.recipe), "ok",
            keras_accuracy_pct=50.0, params=1, flops=1,
        )

    failed2 = ablation.run_grid(
        c, executor=RayExecutor(trial_fn=ok_fn, gpus_per_trial=0), write_report=False
    )
    assert failed2 == 0
    assert len(read_results(c.workdir)) == 14
    del calls


def test_ray_gpu_request_defaults_to_zero_without_gpus():
    # No cluster here (starting one costs seconds); the slow test above resolves it on one.
    ex = RayExecutor()
    assert ex.gpus_per_trial is None  # resolved at run time from the cluster
    assert gpus_per_trial_for(None, 0) == 0 and gpus_per_trial_for(None, 0.5) == 0
    assert gpus_per_trial_for(None, 2) == 1
    assert gpus_per_trial_for(0.5, 0) == 0.5  # an explicit request wins
