"""How long an ablation run would take on N idle cores, from the CPU time its trials used.

Run: python benchmarks/ablation_idle_wall.py runs/fashion_mnist_quick [--workers=2]
        [--startup_s=15] [--tail_s=10]
Expect: a second; prints the per-trial CPU seconds, their sum, and the wall time of the
`processes` executor's schedule replayed with every trial taking its measured CPU time.

Why: on a machine shared with other jobs the wall time of a run says little (a worker gets a
fraction of a core), but each trial's CPU time (user + sys of its worker process, all threads,
`timings.cpu_s` in results.jsonl) is what it needs of an idle core when the worker runs one
TensorFlow thread, as `--executor=processes` arranges (cores // workers threads each). The
replay uses the executor's own order (`process_executor.chain_heights` with `epochs_cost`) and
dependencies (parent, baseline); `--startup_s` adds the driver's and the workers' start (Python
+ TensorFlow import, first data load) and `--tail_s` the report at the end. An estimate: it
ignores memory-bandwidth contention between the two workers (measured in the same run as the
ratio of a trial's wall to CPU time when the machine was quiet, if it ever was).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfopt.experiments.config import ExperimentConfig  # noqa: E402
from tfopt.experiments.grid import plan  # noqa: E402
from tfopt.experiments.process_executor import chain_heights, epochs_cost  # noqa: E402
from tfopt.experiments.store import read_results  # noqa: E402


def replay(trials, seconds: dict[str, float], height: dict[str, float], workers: int) -> float:
    """Makespan of list scheduling: the ready trial with the largest height first."""
    order = {t.id: i for i, t in enumerate(trials)}
    done: set[str] = set()
    pending = list(trials)
    running: list[tuple[float, str]] = []
    now = 0.0
    while pending or running:
        ready = sorted((t for t in pending if all(d in done for d in t.deps)),
                       key=lambda t: (-height[t.id], order[t.id]))
        for t in ready[: workers - len(running)]:
            pending.remove(t)
            heapq.heappush(running, (now + seconds[t.id], t.id))
        now, tid = heapq.heappop(running)
        done.add(tid)
    return now


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--startup_s", type=float, default=15.0)
    ap.add_argument("--tail_s", type=float, default=10.0)
    args = ap.parse_args(argv)
    with open(os.path.join(args.workdir, "config.json")) as f:
        saved = json.load(f)
    config = ExperimentConfig.from_dict(saved.get("full_config", saved))
    trials = plan(config)
    rows = {r.trial_id: r for r in read_results(args.workdir) if r.ok}
    missing = [t.id for t in trials if t.id not in rows]
    if missing:
        print(f"error: {len(missing)} trial(s) not finished ok: {', '.join(missing[:5])}")
        return 2
    cpu = {t: float((r.timings or {}).get("cpu_s", r.wall_time_s or 0)) for t, r in rows.items()}
    wall = {t: float(r.wall_time_s or 0) for t, r in rows.items()}
    print("| trial | CPU [s] | wall [s] |\n|---|---:|---:|")
    for t in trials:
        print(f"| {t.id} | {cpu[t.id]:.1f} | {wall[t.id]:.1f} |")
    total = sum(cpu[t.id] for t in trials)
    span = replay(trials, cpu, chain_heights(trials, epochs_cost(config)), args.workers)
    est = span + args.startup_s + args.tail_s
    print(f"\ntrials' CPU time: {total:.0f} s ({total / 60:.1f} min); replayed on "
          f"{args.workers} idle workers: {span:.0f} s + {args.startup_s:.0f} s start + "
          f"{args.tail_s:.0f} s report = {est:.0f} s ({est / 60:.1f} min) "
          f"(lower bound: {total / args.workers / 60:.1f} min, the CPU time split evenly)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
