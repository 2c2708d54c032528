"""The shared train and test loops."""
from training.loops import Diverged, EpochMetrics, evaluate, train_epoch

__all__ = ["Diverged", "EpochMetrics", "evaluate", "train_epoch"]
