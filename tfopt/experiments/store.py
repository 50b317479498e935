"""The workdir of an ablation run and its append-only results file.

Layout:
  WORKDIR/config.json        the run's ExperimentConfig and its fingerprint
  WORKDIR/flags.txt          the flags as parsed (for humans; the config is the truth)
  WORKDIR/results.jsonl      one TrialResult JSON line per finished trial, appended the moment it ends
  WORKDIR/trials/<id>/       per-trial artefacts: model.keras, checkpoints, TensorBoard, .tflite
  WORKDIR/tflite_models/     firmware export per trial
  WORKDIR/.lock              the driver using the workdir: {pid, host, started, proc_start, token}
  WORKDIR/results.jsonl.torn torn last lines moved aside by a later append (kept for inspection)

The lock is taken with `os.open(O_CREAT | O_EXCL)`, so of two drivers starting at once exactly
one gets it. A lock whose process is gone (same host, pid dead or reused) is taken over under a
second O_EXCL guard file, so two drivers cannot both take over the same stale lock. `prepare`
(which may archive the workdir for `--overwrite`) needs the lock first: a live run is never
archived. A results line is one `os.write` on an O_APPEND descriptor + fsync, so a `kill -9`
leaves at most one torn last line: readers skip it, and the next append moves it to
results.jsonl.torn (with a warning) before writing. config.json is written to a temporary file,
fsynced and renamed into place. Later lines for the same trial win (a failed trial retried on
resume).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import socket
import time
import uuid

from tfopt.core.results import RESULTS_FILE, TrialResult, latest, read_results
from tfopt.experiments.config import ExperimentConfig

RESULTS = RESULTS_FILE
CONFIG = "config.json"
# The readers live in tfopt.core.results (the report and the recommender use them too).
latest_rows = latest
LOCK = ".lock"
_GRACE_S = 10.0   # an empty lock / takeover guard this old belongs to a process that died
_ATTEMPTS = 200   # lock() retries (each a few ms) while another process holds the guard


class ResultsStore:
    """Owns a workdir: config check, lock and the results file (single writer: the driver)."""

    def __init__(self, workdir: str):
        self.workdir = os.path.abspath(workdir)
        self.path = os.path.join(self.workdir, RESULTS)
        self._token: str | None = None   # set while this store holds the lock

    # ---- config ------------------------------------------------------------------------
    def prepare(self, config: ExperimentConfig, flags_text: str = "") -> None:
        """Write config.json / flags.txt, or refuse a workdir holding another config's results.

        A workdir accepts the same trial settings again (resume, or more variants/recipes); any
        other change (epochs, dataset, width, ...) is refused unless `config.overwrite`, which
        moves the old results and artefacts to WORKDIR/archive/<timestamp>/.
        """
        if self._token is None:
            raise RuntimeError("internal: ResultsStore.prepare() called before lock()")
        cfg_path = os.path.join(self.workdir, CONFIG)
        old = _read_config(cfg_path, config.overwrite)
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
            RESULTS + ".torn",
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
    @property
    def lock_path(self) -> str:
        return os.path.join(self.workdir, LOCK)

    def lock(self) -> None:
        """Hold the workdir for this process, atomically; a live holder is a ValueError naming
        it, a dead one's lock (same host) is taken over."""
        os.makedirs(self.workdir, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                  "proc_start": _proc_start(os.getpid()), "token": uuid.uuid4().hex}
        for _ in range(_ATTEMPTS):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                seen = _read_lock(self.lock_path)
                if seen is None:          # released meanwhile: try again
                    continue
                verdict = self._judge(seen)
                if verdict == "ours":
                    self._token = seen[2].get("token") or "legacy"
                    return
                if verdict == "stale":
                    _take_over(self.lock_path, seen)
                elif verdict == "wait":
                    time.sleep(0.005)
                continue
            try:
                os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._token = record["token"]
            return
        raise ValueError(f"workdir {self.workdir!r}: could not take {self.lock_path} (another "
                         "process is taking it at the same moment); try again")

    def _judge(self, seen) -> str:
        """'live' (raises), 'ours', 'stale' or 'wait' (a lock being written) for a lock file."""
        _, age, rec = seen
        if rec is None:   # empty or unreadable: its writer is mid-write, or died doing so
            return "stale" if age > _GRACE_S else "wait"
        pid, host = rec.get("pid"), rec.get("host")
        here = host == socket.gethostname()
        if here and pid == os.getpid():
            return "ours"
        if here and isinstance(pid, int) and pid > 0 and _alive(pid) and (
                rec.get("proc_start") in (None, _proc_start(pid))):
            return self._refuse(rec)
        if not here:
            return self._refuse(rec)
        return "stale"

    def _refuse(self, rec: dict) -> str:
        since = f", started {rec['started']}" if rec.get("started") else ""
        raise ValueError(
            f"workdir {self.workdir!r} is in use by process {rec.get('pid')} on "
            f"{rec.get('host')}{since} (if that run is gone, remove {self.lock_path})")

    def unlock(self) -> None:
        """Release the lock if this store holds it (never someone else's)."""
        seen = _read_lock(self.lock_path)
        if self._token is None or seen is None or seen[2] is None:
            return
        if seen[2].get("token", "legacy") == self._token or (
                self._token == "legacy" and seen[2].get("pid") == os.getpid()):
            try:
                os.remove(self.lock_path)
            except OSError:
                pass
        self._token = None

    # ---- results -----------------------------------------------------------------------
    def rows(self) -> list[TrialResult]:
        return read_results(self.path) if os.path.exists(self.path) else []

    def finished(self) -> dict[str, TrialResult]:
        """Trial id -> its latest row, for trials whose latest row has status 'ok'."""
        return {r.trial_id: r for r in latest(self.rows()) if r.ok}

    def append(self, row: TrialResult) -> None:
        """Append one row durably (one O_APPEND write + fsync), moving a torn last line aside
        to results.jsonl.torn first."""
        line = row.to_json()
        if "\n" in line:
            raise AssertionError("json.dumps produced a newline")
        self._repair_tail()
        created = not os.path.exists(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = (line + "\n").encode("utf-8")
            written = os.write(fd, data)
            while written < len(data):   # only on a full disk or a signal
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.workdir)

    def _repair_tail(self) -> None:
        """Move an unterminated last line (a writer killed mid-line) to results.jsonl.torn."""
        try:
            f = open(self.path, "rb+")
        except FileNotFoundError:
            return
        with f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            cut = f.read().rfind(b"\n") + 1   # single writer: only on recovery, so read it all
            f.seek(cut)
            tail = f.read()
            torn = self.path + ".torn"
            with open(torn, "ab") as t:
                t.write(tail + b"\n")
                t.flush()
                os.fsync(t.fileno())
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        logging.warning("%s: moved a torn last line (%d bytes, a writer killed mid-line) to %s",
                        self.path, len(tail), torn)

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


def _proc_start(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22), None if unknown:
    tells a live driver from an unrelated process that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _read_lock(path: str):
    """(identity, age in s, record or None if empty/unreadable) of a lock file, None if absent.
    A bare pid (the lock format before JSON) reads as a record of this host."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    identity = (st.st_ino, st.st_mtime_ns, text)
    age = time.time() - st.st_mtime
    text = text.strip()
    if text.isdigit():
        return identity, age, {"pid": int(text), "host": socket.gethostname()}
    try:
        rec = json.loads(text)
    except ValueError:
        rec = None
    return identity, age, (rec if isinstance(rec, dict) else None)


def _take_over(path: str, seen) -> None:
    """Remove the stale lock `seen` unless it changed; serialised by an O_EXCL guard file, so
    a lock another process has just created is never removed."""
    guard = path + ".takeover"
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - os.stat(guard).st_mtime > _GRACE_S:
                os.remove(guard)   # its owner died between two system calls
        except OSError:
            pass
        time.sleep(0.002)
        return
    try:
        now = _read_lock(path)
        if now is not None and now[0] == seen[0]:
            os.remove(path)
            rec = seen[2] or {}
            logging.warning("took over the stale lock %s of process %s (not running)", path,
                            rec.get("pid", "?"))
    finally:
        os.close(fd)
        os.remove(guard)


def _read_config(path: str, overwrite: bool) -> dict | None:
    """config.json's content, None if absent; a corrupt file is a one-line ValueError naming
    it (with --overwrite it is archived like any other content: returns {})."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as err:
        if overwrite:
            return {}
        raise ValueError(f"{path} is not valid JSON ({err}); repair or remove it, or use "
                         "--overwrite to archive the workdir") from None
    if not isinstance(data, dict):
        if overwrite:
            return {}
        raise ValueError(f"{path} holds a {type(data).__name__}, not a JSON object; repair or "
                         "remove it, or use --overwrite to archive the workdir")
    return data


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, text: str) -> None:
    """Write to a temporary file, fsync it, rename it over `path`, fsync the directory."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path) or ".")
