"""The workdir of an ablation run and its append-only results file.

Layout:
  WORKDIR/config.json        the run's ExperimentConfig and its fingerprint
  WORKDIR/flags.txt          the flags as parsed (for humans; the config is the truth)
  WORKDIR/results.jsonl      one TrialResult JSON line per finished trial, appended the moment it ends
  WORKDIR/trials/<id>/       per-trial artefacts: model.keras, checkpoints, TensorBoard, .tflite
  WORKDIR/tflite_models/     firmware export per trial
  WORKDIR/.lock              pid of the driver using the workdir

A line is written with a single `write` + flush + fsync, so a `kill -9` leaves at most one torn
last line, which readers skip (and the next append repairs). Later lines for the same trial win
(a failed trial retried on resume).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil

from tfopt.core.results import RESULTS_FILE, TrialResult, latest, read_results
from tfopt.experiments.config import ExperimentConfig

RESULTS = RESULTS_FILE
CONFIG = "config.json"
# The readers live in tfopt.core.results (the report and the recommender use them too).
latest_rows = latest


class ResultsStore:
    """Owns a workdir: config check, lock and the results file (single writer: the driver)."""

    def __init__(self, workdir: str):
        self.workdir = os.path.abspath(workdir)
        self.path = os.path.join(self.workdir, RESULTS)

    # ---- config ------------------------------------------------------------------------
    def prepare(self, config: ExperimentConfig, flags_text: str = "") -> None:
        """Write config.json / flags.txt, or refuse a workdir holding another config's results.

        A workdir accepts the same trial settings again (resume, or more variants/recipes); any
        other change (epochs, dataset, width, ...) is refused unless `config.overwrite`, which
        moves the old results and artefacts to WORKDIR/archive/<timestamp>/.
        """
        os.makedirs(self.workdir, exist_ok=True)
        cfg_path = os.path.join(self.workdir, CONFIG)
        old = None
        if os.path.exists(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                old = json.load(f)
        has_results = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if old is not None and old.get("fingerprint") != config.fingerprint():
            if has_results or os.path.isdir(os.path.join(self.workdir, "trials")):
                if not config.overwrite:
                    diff = _diff(old.get("config", {}), config.trial_settings())
                    raise ValueError(
                        f"workdir {self.workdir!r} holds results of a different config "
                        f"({diff}); use another --workdir, or --overwrite to archive them"
                    )
                self._archive()
        elif old is None and has_results and not config.overwrite:
            raise ValueError(
                f"workdir {self.workdir!r} has {RESULTS} but no {CONFIG}; use "
                "another --workdir, or --overwrite to archive them"
            )
        elif old is None and has_results:
            self._archive()
        payload = {
            "fingerprint": config.fingerprint(),
            "config": config.trial_settings(),
            "full_config": config.to_dict(),
        }
        _atomic_write(cfg_path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
        if flags_text:
            _atomic_write(os.path.join(self.workdir, "flags.txt"), flags_text)

    def _archive(self) -> None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        dest = os.path.join(self.workdir, "archive", stamp)
        os.makedirs(dest, exist_ok=True)
        for name in (
            RESULTS,
            CONFIG,
            "flags.txt",
            "trials",
            "tflite_models",
            "report.md",
            "report",
            "tensorboard",
        ):
            src = os.path.join(self.workdir, name)
            if os.path.exists(src):
                shutil.move(src, os.path.join(dest, name))

    # ---- lock --------------------------------------------------------------------------
    def lock(self) -> None:
        """Refuse a second live driver on the workdir (a stale lock from a kill is taken over)."""
        path = os.path.join(self.workdir, ".lock")
        if os.path.exists(path):
            try:
                with open(path) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise ValueError(
                    f"workdir {self.workdir!r} is in use by process {pid} "
                    f"(remove {path} if that is wrong)"
                )
        with open(path, "w") as f:
            f.write(str(os.getpid()))

    def unlock(self) -> None:
        try:
            os.remove(os.path.join(self.workdir, ".lock"))
        except OSError:
            pass

    # ---- results -----------------------------------------------------------------------
    def rows(self) -> list[TrialResult]:
        return read_results(self.path) if os.path.exists(self.path) else []

    def finished(self) -> dict[str, TrialResult]:
        """Trial id -> its latest row, for trials whose latest row has status 'ok'."""
        return {r.trial_id: r for r in latest(self.rows()) if r.ok}

    def append(self, row: TrialResult) -> None:
        """Append one row durably (write + flush + fsync), repairing a torn last line first."""
        line = row.to_json()
        if "\n" in line:
            raise AssertionError("json.dumps produced a newline")
        prefix = ""
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    prefix = "\n"  # the previous writer died mid-line; close that line
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(prefix + line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def trial_dir(self, trial_id: str) -> str:
        return os.path.join(self.workdir, "trials", trial_id)


def _diff(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    changed = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(changed[:4]) + (" ..." if len(changed) > 4 else "") or "unknown change"


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie left by `kill -9` counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _atomic_write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
