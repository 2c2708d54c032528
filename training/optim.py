"""How a model is optimized and scheduled: the shared default, and the shape a model file's own takes.

A model file may define

    def configure_optimizers(model, recipe, batches_per_epoch) -> TrainingMethod

in plain PyTorch; without one, `sgd_step_lr` below trains it. The loops step a per-batch scheduler
after every batch and a per-epoch scheduler after every epoch.
"""
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from settings import SGDRecipe


@dataclass
class TrainingMethod:
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    step: Literal["batch", "epoch"] = "epoch"  # when the scheduler steps

    def __post_init__(self) -> None:
        if self.step not in ("batch", "epoch"):
            raise ValueError(f"a scheduler steps per 'batch' or per 'epoch', not {self.step!r}")

    @property
    def batch_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        return self.scheduler if self.step == "batch" else None

    @property
    def epoch_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        return self.scheduler if self.step == "epoch" else None

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def __str__(self) -> str:
        schedule = f" + {type(self.scheduler).__name__} (per {self.step})" if self.scheduler else ""
        return type(self.optimizer).__name__ + schedule


def sgd_step_lr(model: nn.Module, recipe: SGDRecipe, batches_per_epoch: int) -> TrainingMethod:
    """The default: SGD with momentum and weight decay; StepLR multiplies the rate by gamma every step_size epochs."""
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    return TrainingMethod(optimizer, torch.optim.lr_scheduler.StepLR(optimizer, recipe.step_size, recipe.gamma))
