"""A rich progress bar on stderr for training (only a final line when stderr is not a terminal)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class TrainingProgress:
    """Context manager whose :meth:`update` matches the trainer's ``on_flush(step, latest)`` callback."""

    def __init__(self, steps: int, enabled: bool = True, label: str = "train") -> None:
        self.enabled = enabled
        self.progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.description}"), console=Console(stderr=True),
                                 disable=not enabled)
        self.task = self.progress.add_task("", total=steps + 1)

    def __enter__(self) -> TrainingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, step: int, latest: dict[str, float]) -> None:
        text = "  ".join(f"{k} {v:.3g}" for k, v in latest.items() if v == v)
        self.progress.update(self.task, completed=step + 1, description=text)
