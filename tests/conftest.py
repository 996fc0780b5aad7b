"""Shared test helpers (fixtures) for the grokscope test suite."""

import numpy as np
import pytest

from grokscope.store.layout import ParamSpec
from grokscope.store.writer import RunWriter


def _assert_one_line_error(result, *fragments):
    """A CLI result that failed the way users are promised: exit 2, one `grokscope: error:` line on stderr
    naming the problem, no traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grokscope: error:"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def assert_one_line_error():
    return _assert_one_line_error


# --- one fixture set of store kinds: every path a store reaches users by ------------------------------------

GROKS = dict(p=31, train_ratio=0.6, d_model=64, lr=3e-3, steps=1000, ckpt_every=100)  # groks in ~800 steps


class _Stop(Exception):
    """Raised from a progress callback: the run stops where a kill would have left it."""


def _stopped_run(cfg, out, after_flushes: int = 1):
    """Train ``cfg`` into ``out`` and stop it (as a kill would) after ``after_flushes`` block writes."""
    from grokscope.trainers import recording
    from grokscope.trainers.train import train

    flushes = []

    def stop(step, latest):
        flushes.append(step)
        if len(flushes) >= after_flushes:
            raise _Stop

    rows = recording.FLUSH_ROWS
    recording.FLUSH_ROWS = 64
    try:
        train(cfg, out, on_flush=stop)
    except _Stop:
        pass
    finally:
        recording.FLUSH_ROWS = rows
    return out


def _sparse_csv(path):
    """A log evaluated every 250 steps (irregular at the start) that groks at 2,000, dips below 0.5 for two
    evaluations at 3,000–3,250, recovers, and carries no L2."""
    steps = [0, 10, 50, 100, 250, *range(500, 5001, 250)]
    test = {2000: 0.96, 2250: 0.97, 2500: 0.97, 2750: 0.98, 3000: 0.4, 3250: 0.45}
    lines = ["step,train/loss,train/accuracy,val/loss,val/accuracy"]
    for s in steps:
        acc = test.get(s, 0.99 if s > 3250 else min(0.9, s / 2500))
        train_acc = min(1.0, 0.2 + s / 500)
        lines.append(f"{s},{1 / (1 + s):.6g},{train_acc:.4f},{2 * (1 - acc):.4f},{acc:.4f}")
    path = path.with_suffix(".csv")
    path.write_text("\n".join(lines) + "\n")
    return path


def _nanda_pth(path):
    """Nanda et al.'s file layout: per-epoch loss histories and a few checkpoints, so L2 is known only at
    checkpoint steps (NaN between them); test loss falls below 0.01 at epoch 300."""
    import torch

    gen = torch.Generator().manual_seed(0)
    epochs = [0, 100, 200, 300, 400]
    ckpts = [{"embed.W_E": torch.randn(16, 12, generator=gen) * (4 - i / 2),
              "unembed.W_U": torch.randn(16, 12, generator=gen) * (4 - i / 2)} for i in range(len(epochs))]
    torch.save({"train_losses": [1 / (1 + e) for e in range(500)],
                "test_losses": [max(0.001, 1 - e / 300 * 0.991) for e in range(500)],
                "checkpoints": ckpts, "checkpoint_epochs": epochs, "model": ckpts[-1],
                "config": {"p": 11, "frac_train": 0.3}}, path.with_suffix(".pth"))
    return path.with_suffix(".pth")


def _losses_csv(path):
    """Only losses, every 100 steps: train loss falls fast, test loss falls below 0.01 at step 1,500."""
    lines = ["iteration,loss,val_loss"]
    lines += [f"{s},{1 / (1 + s):.6g},{max(0.001, 1 - s / 1500 * 0.995):.6g}" for s in range(0, 3001, 100)]
    path = path.with_suffix(".csv")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def store_kinds(tmp_path_factory):
    """``{kind: path}`` of one real store of each kind users meet, all under one folder (``"root"``), which
    also holds the hidden build folder of a writer killed mid-build (``"killed_build"``)."""
    import concurrent.futures as cf
    import os
    import shutil
    import subprocess
    import sys

    from grokscope import from_preset
    from grokscope.importers import read_source, write_source
    from grokscope.sweeps.grid import plan_sweep
    from grokscope.trainers.checkpoints import read_torch
    from grokscope.trainers.sweep import execute_sweep
    from grokscope.trainers.train import train

    root = tmp_path_factory.mktemp("store_kinds")
    small = dict(p=31, train_ratio=0.6, d_model=32, steps=300, ckpt_every=50)
    kinds = {"root": root}
    kinds["dense"] = train(from_preset("demo", **GROKS), root / "dense.zarr")
    kinds["sparse_eval"] = train(from_preset("demo", **small, eval_every=25), root / "sparse_eval.zarr")
    kinds["mini_batched"] = train(from_preset("demo", **small, batch_size=64, eval_every=10),
                                  root / "mini_batched.zarr")
    kinds["diverged"] = train(from_preset("demo", **small, lr=1e30), root / "diverged.zarr")
    kinds["stopped"] = _stopped_run(from_preset("demo", **small, batch_size=64), root / "stopped.zarr")
    _stopped_run(from_preset("demo", **small, batch_size=64), root / "resumed.zarr")
    kinds["resumed"] = train(None, root / "resumed.zarr", resume=True)
    sweep = plan_sweep(root / "sweep", "demo", {**small, "steps": 200}, {"frac": [0.3, 0.6], "seed": [0, 1]})
    with cf.ThreadPoolExecutor(1) as pool:
        execute_sweep(sweep, pool)
    kinds["sweep"] = root / "sweep"
    kinds["sweep_member"] = sweep.store_path(next(iter(sweep.runs)))
    for kind, make in (("imported_sparse", _sparse_csv), ("imported_losses", _losses_csv),
                       ("imported_ckpts", _nanda_pth)):
        kinds[kind] = root / f"{kind}.zarr"
        src = make(root / kind)
        write_source(read_torch(src) if src.suffix == ".pth" else read_source(src), kinds[kind])
    # a writer killed while building its store leaves `.<name>.creating-<pid>` (a dead pid) behind
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    building = root / f".killed.zarr.creating-{dead.pid}"
    shutil.copytree(kinds["sparse_eval"], building)
    kinds["killed_build"] = building
    # ... and so does a sweep worker killed while creating one of its run stores
    shutil.copytree(kinds["sweep_member"], sweep.root / "runs" / f".frac=0.9_seed=0.zarr.creating-{dead.pid}")
    assert not os.path.exists(root / "killed.zarr")
    return kinds


# --- two constructed runs for reports and charts ---------------------------------------------------------

REPORT_CURVES = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")


def _report_run(path, *, mem=400, gen=1500, n_train=2000, seed=0, p=7, n_steps=2001):
    """A modular run: train accuracy ≥ 0.99 from ``mem``, test accuracy 1 from ``gen``, L2 = 40·e^(−t/1000),
    and an embedding whose Fourier spectrum is frequency 2 only, growing over 5 checkpoints."""
    t = np.arange(n_steps, dtype=np.float64)
    ckpts = np.linspace(0, n_steps - 1, 5).astype(np.int64)
    x = 2 * np.pi * 2 * np.arange(p) / p
    embed = np.zeros((5, p + 3, 4), np.float32)  # (ckpt, vocab, d_model): p numbers + 3 other tokens
    embed[:, :p, 0], embed[:, :p, 1] = np.cos(x), np.sin(x)
    embed *= np.arange(1, 6, dtype=np.float32)[:, None, None]
    writer = RunWriter(
        path, n_steps=n_steps, metrics={name: () for name in REPORT_CURVES}, ckpt_steps=ckpts,
        attrs={"config": {"task": "modular", "p": p, "n_train": n_train, "seed": seed},
               "model": {"param_roles": {"embedding": "embed.weight",
                                         "embedding_orientation": "vocab_first"}}},
        params=[ParamSpec("embed.weight", (p + 3, 4), ("vocab", "d_model"))])
    writer.write_metrics(0, {"train_acc": np.where(t >= mem, 1.0, 0.98 * t / mem),
                             "test_acc": np.where(t >= gen, 1.0, 0.1), "train_loss": np.exp(-t / 300),
                             "test_loss": np.where(t >= gen, 0.01, 3.0), "l2_norm": 40 * np.exp(-1e-3 * t)})
    writer.write_checkpoints(0, {"embed.weight": embed})
    writer.finalize()
    return path


@pytest.fixture(scope="session")
def make_report_run():
    return _report_run


@pytest.fixture(scope="module")
def report_runs(tmp_path_factory):
    """Two modular runs that memorize at 400 and generalize at 1500 and 1200 (seeds 0, 1)."""
    root = tmp_path_factory.mktemp("runs")
    _report_run(root / "a.zarr")
    _report_run(root / "b.zarr", gen=1200, seed=1)
    return root
