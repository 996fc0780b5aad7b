"""``grokscope train``: one run from a preset and flags into a run store.

Its options are generated from :class:`~grokscope.config.run.RunConfig`, one per field (``n_train`` →
``--n-train``; booleans as ``--tied/--no-tied``), with the field's comment as help, so the CLI and the config
never drift apart.  Unset options leave the preset's value.
"""


import dataclasses
import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grokscope.config.presets import PRESETS, from_preset
from grokscope.config.resolve import resolve
from grokscope.config.run import RunConfig
from grokscope.errors import ConfigError, StoreError

_SKIP = {"preset"}  # not a flag of its own


def field_help() -> dict[str, str]:
    """Each RunConfig field's ``help`` metadata: the single place options are explained."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(RunConfig)}


def _base_type(annotation: Any) -> type:
    hint = eval(annotation, vars(typing)) if isinstance(annotation, str) else annotation  # noqa: S307
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return args[0]
    return hint


def field_types() -> dict[str, type]:
    """Each RunConfig field's value type (``int | None`` → ``int``)."""
    return {f.name: _base_type(f.type) for f in dataclasses.fields(RunConfig) if f.name not in _SKIP}


def config_parameters(as_lists: bool = False) -> list[inspect.Parameter]:
    """One keyword parameter (a Typer option defaulting to None) per RunConfig field; with ``as_lists``
    every option takes text (a comma list or a start:stop:step range, for sweeps)."""
    helps = field_help()
    params = []
    for name, kind in field_types().items():
        flag = "--" + name.replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool and not as_lists else [flag]
        default = getattr(RunConfig, name, None)
        option = typer.Option(*decls, help=f"{helps.get(name, '')} [default: {default!r}]",
                              rich_help_panel="Run configuration", show_default=False)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[Optional[str if as_lists else kind], option]))
    return params


def build_config(preset: Optional[str], values: dict[str, Any]) -> RunConfig:
    """The resolved config for a preset and the given flags (raises ConfigError before anything is written)."""
    return resolve(from_preset(preset, **values))


def check_device(name: str) -> None:
    """Refuse a device this machine lacks (``--device cuda`` without a GPU, an unknown string) in one line,
    before anything is written."""
    try:
        from grokscope.trainers.train import resolve_device
    except ImportError as exc:  # analysis works without torch; training does not
        raise ConfigError(f"training needs torch ({exc}); install it with `pip install torch`") from None
    resolve_device(name)


def train_command(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run store to create (a .zarr "
                                                                     "directory).")] = None,
    preset: Annotated[Optional[str], typer.Option(help=f"Start from a preset: {', '.join(PRESETS)}.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run store at --out.")] = False,
    resume: Annotated[Optional[Path], typer.Option(help="Continue a stopped run from its last commit, or from "
                                                        "step 0 if it stopped before its first (its own config; "
                                                        "no other flags).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    **values: Any,
) -> None:
    """Train one run and write its metrics and checkpoints into a Zarr run store."""
    if resume is not None:
        flags = (["--out"] * (out is not None) + ["--preset"] * (preset is not None)
                 + ["--" + k.replace("_", "-") for k, v in values.items() if v is not None])
        if flags:
            raise ConfigError(f"--resume continues a run with its own config; drop {', '.join(flags)}")
        _run(None, resume, quiet, resume=True)
        return
    if out is None:
        raise ConfigError("give --out STORE (or --resume STORE)")
    cfg = build_config(preset, values)
    check_device(cfg.device)
    if out.exists():
        if not overwrite:
            raise StoreError(f"{out} already exists; pass --overwrite to replace it")
        from grokscope.store.runs import remove_store

        remove_store(out)
    if not out.parent.exists():
        out.parent.mkdir(parents=True)
    _run(cfg, out, quiet)


def _run(cfg: Optional[RunConfig], out: Path, quiet: bool, resume: bool = False) -> None:
    try:
        from grokscope.trainers import train
    except ImportError as exc:  # analysis works without torch; training does not
        raise ConfigError(f"training needs torch ({exc}); install it with `pip install torch`") from None
    from grokscope.cli.progress import TrainingProgress
    from grokscope.store.reader import RunStore

    steps = cfg.steps if cfg is not None else int(RunStore(out).config["steps"])
    with TrainingProgress(steps, enabled=not quiet) as progress:
        path = train(cfg, out, on_flush=progress.update, resume=resume)
    status = RunStore(path).attrs
    if status.get("status") == "diverged":
        print(f"{path}: diverged at step {status.get('diverged_at')} (non-finite train loss)", file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)


# Typer reads the signature: add the generated config options after the fixed ones.
_fixed = [p for p in inspect.signature(train_command).parameters.values() if p.kind != p.VAR_KEYWORD]
train_command.__signature__ = inspect.Signature(_fixed + config_parameters())  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
