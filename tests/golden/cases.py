"""Golden cases for the training loops (``train``, ``train_batched``, ``distill``): tiny, fixed runs whose
stores are recorded by ``record_loops.py`` into ``loops.npz`` and re-trained by ``tests/test_loops_golden.py``.

``tests`` is not a package: both load this file by its path (:func:`load_cases`).  Each case is a function
``build(root) -> {member: store path}`` training into the empty folder ``root``; :func:`collect` turns those
stores into the flat ``{"<member>/<array>": ndarray}`` the golden file keeps (prefixed with the case name).

What is kept per store: every per-step array (first dim ``step``, trimmed to the committed steps, dtypes as
stored), the root data arrays (``train_idx``/``test_idx``), the committed checkpoint steps and the last
checkpoint's parameters, ``n_steps``/``n_ckpts``, the final ``status`` and, when present, ``diverged_at``;
distillation stores add each teacher's ``test_acc`` and, continual ones, the ``forgetting`` summary.
Every run is pinned to ``device="cpu"`` and one torch thread (:func:`deterministic`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "loops.npz"
FLUSH_ROWS_RESUME = 32  # the resume case flushes every 32 steps and is stopped after its first flush


def load_cases():
    """This module, imported by file path (``tests`` is no package)."""
    name = "grokscope_golden_cases"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """One intra-op thread while training (CPU reductions then round the same way every time)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def flush_rows(rows: int) -> Iterator[None]:
    """Blocks of ``rows`` steps (what GROKSCOPE_FLUSH_ROWS sets at import), as tests/conftest.py does."""
    from grokscope.trainers import recording

    saved = recording.FLUSH_ROWS
    recording.FLUSH_ROWS = rows
    try:
        yield
    finally:
        recording.FLUSH_ROWS = saved


# --- configs ---------------------------------------------------------------------------------------------

SMALL = dict(p=23, d_model=32, d_mlp=64, device="cpu")  # demo preset (nanda format, no LayerNorm, ReLU), shrunk
SINGH = dict(moduli="11,13", d_model=16, d_mlp=64, batch_size=None, device="cpu")  # singh2025 (StableMax), shrunk


def demo(**values):
    from grokscope.config.presets import from_preset

    return from_preset("demo", **{**SMALL, **values})


def _train(cfg, out: Path) -> Path:
    from grokscope.trainers.train import train

    return train(cfg, out)


def _batched(root: Path, cfgs) -> dict[str, Path]:
    from grokscope.trainers.batched import train_batched

    paths = train_batched(cfgs, [root / f"m{i}.zarr" for i in range(len(cfgs))])
    return {f"m{i}": p for i, p in enumerate(paths)}


# --- a. … e.: single runs (grokscope.trainers.train.train) ---------------------------------------------------

def single_full_batch(root):
    return {"run": _train(demo(steps=100, eval_every=1), root / "run.zarr")}


def single_mini_batch(root):
    return {"run": _train(demo(steps=120, batch_size=32, eval_every=5, ckpt_every=20, ckpt_early=3),
                          root / "run.zarr")}


def single_mlp_sgd(root):
    return {"run": _train(demo(model="mlp", steps=100, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-3,
                               eval_every=2), root / "run.zarr")}


def single_mlp_sgd_mini_batch(root):
    return {"run": _train(demo(model="mlp", steps=100, optimizer="sgd", lr=0.1, weight_decay=0.0, batch_size=48,
                               eval_every=7), root / "run.zarr")}


def single_stablemax(root):
    return {"run": _train(demo(steps=100, loss="stablemax", eval_every=3), root / "run.zarr")}


def single_mse_adam_mini_batch(root):
    return {"run": _train(demo(steps=80, loss="mse", optimizer="adam", weight_decay=0.1, batch_size=40, eval_every=4,
                               loss_dtype="float32"), root / "run.zarr")}


def single_diverge_stop(root):
    return {"run": _train(demo(steps=60, lr=1e3, on_divergence="stop"), root / "run.zarr")}


def single_diverge_continue(root):
    return {"run": _train(demo(steps=60, lr=1e3, on_divergence="continue", eval_every=2), root / "run.zarr")}


def single_diverge_stop_mini_batch(root):
    return {"run": _train(demo(steps=60, lr=1e3, batch_size=32, eval_every=4, on_divergence="stop"),
                          root / "run.zarr")}


def single_subclasses(root):
    from grokscope.config.presets import from_preset

    cfg = from_preset(task="equidistant", n_train=400, n_test=200, d_model=32, steps=80, eval_every=2,
                      downsample_frac=0.3, device="cpu")
    return {"run": _train(cfg, root / "run.zarr")}


def single_subclasses_transformer_mini_batch(root):
    from grokscope.config.presets import from_preset

    cfg = from_preset(task="equidistant", model="transformer", n_layers=1, d_model=16, n_heads=2, d_mlp=32,
                      n_train=300, n_test=120, steps=60, batch_size=64, eval_every=5, device="cpu")
    return {"run": _train(cfg, root / "run.zarr")}


def single_resume(root):
    """Stopped (an on_flush that raises) after its first 32-step flush, then resumed; ``whole`` is the same run
    uninterrupted.  Mini-batched, so the batch order must survive the resume."""
    from grokscope.trainers.train import train

    cfg = demo(steps=100, batch_size=32, eval_every=3, ckpt_every=10)

    class Stop(Exception):
        pass

    def stop(step, latest):
        raise Stop

    cut = root / "resumed.zarr"
    with flush_rows(FLUSH_ROWS_RESUME):
        try:
            train(cfg, cut, on_flush=stop)
        except Stop:
            pass
        from grokscope.store.reader import RunStore

        stopped = RunStore(cut)
        assert stopped.status == "running" and stopped.n_steps == FLUSH_ROWS_RESUME, (stopped.status, stopped.n_steps)
        resumed = train(None, cut, resume=True)
    return {"resumed": resumed, "whole": _train(cfg, root / "whole.zarr")}


# --- f.: batched groups (grokscope.trainers.batched.train_batched) -------------------------------------------

def batched_full_batch(root):
    return _batched(root, [demo(steps=100, eval_every=2, seed=s, frac=f, lr=lr, weight_decay=wd)
                           for s, f, lr, wd in [(0, 1.0, 1e-3, 1.0), (1, 0.6, 3e-3, 0.5), (2, 0.8, 1e-3, 0.0)]])


def batched_mini_batch_adam(root):
    return _batched(root, [demo(steps=100, optimizer="adam", batch_size=32, eval_every=5, seed=s, frac=f, lr=lr)
                           for s, f, lr in [(0, 1.0, 1e-3), (3, 0.5, 2e-3)]])


def batched_diverge_stop(root):
    return _batched(root, [demo(steps=60, eval_every=3, lr=lr, on_divergence="stop") for lr in (1e3, 1e-3)])


def batched_diverge_continue_mini_batch(root):
    return _batched(root, [demo(steps=60, eval_every=3, lr=lr, batch_size=32, on_divergence="continue")
                           for lr in (1e-3, 1e3)])


def batched_subclasses_mlp(root):
    from grokscope.config.presets import from_preset

    return _batched(root, [from_preset(task="equidistant", n_train=n, n_test=200, d_model=32, steps=60,
                                       eval_every=3, seed=s, device="cpu") for n, s in [(400, 0), (250, 1)]])


# --- g.: distillation (grokscope.trainers.distill.distill), on tiny singh teachers --------------------------

def _teachers(root, *ps) -> dict[int, Path]:
    from grokscope.config.presets import from_preset

    return {p: _train(from_preset("singh2025", p=p, **SINGH, steps=40), root / f"t{p}.zarr") for p in ps}


def _distill(teacher: Path, out: Path, **values) -> Path:
    from grokscope.trainers.distill import distill, distill_config, load_teacher

    cfg = distill_config(load_teacher(teacher).cfg, teacher=str(teacher), device="cpu", **values)
    return distill(cfg, out)


def distill_single(root):
    t = _teachers(root, 13)
    return {"teacher13": t[13],
            "student": _distill(t[13], root / "s.zarr", p=11, kd_setup="single", steps=60, eval_every=2)}


def distill_single_mini_batch(root):
    t = _teachers(root, 13)
    return {"student": _distill(t[13], root / "s.zarr", p=11, kd_setup="single", kd_alpha=0.3, steps=60,
                                batch_size=16, eval_every=3)}


def distill_joint(root):
    t = _teachers(root, 13, 11)
    return {"teacher11": t[11],
            "student": _distill(t[13], root / "s.zarr", p=11, kd_setup="joint", teacher2=str(t[11]), steps=50,
                                kd_position="answer", temperature=2.0, kd_alpha=0.7, d_model=32)}


def distill_continual(root):
    t = _teachers(root, 13)
    return {"student": _distill(t[13], root / "s.zarr", p=11, kd_setup="continual", steps=60, eval_every=3)}


CASES: dict[str, Callable[[Path], dict[str, Path]]] = {f.__name__: f for f in (
    single_full_batch, single_mini_batch, single_mlp_sgd, single_mlp_sgd_mini_batch, single_stablemax,
    single_mse_adam_mini_batch, single_diverge_stop, single_diverge_continue, single_diverge_stop_mini_batch,
    single_subclasses, single_subclasses_transformer_mini_batch, single_resume,
    batched_full_batch, batched_mini_batch_adam, batched_diverge_stop, batched_diverge_continue_mini_batch,
    batched_subclasses_mlp,
    distill_single, distill_single_mini_batch, distill_joint, distill_continual,
)}


# --- what is recorded ------------------------------------------------------------------------------------------

def step_arrays(path: Path) -> list[str]:
    """The store's per-step arrays: root arrays whose first dimension is ``step`` (the step coordinate aside)."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = zarr.open_group(str(path), mode="r")
        return sorted(name for name, arr in group.arrays()
                      if name != "step" and (arr.metadata.dimension_names or ("",))[0] == "step")


def collect_store(path: Path) -> dict[str, np.ndarray]:
    from grokscope.store.reader import RunStore

    store = RunStore(path)
    out: dict[str, np.ndarray] = {}
    for name in step_arrays(path):
        out[name] = np.asarray(store.read(name))
    for name in ("step", "train_idx", "test_idx"):
        out[name] = np.asarray(store.read(name))
    out["n_steps"] = np.asarray(store.n_steps, dtype=np.int64)
    out["n_ckpts"] = np.asarray(store.n_ckpts, dtype=np.int64)
    out["ckpt_steps"] = np.asarray(store.checkpoint_steps())
    for name in store.param_names():
        out[f"ckpt_last.{name}"] = np.asarray(store.read_param(name, -1))
    out["status"] = np.asarray(store.status)
    if store.attrs.get("diverged_at") is not None:
        out["diverged_at"] = np.asarray(int(store.attrs["diverged_at"]), dtype=np.int64)
    if "distill" in store.attrs:
        out["distill_teacher_test_acc"] = np.asarray([t["test_acc"] for t in store.attrs["distill"]["teachers"]])
        out["distill_teacher_ckpt_step"] = np.asarray([t["step"] for t in store.attrs["distill"]["teachers"]],
                                                      dtype=np.int64)
    if "forgetting" in store.attrs:
        f = store.attrs["forgetting"]
        out["forgetting"] = np.asarray([f[k] for k in ("initial_acc", "min_acc", "min_step", "max_drop", "final_acc")],
                                       dtype=np.float64)
    return out


def collect(stores: dict[str, Path]) -> dict[str, np.ndarray]:
    """``{"<member>/<array>": value}`` over a case's stores."""
    return {f"{member}/{name}": value for member, path in stores.items()
            for name, value in collect_store(Path(path)).items()}


def run_case(name: str, root: Path) -> dict[str, np.ndarray]:
    """Train case ``name`` into the empty folder ``root`` and collect its arrays (one torch thread)."""
    root.mkdir(parents=True, exist_ok=True)
    with deterministic():
        stores = CASES[name](root)
    return collect(stores)


MACHINE = "machine"  # the golden file's one key that is no case: where it was recorded (:func:`machine`)


def machine() -> str:
    """What decides how CPU torch rounds: its version and the vector unit its kernels use (AVX2, AVX512, …)."""
    import torch

    return f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}"


def recorded_on(path: Path = GOLDEN) -> str | None:
    """The :func:`machine` that recorded the golden file (None: not recorded)."""
    with np.load(path, allow_pickle=False) as npz:
        return str(npz[MACHINE]) if MACHINE in npz.files else None


def read_golden(path: Path = GOLDEN) -> dict[str, dict[str, np.ndarray]]:
    """``{case: {"<member>/<array>": value}}`` from the golden file."""
    cases: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            if key != MACHINE:
                case, rest = key.split("/", 1)
                cases.setdefault(case, {})[rest] = npz[key]
    return cases


__all__ = ["CASES", "GOLDEN", "MACHINE", "collect", "deterministic", "load_cases", "machine", "read_golden",
           "recorded_on", "run_case"]
