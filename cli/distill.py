"""``grokscope distill``: train a student from one or two teacher run stores (seed 000) into a run store.

The student starts from the (last) teacher's config; ``--preset`` and every ``grokscope train`` flag override
it.  ``--kd-alpha``, ``--temperature`` and ``--kd-position`` set the loss; ``--joint`` and ``--continual`` pick
the setup (see docs/distill.md).  No ``from __future__ import annotations``: Typer reads the signature below.
"""

import inspect
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grokscope.cli.train import check_device, config_parameters
from grokscope.config.presets import PRESETS
from grokscope.errors import ConfigError, StoreError

_OWN = {"kd_setup", "teacher", "teacher2", "teacher_ckpt"}  # set by this command's own options


def distill_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run store to create (a .zarr directory).")],
    teacher: Annotated[list[Path], typer.Option(
        metavar="STORE", help="Teacher run store (repeat for --joint: first the other task's, then the student's).")],
    joint: Annotated[bool, typer.Option(help="Two teachers: train on the union of both tasks' training sets.")]
    = False,
    continual: Annotated[bool, typer.Option(help="Start from the teacher's weights; log its task's accuracy.")]
    = False,
    teacher_ckpt: Annotated[int, typer.Option(help="Checkpoint index of the teachers' weights (-1: the last).")]
    = -1,
    preset: Annotated[Optional[str], typer.Option(help=f"A preset applied over the teacher's config: "
                                                       f"{', '.join(PRESETS)}.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run store at --out.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    **values: Any,
) -> None:
    """Distil one or two grokked teachers into a student (L = (1 − α)·CE + α·KL) and write its run store."""
    if joint and continual:
        raise ConfigError("choose --joint or --continual, not both")
    setup = "joint" if joint else "continual" if continual else "single"
    if len(teacher) != (2 if joint else 1):
        raise ConfigError(f"{setup} distillation takes {'two --teacher stores' if joint else 'one --teacher store'}, "
                          f"got {len(teacher)}")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} already exists; pass --overwrite to replace it")
    try:
        from grokscope.trainers.distill import check_distillation, distill, distill_config, load_teacher
    except ImportError as exc:  # analysis works without torch; training does not
        raise ConfigError(f"distillation needs torch ({exc}); install it with `pip install torch`") from None
    from grokscope.cli.progress import TrainingProgress

    last = load_teacher(teacher[-1], teacher_ckpt)
    cfg = distill_config(last.cfg, preset, **values, kd_setup=setup, teacher=str(teacher[0]),
                         teacher2=str(teacher[1]) if joint else None, teacher_ckpt=teacher_ckpt)
    teachers = check_distillation(cfg)  # every refusal happens here, before anything is written
    check_device(cfg.device)
    for t in teachers:
        print(f"teacher {t.path}: p={t.cfg.p}, checkpoint {t.ckpt} (step {t.step})", file=sys.stderr)
    if out.exists():
        from grokscope.store.runs import remove_store

        remove_store(out)
    if not out.parent.exists():
        out.parent.mkdir(parents=True)
    with TrainingProgress(cfg.steps, enabled=not quiet) as progress:
        path = distill(cfg, out, teachers=teachers, on_flush=progress.update)
    if setup == "continual":
        from grokscope.store.reader import RunStore

        f = RunStore(path).attrs["forgetting"]
        print(f"forgetting of p={teachers[0].cfg.p}: test accuracy {f['initial_acc']:.3f} at the start, "
              f"lowest {f['min_acc']:.3f} at step {f['min_step']} (max drop {f['max_drop']:.3f}), "
              f"final {f['final_acc']:.3f}", file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)


# Typer reads the signature: the fixed options, then every train flag but those this command sets itself.
_fixed = [p for p in inspect.signature(distill_command).parameters.values() if p.kind != p.VAR_KEYWORD]
distill_command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    _fixed + [p for p in config_parameters() if p.name not in _OWN])


def register(app: typer.Typer) -> None:
    app.command("distill")(distill_command)
