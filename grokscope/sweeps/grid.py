"""Sweeps: a grid of run configs, their ids and groups, and the sweep index (pure; no torch).

A sweep directory holds ``sweep.json`` (the index: the grid and each run id's parameters, written by the
coordinating process only) and ``runs/<run id>.zarr``, one store per run, each written by the one worker that
trains it.  A run's status is read from its own store (complete, diverged, stopped_early, running or missing),
so workers never share a file and a stopped sweep resumes by training what is not finished.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grokscope.config.presets import from_preset
from grokscope.config.resolve import resolve, train_size, uses_mini_batches
from grokscope.config.run import RunConfig, field_names
from grokscope.errors import ConfigError, GrokscopeError
from grokscope.store.reader import RunStore
from grokscope.store.runs import is_run_store

INDEX = "sweep.json"
SWEEP_VERSION = 1
# Fields that may differ between runs trained together as one stacked model (grokscope.trainers.batched).
MEMBER_FIELDS = field_names(member=True)
MAX_PADDING = 0.1  # share of a stacked group's rows that may be padding (members' data sizes differ)
_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def parse_values(text: str, kind: type) -> list[Any]:
    """A flag value as a list: ``"0.2,0.3"``, a range ``"32:128:32"`` (start:stop:step, stop included), or a
    single value.  Booleans accept true/false.

    Examples
    --------
    >>> parse_values("32:128:32", int), parse_values("0.2,0.3", float)
    ([32, 64, 96, 128], [0.2, 0.3])
    """
    values: list[Any] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            raise ConfigError(f"empty value in {text!r}")
        if ":" in part and kind in (int, float):
            bounds = part.split(":")
            if len(bounds) != 3:
                raise ConfigError(f"a range is start:stop:step, got {part!r}")
            start, stop, step = (_convert(b, kind, text) for b in bounds)
            if step <= 0 or stop < start:
                raise ConfigError(f"range {part!r} must have step > 0 and stop ≥ start")
            count = int(round((stop - start) / step)) + 1
            values.extend(kind(round(start + i * step, 12)) for i in range(count) if start + i * step <= stop + 1e-12)
        else:
            values.append(_convert(part, kind, text))
    return values


def _convert(part: str, kind: type, text: str) -> Any:
    try:
        if kind is bool:
            if part.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return part.lower() in ("true", "1")
        if kind is int:
            value = float(part)
            if not value.is_integer():
                raise ValueError
            return int(value)
        return kind(part)
    except ValueError:
        raise ConfigError(f"cannot read {part!r} in {text!r} as {kind.__name__}") from None


def expand_grid(preset: str | None, fixed: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]) -> list[RunConfig]:
    """Every combination of ``grid`` values over ``preset`` + ``fixed`` (validated, in grid order)."""
    if any(len(v) == 0 for v in grid.values()):
        raise ConfigError("the sweep grid is empty")
    names = list(grid)
    return [from_preset(preset, **fixed, **dict(zip(names, combo)))
            for combo in itertools.product(*(grid[n] for n in names))]


def run_id(cfg: RunConfig, varied: Sequence[str]) -> str:
    """A file-name-safe id from the varied fields, e.g. ``d_model=64_frac=0.3_seed=1``."""
    parts = [f"{name}={getattr(cfg, name)}" for name in varied] or ["run"]
    return _SAFE.sub("-", "_".join(parts)).strip(".-") or "run"


def group_key(cfg: RunConfig) -> tuple:
    """Runs with equal keys can train as one stacked model: they differ only in :data:`MEMBER_FIELDS`, and
    either all draw mini-batches or none does (a member smaller than ``batch_size`` trains full-batch, as
    alone, so it cannot share a mini-batched group's steps)."""
    fields = tuple((f.name, getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                   if f.name not in MEMBER_FIELDS and f.name != "preset")
    return fields + (("mini_batch", uses_mini_batches(cfg)),)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A sweep's plan: the directory, the grid, and each run id with its config."""

    root: Path
    preset: str | None
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    runs: dict[str, RunConfig]

    def store_path(self, rid: str) -> Path:
        path = (self.root / "runs" / f"{rid}.zarr").resolve()
        if self.root.resolve() / "runs" not in path.parents:  # ids are sanitised; belt and braces
            raise GrokscopeError(f"run id {rid!r} escapes the sweep directory")
        return path

    def status(self, rid: str) -> str:
        """complete | diverged | stopped_early | running (a store exists but is not finished: stopped or in
        progress) | pending (no store) | foreign (something else at the store's path)."""
        path = self.store_path(rid)
        if not path.exists():
            return "pending"
        return RunStore(path).status if is_run_store(path) else "foreign"

    def index(self) -> dict[str, Any]:
        return {"grokscope_sweep": SWEEP_VERSION, "preset": self.preset, "fixed": self.fixed, "grid": self.grid,
                "runs": {rid: {"store": f"runs/{rid}.zarr", "params": {k: getattr(cfg, k) for k in self.grid},
                               "status": self.status(rid)} for rid, cfg in self.runs.items()}}

    def write_index(self, doc: Mapping[str, Any] | None = None) -> None:
        """Write ``sweep.json`` (``doc``, default :meth:`index`) atomically: temp file, then rename."""
        tmp = self.root / f".{INDEX}.tmp"
        tmp.write_text(json.dumps(doc or self.index(), indent=1))
        os.replace(tmp, self.root / INDEX)


def plan_sweep(root: str | os.PathLike, preset: str | None, fixed: Mapping[str, Any],
               grid: Mapping[str, Sequence[Any]]) -> Sweep:
    """The sweep at ``root``: new, or the same sweep resumed.  A directory that holds something else, or
    another sweep's index, is refused with a one-line :class:`GrokscopeError`."""
    root = Path(root)
    cfgs = expand_grid(preset, fixed, grid)
    varied = [name for name, values in grid.items() if len(values) > 1]
    runs: dict[str, RunConfig] = {}
    for cfg in cfgs:
        rid = run_id(cfg, varied)
        if rid in runs:
            raise ConfigError(f"two grid points give the same run id {rid!r}; list distinct values")
        runs[rid] = cfg
    sweep = Sweep(root, preset, dict(fixed), {k: list(v) for k, v in grid.items()}, runs)
    if (root / INDEX).exists():
        try:
            old = json.loads((root / INDEX).read_text())
        except ValueError:
            raise GrokscopeError(f"{root / INDEX} is not a readable sweep index") from None
        mine = sweep.index()
        if any(old.get(k) != mine[k] for k in ("preset", "fixed", "grid")) or set(old.get("runs", {})) != set(runs):
            raise GrokscopeError(f"{root} holds another sweep (different grid or settings); choose a new --out")
    elif root.exists() and any(root.iterdir()):
        raise GrokscopeError(f"{root} exists and is not a sweep directory; choose a new --out")
    return sweep


def groups(cfgs: Mapping[str, RunConfig], max_size: int, max_padding: float = MAX_PADDING) -> list[list[str]]:
    """Run ids that train together as one stacked model: equal :func:`group_key` (keys in first-seen
    order), at most ``max_size`` per group, and similar data sizes.

    A stacked group pads every member's training set to its largest; a sweep over data sizes 30 … 100 %
    would pad ~35 % of the rows it computes.  So within a key the runs are sorted by training-set size
    (largest first) and cut greedily: a group takes the next run while the padding stays at most
    ``max_padding`` of the rows the group computes (0: equal sizes only; 1: size is ignored).

    Examples
    --------
    >>> from grokscope.config.presets import from_preset
    >>> runs = {f"n{n}": from_preset("demo", n_train=n) for n in (100, 400, 380, 120)}
    >>> groups(runs, max_size=8, max_padding=0.1)
    [['n400', 'n380'], ['n120', 'n100']]
    """
    by_key: dict[tuple, list[tuple[int, str]]] = {}
    for rid, cfg in cfgs.items():
        by_key.setdefault(group_key(cfg), []).append((train_size(resolve(cfg)), rid))
    out: list[list[str]] = []
    for members in by_key.values():
        members.sort(key=lambda m: -m[0])  # stable: equal sizes keep their order
        group: list[tuple[int, str]] = []
        for size, rid in members:
            largest = group[0][0] if group else size
            padded = sum(largest - s for s, _ in group) + largest - size
            if group and (len(group) == max_size or padded > max_padding * largest * (len(group) + 1)):
                out.append([r for _, r in group])
                group = []
            group.append((size, rid))
        out.append([r for _, r in group])
    return out


def padding(cfgs: Sequence[RunConfig]) -> float:
    """Share of the rows a stacked group of ``cfgs`` computes that are padding (full batches)."""
    sizes = [train_size(resolve(c)) for c in cfgs]
    return 1 - sum(sizes) / (len(sizes) * max(sizes))
