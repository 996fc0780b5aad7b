"""Everything torch: models, losses, data tensors and the training loop (installed as grokscope.trainers)."""

from grokscope.trainers.train import train

__all__ = ["train"]
