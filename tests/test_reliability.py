"""Reliability: kill -9 at random moments, exact resume, reading while a trainer writes, divergence, faults."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
import zarr
from typer.testing import CliRunner

from grokscope import RunStore, analyze, open_checkpoints, open_run
from grokscope.cli.main import app
from grokscope.config.presets import from_preset
from grokscope.store.writer import RunWriter
from grokscope.trainers import train

# A run long enough to be killed mid-way: mini-batches (the batch order must survive a resume), frequent
# flushes and checkpoints.
FLAGS = ["--preset", "demo", "--p", "23", "--d-model", "32", "--d-mlp", "64", "--batch-size", "64",
         "--steps", "4000", "--ckpt-every", "50", "--quiet"]
FAST_FLUSH = {"GROKSCOPE_FLUSH_ROWS": "64"}
# Every per-step array of a mini-batched run (train_* over the whole training set at eval steps).
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm", "param_norm", "batch_loss", "batch_acc")


def start_training(out, *extra):
    env = {**os.environ, **FAST_FLUSH}
    return subprocess.Popen([sys.executable, "-m", "grokscope.cli", "train", *FLAGS, *extra, "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def check_consistent_prefix(path):
    """Opens with grokscope and plain xarray; every committed row and checkpoint complete, nothing after."""
    store = RunStore(path)
    n, k = store.n_steps, store.n_ckpts
    assert xr.open_zarr(path, consolidated=False).sizes["step"] == 4001  # preallocated: plain xarray always opens
    ds = open_run(path)
    assert ds.sizes["step"] == n
    assert np.isfinite(ds.train_loss.values).all() and np.isfinite(ds.l2_norm.values).all()
    assert (ds.step.values == np.arange(n)).all()
    ck = open_checkpoints(path)
    assert ck.sizes["ckpt"] == k and (ck.step.values <= max(n - 1, 0)).all()
    for name in ck.data_vars:
        assert np.isfinite(ck[name].values).all(), name
    return n


def wait_for(predicate, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_a_consistent_prefix(tmp_path):
    """20 kills, two trainers at a time: while the store is being created, before its first commit, and
    (most) at a random moment after some commits (flushes every 64 steps, so many kills land mid-write)."""
    rng = np.random.default_rng(0)
    prefixes = []
    for trial in range(10):
        paths = [tmp_path / f"k{trial}_{j}.zarr" for j in range(2)]
        procs = [start_training(path) for path in paths]
        for proc, path in zip(procs, paths):
            if trial in (0, 5):  # at creation: as soon as the hidden build directory shows up
                wait_for(lambda path=path: any(".creating-" in p.name for p in tmp_path.iterdir()) or path.exists())
            elif trial in (1, 6):  # the store exists, nothing committed yet
                assert wait_for(path.exists), proc.stderr.read().decode()
            else:  # after the first commit, at a random moment
                assert wait_for(lambda path=path: path.exists() and RunStore(path).n_steps > 0), \
                    proc.stderr.read().decode()
                time.sleep(float(rng.uniform(0.0, 2.0)))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        for path in paths:
            if path.exists():  # a store appears whole or not at all
                prefixes.append(check_consistent_prefix(path))
    print(f"kills: 20, stores that appeared: {len(prefixes)}, committed rows at the kill: {sorted(prefixes)}")
    assert len(prefixes) >= 16 and sum(n > 0 for n in prefixes) >= 12, prefixes


@pytest.mark.slow
def test_resume_after_kill_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    full = tmp_path / "full.zarr"
    subprocess.run([sys.executable, "-m", "grokscope.cli", "train", *FLAGS, "--steps", "400", "--out", str(full)],
                   check=True, env={**os.environ, **FAST_FLUSH})
    cut = tmp_path / "cut.zarr"
    proc = start_training(cut, "--steps", "400")
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once at least one resumable commit exists, mid-run
        time.sleep(0.2)
        try:
            marker = RunStore(cut).attrs["committed"]
        except Exception:
            continue
        if marker.get("resume") and marker["steps"] > 100:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = RunStore(cut).n_steps
    assert 0 < stopped_at < 401, "the run finished before it could be killed"
    result = CliRunner().invoke(app, ["train", "--resume", str(cut), "--quiet"])
    assert result.exit_code == 0, result.stderr
    a, b = RunStore(full), RunStore(cut)
    assert b.status == "complete" and b.n_steps == a.n_steps == 401
    for name in METRICS:
        assert np.array_equal(a.read(name), b.read(name), equal_nan=True), name
    for name in a.param_names():
        assert np.array_equal(a.read_param(name), b.read_param(name)), name


def assert_same_run(a, b):
    """Two complete stores of one config hold the same run, bit for bit."""
    assert b.status == a.status == "complete" and b.n_steps == a.n_steps and b.n_ckpts == a.n_ckpts
    for name in METRICS:
        assert np.array_equal(a.read(name), b.read(name), equal_nan=True), name
    for name in a.param_names():
        assert np.array_equal(a.read_param(name), b.read_param(name)), name


@pytest.mark.slow
def test_resume_of_a_run_killed_before_its_first_commit_equals_the_uninterrupted_run(tmp_path):
    """kill -9 once the store exists but nothing is committed (a huge flush buffer: the first commit waits
    FLUSH_SECONDS), then --resume: the run restarts from step 0 in the same store, bit for bit."""
    cut = tmp_path / "cut.zarr"
    env = {**os.environ, "GROKSCOPE_FLUSH_ROWS": "100000"}
    proc = subprocess.Popen([sys.executable, "-m", "grokscope.cli", "train", *FLAGS, "--steps", "300", "--out",
                             str(cut)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for(cut.exists), proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = RunStore(cut)
    assert killed.status == "running" and killed.attrs["committed"] == {"steps": 0, "ckpts": 0}
    result = CliRunner().invoke(app, ["train", "--resume", str(cut), "--quiet"])
    assert result.exit_code == 0, result.stderr
    full = tmp_path / "full.zarr"
    assert CliRunner().invoke(app, ["train", *FLAGS, "--steps", "300", "--out", str(full)]).exit_code == 0
    assert_same_run(RunStore(full), RunStore(cut))


def test_resume_of_a_run_stopped_before_its_first_commit_restarts_it(tmp_path, monkeypatch):
    """The first flush fails (a full disk): the store exists with nothing committed and no resume state;
    --resume trains it again from step 0, equal to the uninterrupted run bit for bit."""
    args = ["train", "--preset", "demo", "--p", "17", "--d-model", "16", "--batch-size", "32", "--steps", "30",
            "--eval-every", "5", "--ckpt-every", "10", "--quiet"]
    original = RunWriter.metric_writes

    def no_space(self, start, block):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(RunWriter, "metric_writes", no_space)
    cut = tmp_path / "cut.zarr"
    assert CliRunner().invoke(app, [*args, "--out", str(cut)]).exit_code == 2
    assert RunStore(cut).status == "running" and RunStore(cut).n_steps == 0
    monkeypatch.setattr(RunWriter, "metric_writes", original)
    result = CliRunner().invoke(app, ["train", "--resume", str(cut), "--quiet"])
    assert result.exit_code == 0, result.stderr
    full = tmp_path / "full.zarr"
    assert CliRunner().invoke(app, [*args, "--out", str(full)]).exit_code == 0
    assert_same_run(RunStore(full), RunStore(cut))
    assert RunStore(cut).has("batch_loss")  # mini-batched: the batch arrays resume too


def test_resume_refuses_complete_runs_and_extra_flags(tmp_path):
    out = tmp_path / "r.zarr"
    assert CliRunner().invoke(app, ["train", *FLAGS, "--steps", "5", "--out", str(out)]).exit_code == 0
    result = CliRunner().invoke(app, ["train", "--resume", str(out)])
    assert result.exit_code == 2 and "only a stopped run can resume" in result.stderr
    result = CliRunner().invoke(app, ["train", "--resume", str(out), "--steps", "9"])
    assert result.exit_code == 2 and "drop --steps" in result.stderr


@pytest.mark.slow
def test_reading_while_a_trainer_writes_sees_only_complete_rows(tmp_path):
    out = tmp_path / "live.zarr"
    proc = start_training(out, "--steps", "800")
    reads, seen_running, last_seen = 0, False, -1
    try:
        deadline = time.time() + 180
        while proc.poll() is None and time.time() < deadline:
            if out.exists():
                row = analyze([out])[0]
                ds = open_run(out)
                assert np.isfinite(ds.train_loss.values).all() and np.isfinite(ds.param_norm.values).all()
                assert ds.sizes["step"] - 1 >= (row["last_step"] if row["last_step"] is not None else -1) >= last_seen
                last_seen = ds.sizes["step"] - 1
                seen_running |= row["status"] == "running" and ds.sizes["step"] > 0
                reads += 1
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert reads >= 10 and seen_running


@pytest.mark.parametrize("policy", ["stop", "continue"])
def test_divergence_is_recorded_not_a_crash(tmp_path, policy):
    out = tmp_path / "d.zarr"
    result = CliRunner().invoke(app, ["train", "--preset", "demo", "--p", "17", "--steps", "40", "--lr", "1e6",
                                      "--ckpt-every", "1", "--on-divergence", policy, "--quiet", "--out", str(out)])
    assert result.exit_code == 0 and "diverged at step" in result.stderr
    row = json.loads(CliRunner().invoke(app, ["analyze", str(out), "--json"]).stdout)[0]
    assert row["status"] == "diverged" and row["diverged_at"] is not None and row["diverged_at"] <= 5
    store = RunStore(out)
    if policy == "stop":  # the rows end at the first non-finite step, and so do the checkpoints
        assert store.n_steps == row["diverged_at"] + 1 and store.checkpoint_steps()[-1] == row["diverged_at"]
        assert not np.isfinite(store.read("train_loss")[-1]) and np.isfinite(store.read("train_loss")[:-1]).all()
    else:
        assert store.n_steps == 41


@pytest.mark.parametrize("batch_size", [None, 32])
def test_where_a_stopped_divergence_ends_does_not_depend_on_flush_timing(tmp_path, monkeypatch, batch_size):
    """One flush at the end, or one every 3 steps: the same committed rows and checkpoints (mini-batched
    runs watch the batch loss, as their train_loss is only measured at eval steps)."""
    cfg = from_preset("demo", p=17, steps=40, lr=1e6, ckpt_every=2, batch_size=batch_size, eval_every=4)
    ends = []
    for rows in (1024, 3):
        monkeypatch.setattr("grokscope.trainers.recording.FLUSH_ROWS", rows)
        store = RunStore(train(cfg, tmp_path / f"f{rows}.zarr"))
        assert store.status == "diverged"
        ends.append((store.attrs["diverged_at"], store.n_steps, store.n_ckpts))
    assert ends[0] == ends[1] and ends[0][1] == ends[0][0] + 1, ends


def test_a_full_disk_is_one_line_and_the_store_keeps_its_last_commit(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = RunWriter.metric_writes

    def fail_on_second_flush(self, start, block):
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return original(self, start, block)

    monkeypatch.setattr(RunWriter, "metric_writes", fail_on_second_flush)
    monkeypatch.setattr("grokscope.trainers.recording.FLUSH_ROWS", 16)
    out = tmp_path / "full.zarr"
    result = CliRunner().invoke(app, ["train", "--preset", "demo", "--p", "17", "--steps", "100", "--quiet",
                                      "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"grokscope: error: {out}: No space left on device"]
    store = RunStore(out)
    assert 0 < store.n_steps <= 16 and store.status == "running"  # the first flush's commit, nothing after
    assert np.isfinite(store.read("train_loss")).all()


@pytest.mark.parametrize("command", ["analyze", "dynamics", "fourier", "cds", "report"])
def test_every_command_refuses_foreign_and_newer_stores(tmp_path, command):
    zarr.open_group(tmp_path / "other.zarr", mode="w", attributes={"made_by": "another program"})
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
    result = CliRunner().invoke(app, [command, str(tmp_path / "other.zarr"), *extra])
    assert result.exit_code == 2 and "not a grokscope run store" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("batch_size", [None, 32])
def test_a_resumed_continue_run_keeps_its_first_divergence_step(tmp_path, monkeypatch, batch_size):
    """on_divergence=continue: a run stopped after it diverged, then resumed, reports the step it first
    diverged at (found in its committed rows), as the uninterrupted run does."""
    cfg = from_preset("demo", p=17, steps=60, lr=1e6, batch_size=batch_size, eval_every=4, on_divergence="continue")
    whole = RunStore(train(cfg, tmp_path / "whole.zarr"))
    monkeypatch.setattr("grokscope.trainers.recording.FLUSH_ROWS", 8)

    def stop(step, latest):
        if step >= 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut.zarr", on_flush=stop)
    assert RunStore(tmp_path / "cut.zarr").status == "running"
    resumed = RunStore(train(None, tmp_path / "cut.zarr", resume=True))
    assert whole.attrs["diverged_at"] <= 5
    assert resumed.status == whole.status == "diverged"
    assert resumed.attrs["diverged_at"] == whole.attrs["diverged_at"]
