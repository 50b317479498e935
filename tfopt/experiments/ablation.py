"""The ablation driver: one flagfile -> trained, compressed, converted, verified models ->
paper-style tables, plots and the smallest model for each accepted accuracy drop.

  python -m tfopt.experiments.ablation --flagfile=experiments/fashion_mnist_quick.cfg

Flags (validated before any work, TensorFlow-free): see `tfopt/experiments/flags.py` and
docs/ablation.md. Re-running the same command resumes: finished trials are skipped, a
half-trained baseline continues from its checkpoint. Exit status 0 iff every trial succeeded.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from tfopt.core import env
from tfopt.core.results import TrialResult
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial, plan
from tfopt.experiments.store import ResultsStore


def _hms(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """One line per trial start/finish with elapsed time and an ETA for the rest of the grid."""

    def __init__(self, total: int, already: int, out=None):
        self.total, self.done, self.out = total, already, out or sys.stdout
        self.started = already  # trials started so far (several run at once with `processes`)
        self.t0 = time.monotonic()
        self.ran = 0
        self.failed = 0

    def _eta(self) -> str:
        if self.ran == 0:
            return "?"
        per = (time.monotonic() - self.t0) / self.ran
        return _hms(per * (self.total - self.done))

    def start(self, trial: Trial) -> None:
        self.started += 1
        print(
            f"[{self.started}/{self.total}] start  {trial.id}  elapsed "
            f"{_hms(time.monotonic() - self.t0)}  eta {self._eta()}",
            file=self.out,
            flush=True,
        )

    def finish(self, trial: Trial, row: TrialResult) -> None:
        self.done += 1
        self.ran += 1
        if not row.ok:
            self.failed += 1
        acc = row.keras_accuracy_pct
        extra = f"  acc {acc:.2f}%" if isinstance(acc, (int, float)) else ""
        err = f"  error: {row.error}" if not row.ok else ""
        cpu = (row.timings or {}).get("cpu_s")
        cpu = f", cpu {cpu:.0f} s" if isinstance(cpu, (int, float)) else ""
        print(
            f"[{self.done}/{self.total}] {row.status:<6} {trial.id}  ({row.wall_time_s or 0:.0f}"
            f" s{cpu}){extra}  elapsed {_hms(time.monotonic() - self.t0)}  eta {self._eta()}{err}",
            file=self.out,
            flush=True,
        )


def run_grid(
    config: ExperimentConfig,
    *,
    executor=None,
    flags_text: str = "",
    write_report: bool = True,
    out=None,
) -> int:
    """Run every trial of `config` not finished yet; return the number of failed trials.

    Failed trials (this run's, or earlier ones not retried) count; rows are appended to
    WORKDIR/results.jsonl as trials end, and report.md/CSV/plots are rebuilt at the end.
    """
    from tfopt.experiments.executors import make_executor

    out = out or sys.stdout

    store = ResultsStore(config.workdir)
    store.lock()  # before prepare(): --overwrite must never archive a live run's workdir
    try:
        store.prepare(config, flags_text)
        trials = plan(config)
        if config.board:  # fit pre-pass: what cannot fit the board is recorded, not trained
            from tfopt.experiments.board_fit import apply_board

            trials = apply_board(config, trials, store, log=lambda m: print(m, file=out, flush=True))
        done = store.finished()
        todo = [t for t in trials if t.id not in done]
        print(
            f"ablation: {len(trials)} trials ({len(trials) - len(todo)} already done) -> "
            f"{config.workdir}",
            file=out,
            flush=True,
        )
        progress = Progress(len(trials), len(trials) - len(todo), out)
        executor = executor or make_executor(config)

        def on_finish(trial: Trial, row: TrialResult) -> None:
            if row.config_fingerprint is None:
                row = dataclasses.replace(row, config_fingerprint=config.fingerprint())
            store.append(row)
            progress.finish(trial, row)

        executor.run(
            trials,
            config,
            {t.id: done[t.id] for t in trials if t.id in done},
            progress.start,
            on_finish,
        )
        latest = store.finished()
        failed = [t.id for t in trials if t.id not in latest]
        if write_report:
            try:
                from tfopt.experiments import report

                paths = report.write_report(config.workdir)
                print(f"report: {paths['markdown']}", file=out, flush=True)
            except Exception as err:  # the results are safe; a report bug must not hide them
                print(f"report failed: {type(err).__name__}: {err}", file=out, flush=True)
                failed.append("report")
        print(
            f"ablation: {len(trials) - len([f for f in failed if f != 'report'])}/{len(trials)} "
            f"trials ok" + (f"; failed: {', '.join(failed)}" if failed else ""),
            file=out,
            flush=True,
        )
        return len(failed)
    finally:
        store.unlock()


def _main(argv) -> int:
    from absl import logging

    from tfopt.experiments import flags as tf_flags

    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    config = tf_flags.config_from_flags()
    env.quiet_tensorflow(tf_flags.FLAGS.tf_log_level)  # before TensorFlow loads in a trial
    logging.set_verbosity(logging.WARNING)
    if tf_flags.FLAGS.dry_run:  # plan + estimate only; nothing trained, no results written
        from tfopt.experiments import plan as dry

        dry.print_plan(config)
        return 0
    failed = run_grid(config, flags_text=tf_flags.FLAGS.flags_into_string())
    return 1 if failed else 0


def main(argv=None) -> int:
    """`python -m tfopt.experiments.ablation --flagfile=F` (argv without the program name);
    returns the exit status: 0 all trials ok, 1 some failed, 2 a bad flag or file."""
    from tfopt.core import cli
    from tfopt.experiments import flags as tf_flags

    return cli.run(_main, argv, flag_values=tf_flags.FLAGS, doc=__doc__,
                   prog="python -m tfopt.experiments.ablation")


if __name__ == "__main__":
    sys.exit(main())
