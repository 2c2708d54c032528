"""The shared train and test loops."""
from training.loops import Diverged, EpochMetrics, TrainingStep, evaluate, train_epoch

__all__ = ["Diverged", "EpochMetrics", "TrainingStep", "evaluate", "train_epoch"]
