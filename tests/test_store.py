"""tfopt.experiments.store: the atomic workdir lock (races, stale takeover, pid reuse), --overwrite
only under the lock, torn-tail repair of results.jsonl, and config.json written atomically."""

import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from tfopt.experiments import ablation, store as store_mod
from tfopt.core.results import TrialResult
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.executors import LocalExecutor
from tfopt.experiments.store import ResultsStore, read_results

ROUNDS = 200


def _contender(workdirs, barrier, got, slot):
    """(in a child process) race the other contender for the lock of every workdir."""
    from tfopt.experiments.store import ResultsStore
    for i, workdir in enumerate(workdirs):
        barrier.wait()
        try:
            ResultsStore(workdir).lock()
            got[2 * i + slot] = 1
        except ValueError:
            got[2 * i + slot] = 0


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _stale_lock(workdir, pid):
    with open(os.path.join(workdir, ".lock"), "w") as f:
        json.dump({"pid": pid, "host": store_mod.socket.gethostname(), "token": "dead"}, f)


def test_two_processes_racing_for_the_lock_never_both_get_it(tmp_path):
    # Every other round starts from a stale lock, so the takeover path races too.
    dead = _dead_pid()
    workdirs = [str(tmp_path / f"r{i}") for i in range(ROUNDS)]
    for i, workdir in enumerate(workdirs):
        os.makedirs(workdir)
        if i % 2:
            _stale_lock(workdir, dead)
    ctx = multiprocessing.get_context("spawn")
    barrier, got = ctx.Barrier(2), ctx.Array("i", [-1] * (2 * ROUNDS))
    procs = [ctx.Process(target=_contender, args=(workdirs, barrier, got, k)) for k in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    winners = [got[2 * i] + got[2 * i + 1] for i in range(ROUNDS)]
    doubles = sum(w == 2 for w in winners)
    assert doubles == 0 and winners == [1] * ROUNDS, f"{doubles} double acquisitions"
    for workdir in workdirs:   # the lock names its holder
        rec = json.loads(open(os.path.join(workdir, ".lock")).read())
        assert {"pid", "host", "started", "proc_start", "token"} <= set(rec)


def test_live_lock_is_refused_naming_its_holder_and_pid_reuse_is_stale(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / ".lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": store_mod.socket.gethostname(),
                                    "started": "2026-01-01T00:00:00",
                                    "proc_start": store_mod._proc_start(holder.pid)}))
        with pytest.raises(ValueError, match=rf"in use by process {holder.pid} on .*started "
                                             r"2026-01-01.*remove .*\.lock") as err:
            ResultsStore(str(tmp_path)).lock()
        assert "\n" not in str(err.value)
        # the same pid with another start time is an unrelated process that reused the pid
        lock.write_text(json.dumps({"pid": holder.pid, "host": store_mod.socket.gethostname(),
                                    "proc_start": -1}))
        s = ResultsStore(str(tmp_path))
        s.lock()
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        s.unlock()
        assert not lock.exists()
    finally:
        holder.kill()
        holder.wait()


def test_unlock_never_removes_someone_elses_lock(tmp_path):
    a = ResultsStore(str(tmp_path))
    a.lock()
    _stale_lock(str(tmp_path), 4242)          # replaced behind a's back
    a.unlock()
    assert (tmp_path / ".lock").exists()


def _config(tmp_path, **kw):
    base = dict(variants=("tiny_cnn",), recipes=("none",), workdir=str(tmp_path / "wd"),
                train_epochs=1)
    base.update(kw)
    return ExperimentConfig(**base)


def _fake_trial(config, trial, dep_rows):
    return TrialResult(trial.id, trial.variant, str(trial.recipe), "ok", keras_accuracy_pct=90.0)


def _row(trial_id: str) -> TrialResult:
    return TrialResult(trial_id, "tiny_cnn", "none", "ok")


def test_overwrite_on_a_live_run_is_refused_and_archives_nothing(tmp_path):
    c = _config(tmp_path)
    assert ablation.run_grid(c, executor=LocalExecutor(_fake_trial), write_report=False) == 0
    before = {n: open(os.path.join(c.workdir, n)).read() for n in ("results.jsonl", "config.json")}
    code = ("import sys, time; from tfopt.experiments.store import ResultsStore; "
            f"ResultsStore({c.workdir!r}).lock(); print('locked', flush=True); time.sleep(60)")
    live = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=rf"in use by process {live.pid}"):
            ablation.run_grid(_config(tmp_path, train_epochs=2, overwrite=True),
                              executor=LocalExecutor(_fake_trial), write_report=False)
    finally:
        live.kill()
        live.wait()
    assert not os.path.exists(os.path.join(c.workdir, "archive"))
    for name, text in before.items():
        assert open(os.path.join(c.workdir, name)).read() == text
    # once the holder is gone its lock is stale: --overwrite then archives as usual
    assert ablation.run_grid(_config(tmp_path, train_epochs=2, overwrite=True),
                             executor=LocalExecutor(_fake_trial), write_report=False) == 0
    assert len(os.listdir(os.path.join(c.workdir, "archive"))) == 1


def test_prepare_needs_the_lock(tmp_path):
    with pytest.raises(RuntimeError, match="before lock"):
        ResultsStore(str(tmp_path)).prepare(_config(tmp_path))


def test_torn_tail_is_moved_aside_and_the_file_stays_valid_jsonl(tmp_path):
    s = ResultsStore(str(tmp_path))
    s.append(_row("a"))
    with open(s.path, "a") as f:
        f.write('{"trial_id": "b", "sta')          # kill -9 mid-write
    assert [r.trial_id for r in read_results(s.path)] == ["a"]
    s.append(_row("c"))
    lines = open(s.path).read().splitlines()
    assert [json.loads(line)["trial_id"] for line in lines] == ["a", "c"]   # every line parses
    assert open(s.path + ".torn").read() == '{"trial_id": "b", "sta\n'


def test_config_json_is_atomic_and_a_corrupt_one_is_named(tmp_path):
    c = _config(tmp_path)
    s = ResultsStore(c.workdir)
    s.lock()
    s.prepare(c)
    cfg = os.path.join(c.workdir, "config.json")
    assert json.load(open(cfg))["fingerprint"] == c.fingerprint()
    assert not [n for n in os.listdir(c.workdir) if n.endswith(".tmp")]
    with open(cfg, "w") as f:
        f.write('{"fingerprint": ')                  # torn by a crash of an older version
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON") as err:
        s.prepare(c)
    assert cfg in str(err.value) and "\n" not in str(err.value)
    s.prepare(_config(tmp_path, overwrite=True))      # --overwrite replaces it
    assert json.load(open(cfg))["fingerprint"] == c.fingerprint()
    s.unlock()
