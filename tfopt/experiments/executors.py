"""How the trials of a grid run: `local` (sequential, in-process; the default), `processes`
(N worker processes on this machine: `process_executor.py`) or `ray`.

Both executors walk the same dependency graph (a trial starts once the trials it builds on have
finished with status 'ok'; a trial whose dependency failed is recorded as failed without
running). Only the driver process writes results: a trial function returns its row and the
executor hands it to `on_finish`.

Ray (https://docs.ray.io, ray >= 2.40): one trial per Ray task, `num_gpus=1` per task when the
cluster has GPUs (Ray then sets CUDA_VISIBLE_DEVICES; TensorFlow is imported inside the task).
`--ray_address=auto` joins a running cluster (`ray start --head` on one machine, `ray start
--address=HEAD:6379` on the others; the workdir must be on storage every node sees). Without an
address a local cluster is started. `ray` is imported only in this module, only for executor=ray.
"""

from __future__ import annotations

import os
import socket
from typing import Callable

from tfopt.core.results import TrialResult, failure_message
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial

# (config, trial, finished dependency rows by trial id) -> the trial's row. The config arrives
# validated (built once by the driver); Ray pickles it without running its checks again.
TrialFn = Callable[[ExperimentConfig, Trial, dict], TrialResult]
OnStart = Callable[[Trial], None]
OnFinish = Callable[[Trial, TrialResult], None]


def default_trial_fn() -> TrialFn:
    """A real trial runner (imports TensorFlow when a trial runs); never raises."""
    from tfopt.experiments.runner import TrialRunner

    return TrialRunner().run_safe


class _Graph:
    """Bookkeeping shared by the executors: which trial may start, which can never start."""

    def __init__(self, trials: list[Trial], done: dict[str, TrialResult]):
        self.ok = {tid for tid, row in done.items() if row.ok}
        self.failed: set[str] = set()
        self.pending = [t for t in trials if t.id not in self.ok]
        self.order = {t.id: i for i, t in enumerate(trials)}
        self.rows = dict(done)

    def put_back(self, trials: list[Trial]) -> None:
        self.pending = sorted(self.pending + list(trials), key=lambda t: self.order[t.id])

    def take_ready(self) -> tuple[list[Trial], list[tuple[Trial, str]]]:
        ready, blocked, keep = [], [], []
        for t in self.pending:
            bad = next((d for d in t.deps if d in self.failed), None)
            if bad is not None:
                blocked.append((t, bad))
            elif all(d in self.ok for d in t.deps):
                ready.append(t)
            else:
                keep.append(t)
        self.pending = keep
        return ready, blocked

    def finish(self, trial: Trial, row: TrialResult) -> None:
        self.rows[trial.id] = row
        (self.ok if row.ok else self.failed).add(trial.id)

    def dep_rows(self, trial: Trial) -> dict:
        return {d: self.rows[d] for d in trial.deps}


class LocalExecutor:
    """Sequential, in-process, in dependency order (the default)."""

    name = "local"

    def __init__(self, trial_fn: TrialFn | None = None):
        self.trial_fn = trial_fn

    def run(self, trials: list[Trial], config: ExperimentConfig, done: dict[str, TrialResult],
            on_start: OnStart, on_finish: OnFinish) -> None:
        graph = _Graph(trials, done)
        trial_fn = self.trial_fn or default_trial_fn()
        while graph.pending:
            ready, blocked = graph.take_ready()
            for t, dep in blocked:
                _finish_blocked(graph, t, dep, on_finish)
            if not ready:
                if graph.pending and not blocked:
                    raise AssertionError(f"dependency cycle among {[t.id for t in graph.pending]}")
                continue
            t = ready[0]
            graph.put_back(ready[1:])
            on_start(t)
            try:
                row = trial_fn(config, t, graph.dep_rows(t))
            except Exception as err:  # a trial function must not take the grid down
                row = t.failed(failure_message(err))
            graph.finish(t, row)
            on_finish(t, row)


def probe_address(address: str, timeout_s: float = 3.0) -> None:
    """For a HOST:PORT (or ray://HOST:PORT) address, fail in seconds if nothing listens there
    (ray.init itself retries for about 20 s and ends in a long traceback)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return   # "auto" or a form ray resolves itself
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        raise ConnectionError(
            f"--ray_address={address}: nothing answers at {host}:{port} "
            f"({err.strerror or err}); start the head with `ray start --head` or drop "
            f"--ray_address for a local cluster") from None


def gpus_per_trial_for(requested: float | None, cluster_gpus: float) -> float:
    """GPUs each Ray task asks for: `requested` if given, else 1 on a cluster with a GPU, else 0."""
    if requested is not None:
        return requested
    return 1 if cluster_gpus >= 1 else 0


class RayExecutor:
    """One Ray task per trial; as many in flight as the cluster's resources allow."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        gpus_per_trial: float | None = None,
        cpus_per_trial: float = 1.0,
        trial_fn: TrialFn | None = None,
        init_kwargs: dict | None = None,
    ):
        self.address = address
        self.gpus_per_trial = gpus_per_trial
        self.cpus_per_trial = cpus_per_trial
        self.trial_fn = trial_fn
        self.init_kwargs = dict(init_kwargs or {})

    def _init(self):
        try:
            import ray
        except ImportError as err:
            raise ValueError(
                "executor=ray needs the ray package: pip install 'tfopt[ray]'"
            ) from err
        if not ray.is_initialized():
            env = {
                k: os.environ[k]
                for k in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH")
                if k in os.environ
            }
            env.setdefault("TF_USE_LEGACY_KERAS", "1")
            kwargs = {
                "include_dashboard": False,
                "log_to_driver": True,
                "runtime_env": {"env_vars": env},
                **self.init_kwargs,
            }
            if self.address:
                kwargs.pop("num_cpus", None)
                kwargs.pop("num_gpus", None)
                probe_address(self.address)
                try:
                    ray.init(address=self.address, **kwargs)
                except (ConnectionError, RuntimeError, ValueError) as err:
                    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                    raise ConnectionError(f"--ray_address={self.address}: {first}") from None
            else:
                ray.init(**kwargs)
        return ray

    def run(self, trials: list[Trial], config: ExperimentConfig, done: dict[str, TrialResult],
            on_start: OnStart, on_finish: OnFinish) -> None:
        graph = _Graph(trials, done)
        if not graph.pending:
            return
        ray = self._init()
        gpus = gpus_per_trial_for(self.gpus_per_trial, ray.cluster_resources().get("GPU", 0))
        remote = ray.remote(num_cpus=self.cpus_per_trial, num_gpus=gpus, max_retries=0)(
            self.trial_fn or default_trial_fn()
        )
        in_flight: dict = {}
        while graph.pending or in_flight:
            ready, blocked = graph.take_ready()
            for t, dep in blocked:
                _finish_blocked(graph, t, dep, on_finish)
            for t in ready:
                on_start(t)
                in_flight[remote.remote(config, t, graph.dep_rows(t))] = t
            if not in_flight:
                if graph.pending and not blocked:
                    raise AssertionError(f"dependency cycle among {[t.id for t in graph.pending]}")
                continue
            finished, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in finished:
                t = in_flight.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as err:  # worker crash (OOM, killed node): record, go on
                    cause = getattr(err, "cause", None) or err
                    lines = [ln for ln in str(cause).splitlines() if ln.strip()]
                    row = t.failed(
                        f"ray task failed: {type(cause).__name__}: {lines[-1] if lines else ''}"
                    )
                graph.finish(t, row)
                on_finish(t, row)


def _finish_blocked(graph: _Graph, trial: Trial, dep: str, on_finish: OnFinish) -> None:
    row = trial.failed(f"not run: trial {dep!r} it depends on failed")
    graph.finish(trial, row)
    on_finish(trial, row)


def make_executor(config):
    """The executor named by `config.executor` (local, processes, ray)."""
    if config.executor == "processes":
        from tfopt.experiments.process_executor import ProcessExecutor

        return ProcessExecutor(workers=config.workers)
    if config.executor == "ray":
        return RayExecutor(address=config.ray_address, gpus_per_trial=config.ray_gpus_per_trial)
    return LocalExecutor()
