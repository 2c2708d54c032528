"""How a model is optimized and scheduled: the shared default, and the shape a model file's own takes.

A model file may define

    def configure_optimizers(model, recipe, batches_per_epoch) -> TrainingMethod

in plain PyTorch; without one, `sgd` below trains it. The loops step a per-batch scheduler
after every batch and a per-epoch scheduler after every epoch. A method may also keep an average of
the weights (`exponential_average`): then the average, with batch-norm statistics recomputed for it after every
epoch (`recompute_statistics`), is what is evaluated and checkpointed; and it may ask for label smoothing, which the
training loop applies to its loss (evaluation always reports the plain NLL).
"""
import time
from dataclasses import dataclass
from typing import Iterable, Literal

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from core.settings import SGDRecipe


@dataclass
class TrainingMethod:
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    step: Literal["batch", "epoch"] = "epoch"  # when the scheduler steps
    average: AveragedModel | None = None  # weights averaged over the steps, evaluated in the model's place
    label_smoothing: float = 0.0  # the training loss's share of probability spread over the other classes

    def __post_init__(self) -> None:
        if self.step not in ("batch", "epoch"):
            raise ValueError(f"a scheduler steps per 'batch' or per 'epoch', not {self.step!r}")

    @property
    def batch_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        return self.scheduler if self.step == "batch" else None

    @property
    def epoch_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        return self.scheduler if self.step == "epoch" else None

    def evaluated(self, model: nn.Module) -> nn.Module:
        """What is evaluated and checkpointed: the averaged weights where the method keeps them, else the model."""
        return self.average.module if self.average is not None else model

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])  # a tensor where the step is a CUDA graph

    def __str__(self) -> str:
        schedule = f" + {type(self.scheduler).__name__} (per {self.step})" if self.scheduler else ""
        average = " + an exponential moving average of the weights" if self.average is not None else ""
        smoothing = f" + label smoothing {self.label_smoothing:g}" if self.label_smoothing else ""
        return type(self.optimizer).__name__ + schedule + average + smoothing


def exponential_average(model: nn.Module, optimizer: torch.optim.Optimizer, decay: float) -> AveragedModel:
    """A moving average of `model`'s weights, updated after every step of `optimizer`: average <- decay * average
    + (1 - decay) * weights. Only the weights: statistics averaged along the way were gathered by none of the weights
    being averaged, so batch norm's are recomputed for the average instead (recompute_statistics), as SWA does;
    until then they are the model's, copied after every step."""
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    optimizer.register_step_post_hook(lambda optimizer, args, kwargs: average.update_parameters(model))
    return average


def recompute_statistics(average: AveragedModel, loader: Iterable, generators: list[torch.Generator],
                         epoch_start: list[torch.Tensor], device: torch.device) -> float:
    """Batch norm's running statistics of the averaged weights, recomputed over one pass of the training `loader`
    (torch.optim.swa_utils.update_bn); its seconds. The loader's generators are set back to where the epoch started,
    so the pass sees the images the epoch trained on (augmented or not, as it was), and then to where they were, so
    the next epoch draws as it would have; the global generators (dropout) are left as they were."""
    started = time.perf_counter()
    after = [generator.get_state() for generator in generators]
    for generator, state in zip(generators, epoch_start, strict=True):
        generator.set_state(state)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        update_bn(loader, average, device)
    for generator, state in zip(generators, after):
        generator.set_state(state)
    return time.perf_counter() - started


ONE_CYCLE_DIV_FACTOR = 25  # OneCycleLR's default: the cycle starts at lr / 25


class OneCycleThenHold(torch.optim.lr_scheduler.OneCycleLR):
    """OneCycleLR that holds its last rate after the cycle instead of refusing to step."""

    def get_lr(self) -> list[float]:
        if self.last_epoch >= self.total_steps:
            # The cycle's cosine ends exactly at each group's min_lr: a Python float, where reading the group's rate
            # back would wait for the device on every step (it is a tensor under a CUDA graph).
            return [group["min_lr"] for group in self.optimizer.param_groups]
        return super().get_lr()


def sgd(model: nn.Module, recipe: SGDRecipe, batches_per_epoch: int) -> TrainingMethod:
    """The default: SGD with momentum and weight decay, its rate on the recipe's schedule - StepLR multiplies it by
    gamma every step_size epochs; one-cycle raises it from lr / 25 to lr over the warmup share of
    the cycle, lowers it along a cosine to lr times the floor at the cycle's end, and holds it there for any epochs
    after. With `ema_decay`, the moving average of the weights is what is evaluated and kept; with
    `label_smoothing`, the loss is taken against smoothed targets."""
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    average = exponential_average(model, optimizer, recipe.ema_decay) if recipe.ema_decay else None
    if recipe.schedule == "one-cycle":
        # The momentum stays the recipe's: cycling it against the rate would make it a second schedule to tune.
        cycle_epochs = min(recipe.cycle_epochs or recipe.epochs, recipe.epochs)
        steps = cycle_epochs * batches_per_epoch
        # OneCycleLR divides by the warmup's steps less one: a warmup of exactly one step (a short smoke run) takes two.
        warmup = 2 / steps if recipe.warmup * steps - 1 == 0 and steps >= 2 else recipe.warmup
        scheduler = OneCycleThenHold(optimizer, max_lr=recipe.lr, total_steps=steps,
                                     pct_start=warmup, div_factor=ONE_CYCLE_DIV_FACTOR,
                                     final_div_factor=1 / (ONE_CYCLE_DIV_FACTOR * recipe.floor), cycle_momentum=False)
        return TrainingMethod(optimizer, scheduler, step="batch", average=average,
                              label_smoothing=recipe.label_smoothing)
    return TrainingMethod(optimizer, torch.optim.lr_scheduler.StepLR(optimizer, recipe.step_size, recipe.gamma),
                          average=average, label_smoothing=recipe.label_smoothing)
