"""The `processes` executor: independent trials in N worker processes on one machine.

`--executor=processes --workers=N` (default 2). Each worker is a spawned Python process that
lives for the whole grid and holds one `TrialRunner` (so its data cache is reused across the
trials it runs); the driver alone decides which trial may start (the dependency graph of
`executors._Graph`) and alone writes results. TensorFlow's thread pools in a worker are sized to
cores // N (TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS, OMP_NUM_THREADS, set before the
worker imports TensorFlow), so N workers do not oversubscribe the cores.

Order: among the ready trials, the one heading the longest chain of work still waiting on it
goes first (work in epochs: a baseline costs `train_epochs`, any other trial its fine-tuning
cap), ties in plan order: the baselines first, then the pruning and control series, so the last
minutes are not one worker finishing a long series while the other idles.
A worker that dies (killed, out of memory) fails the trials it had in flight and is replaced;
a worker whose driver is gone exits within a second (so a resumed run never races an orphan).
Latency figures measured while another worker trains are noisier than with `local`.
"""

from __future__ import annotations

import os
import time
from typing import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from tfopt.core.results import failure_message
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.executors import (
    OnFinish,
    OnStart,
    TrialFn,
    _finish_blocked,
    _Graph,
)
from tfopt.experiments.grid import Trial

_THREAD_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
_worker_fn: TrialFn | None = None  # the trial function of this worker process


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """CPU threads each of `workers` processes may use: cores // workers, at least 1."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def epochs_cost(config: ExperimentConfig) -> Callable[[Trial], int]:
    """A trial's expected work in epochs: `train_epochs` for a trial trained from scratch,
    else its fine-tuning cap (`qat_epochs` for QAT), at least 1."""
    def cost(t: Trial) -> int:
        if t.parent is None:
            return max(1, config.train_epochs)
        last = t.recipe.last.kind
        return max(1, config.qat_epochs if last == "qat" else config.finetune_epochs)

    return cost


def chain_heights(trials: list[Trial], cost: Callable[[Trial], float] = lambda t: 1
                  ) -> dict[str, float]:
    """Trial id -> its cost plus the costliest chain of trials (of `trials`) depending on it."""
    children: dict[str, list[str]] = {t.id: [] for t in trials}
    for t in trials:
        for d in t.deps:
            children.setdefault(d, []).append(t.id)
    heights: dict[str, float] = {}
    for t in reversed(trials):  # plan order is a dependency order: children come later
        heights[t.id] = cost(t) + max((heights.get(c, 0) for c in children[t.id]), default=0)
    return heights


def _exit_with_parent(poll_s: float = 1.0) -> None:
    """A daemon thread that ends this worker when the driver is gone (killed, kill -9): an
    orphan must not go on writing a trial folder that a resumed run is rewriting."""
    import threading

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-driver", daemon=True).start()


def _init_worker(threads: int, trial_fn: TrialFn | None) -> None:
    """Worker start-up: size TensorFlow's thread pools (before it is imported), keep one
    trial function (a real `TrialRunner` unless a test passes its own), die with the driver."""
    global _worker_fn
    _exit_with_parent()
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if trial_fn is None:
        from tfopt.experiments.runner import TrialRunner

        trial_fn = TrialRunner().run_safe
    _worker_fn = trial_fn


def _run_in_worker(config: ExperimentConfig, trial: Trial, deps: dict):
    return _worker_fn(config, trial, deps)


class ProcessExecutor:
    """Up to `workers` trials at once, each in a long-lived worker process."""

    name = "processes"

    def __init__(self, workers: int = 2, trial_fn: TrialFn | None = None,
                 threads: int | None = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r}; expected an integer >= 1")
        self.workers = workers
        self.trial_fn = trial_fn  # must be picklable (a module-level function): workers spawn
        self.threads = threads or threads_per_worker(workers)

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),  # never fork a TensorFlow process
            initializer=_init_worker,
            initargs=(self.threads, self.trial_fn),
        )

    def run(self, trials: list[Trial], config: ExperimentConfig, done: dict,
            on_start: OnStart, on_finish: OnFinish) -> None:
        graph = _Graph(trials, done)
        if not graph.pending:
            return
        height = chain_heights(trials, epochs_cost(config))
        pool = self._pool()
        in_flight: dict = {}
        try:
            while graph.pending or in_flight:
                ready, blocked = graph.take_ready()
                for t, dep in blocked:
                    _finish_blocked(graph, t, dep, on_finish)
                ready.sort(key=lambda t: (-height[t.id], graph.order[t.id]))
                free = self.workers - len(in_flight)
                graph.put_back(ready[free:])
                for t in ready[:free]:
                    on_start(t)
                    in_flight[pool.submit(_run_in_worker, config, t, graph.dep_rows(t))] = t
                if not in_flight:
                    if graph.pending and not blocked:
                        raise AssertionError(
                            f"dependency cycle among {[t.id for t in graph.pending]}")
                    continue
                finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                if self._collect(finished, in_flight, graph, on_finish):
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = self._pool()  # a dead worker breaks the pool: start a fresh one
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _collect(finished, in_flight: dict, graph: _Graph, on_finish: OnFinish) -> bool:
        """Hand the finished trials' rows on; True if the pool broke (then every trial still in
        flight failed with it and is recorded too)."""
        broken = False
        for fut in list(finished):
            t = in_flight.pop(fut)
            try:
                row = fut.result()
            except BrokenProcessPool:
                broken = True
                row = t.failed("worker process died (killed or out of memory)")
            except Exception as err:  # a trial function must not take the grid down
                row = t.failed(failure_message(err))
            graph.finish(t, row)
            on_finish(t, row)
        if broken:
            for fut, t in list(in_flight.items()):
                del in_flight[fut]
                row = t.failed("worker process died (killed or out of memory)")
                graph.finish(t, row)
                on_finish(t, row)
        return broken
