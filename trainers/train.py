"""The training loop: one run from a config to a complete run store.

Reads top to bottom in execution order: resolve, seed, data, model, optimizer, store; then per step the
forward pass, metrics, checkpoint, backward and update.  Metrics stay on the device in the
:class:`~grokscope.trainers.recording.Recorder`'s row buffer and reach the host only when a block is flushed to
the store (no per-step host syncs); checkpoints stream out with the same flushes, so memory stays flat however
long the run.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from grokscope.config.resolve import checkpoint_steps, mini_batched, resolve
from grokscope.config.run import RunConfig
from grokscope.errors import ConfigError, StoreError
from grokscope.store.resume import load_resume_state
from grokscope.store.writer import RunWriter
from grokscope.trainers.data import load_task
from grokscope.trainers.evaluate import test_metrics, train_set_metrics
from grokscope.trainers.losses import accuracy, loss_fn, test_loss_fn
from grokscope.trainers.models import build_model
from grokscope.trainers.recording import BATCH_METRICS, OnFlush, Recorder, create_writer
from grokscope.trainers.state import capture, restore


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else must exist on this machine.

    Raises :class:`ConfigError` (one line, before anything is written) for a device string torch does not
    know, or a device this machine lacks (cuda without a CUDA GPU, ``cuda:N`` past the last GPU, mps off Apple
    silicon).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r}: this machine has no CUDA GPU that torch can use "
                              f"(torch {torch.__version__}); use --device cpu or auto")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r}: this machine has {count} CUDA GPU(s), cuda:0 … cuda:{count - 1}")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f"device {name!r}: Apple's MPS is not available here; use --device cpu or auto")
    elif device.type != "cpu":
        raise ConfigError(f"device {name!r} is not supported; use auto, cpu, cuda, cuda:N or mps")
    return device


def make_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def train(cfg: RunConfig | None, out: str | Path, *, on_flush: OnFlush | None = None,
          resume: bool = False) -> Path:
    """Train one run and write its store at ``out`` (which must not exist).  Returns the store path.

    With ``resume=True``, ``out`` is a stopped run's store: its own config is used (``cfg`` is ignored) and
    training continues from its last commit, reproducing the uninterrupted run exactly (on CPU, bit for
    bit); a store that holds no resume state (stopped before its first flush, or trained in a batched group)
    is trained again from step 0 into the same store.  ``on_flush(step, latest)`` is called after every block
    write with the newest logged values (the CLI's progress bar).  Validation errors
    (:class:`~grokscope.errors.ConfigError`) happen before anything is written.

    Mini-batched runs log ``train_loss``/``train_acc`` over the whole training set at evaluation steps (NaN
    between) and each step's batch values as ``batch_loss``/``batch_acc``.  A non-finite training loss (the
    batch loss when mini-batched) ends the run with status ``diverged``; with ``on_divergence="stop"`` the
    store's rows end at that step (:class:`~grokscope.trainers.recording.Recorder`).

    Examples
    --------
    >>> from grokscope.config.run import from_preset
    >>> train(from_preset("demo", steps=200), "runs/tiny.zarr")  # doctest: +SKIP
    """
    start, state = 0, None
    if resume:
        writer = RunWriter.reopen(out)
        if writer.root.attrs.get("status") != "running":
            raise StoreError(f"{out} is {writer.root.attrs.get('status')}; only a stopped run can resume")
        cfg = RunConfig.from_dict(writer.root.attrs["config"])
        if (writer.resume or {}).get("slot"):
            start, state = load_resume_state(out)
    if getattr(cfg, "kd_setup", "none") != "none":
        raise ConfigError(f"kd_setup={cfg.kd_setup!r} is a distillation run: use grokscope distill")
    cfg = resolve(cfg)
    device = resolve_device(cfg.device)
    cfg = dataclasses.replace(cfg, device=str(device))
    torch.manual_seed(cfg.seed)
    task, data = load_task(cfg, device)
    if resume:  # the same data, or the continued run would not be the one that started
        for key in ("source", "test_source"):
            then, now = (a.get(key) or {} for a in (writer.root.attrs["task"], task.attrs))
            if then.get("sha256") != now.get("sha256"):
                raise StoreError(f"{out}: its data file {then.get('path')} changed since the run started "
                                 f"(sha256 differs); resuming would train on other data")
    model = build_model(cfg, data.n_inputs, data.n_classes).to(device)
    params = dict(model.named_parameters())
    optimizer = make_optimizer(cfg, params.values())
    batch_gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    n_train = len(data.train_y)

    mini_batch = mini_batched(cfg.batch_size, n_train)
    extra = BATCH_METRICS if mini_batch else ()  # train_* become whole-training-set values at eval steps
    if state is not None:
        restore(state, params, optimizer, batch_gen)
    elif resume:  # stopped before its first flush (or saved no state): the same run again, from step 0
        missing = [name for name in extra if name not in writer.metrics]
        if missing:
            raise StoreError(f"{out} has no {missing[0]} array (written by an older grokscope); train it again")
        writer.steps_written = writer.ckpts_written = 0
        writer.resume = None
        writer.commit()  # readers see no rows until the restarted run's first flush
    else:
        writer = create_writer(cfg, task, out, {n: tuple(p.shape) for n, p in params.items()},
                               model.param_dims(), model.param_roles(), device, extra)
    rng_at_step = batch_gen.get_state()  # the batch order at the start of the current step
    recorder = Recorder([writer], list(params), checkpoint_steps(cfg), device, on_flush, start=start,
                        resume_state=lambda: capture(params, optimizer, rng_at_step), n_groups=data.n_groups,
                        extra=extra, stop_on_divergence=cfg.on_divergence == "stop")
    not_evaluated = torch.full((2,), math.nan, dtype=torch.float64, device=device)
    groups_not_evaluated = torch.full((data.n_groups,), math.nan, dtype=torch.float64, device=device)
    train_loss, test_loss = loss_fn(cfg), test_loss_fn(cfg)
    per_example_loss = loss_fn(cfg, reduction="none")

    for step in range(start, cfg.steps + 1):
        last = step == cfg.steps  # the final row: evaluate θ_steps, no update
        if mini_batch:  # only mini-batches draw from the generator
            rng_at_step = batch_gen.get_state()
        if not mini_batch:
            xb, yb = data.train_x, data.train_y
        else:
            idx = torch.randint(n_train, (cfg.batch_size,), generator=batch_gen).to(device)
            xb, yb = data.train_x[idx], data.train_y[idx]
        with torch.set_grad_enabled(not last):
            logits = model(xb)  # (B, n_out) at the answer position ([CLS] for encoders)
            loss = train_loss(logits, yb)  # cfg.loss: softmax or StableMax CE, or MSE

        with torch.no_grad():
            evaluate = step % cfg.eval_every == 0 or last
            if evaluate:
                test, groups = test_metrics(model, data, test_loss)  # (2,), (G,) or None
            else:
                test, groups = not_evaluated, groups_not_evaluated
            batch = torch.stack([loss.detach().to(torch.float64), accuracy(logits, yb)])  # (2,)
            if not mini_batch:  # the batch is the training set
                whole = batch
            elif evaluate:
                whole = train_set_metrics(model, data.train_x, data.train_y, per_example_loss, data.train_chunk)
            else:
                whole = not_evaluated
            norms = torch.stack(torch._foreach_norm(list(params.values()))).to(torch.float64)  # (n_params,)
            row = torch.cat([whole, test, norms.square().sum().sqrt().view(1), *([batch] if mini_batch else [])])
            recorder.log(step, row[None], norms[None], [p[None] for p in params.values()], last,
                         None if groups is None else groups[None])
        if last or recorder.finished:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    recorder.finalize(cfg.steps)
    return writer.path
