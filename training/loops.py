"""One epoch of training and one pass of evaluation, in the shape of PyTorch's MNIST example."""
import math
import time
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training.distillation import Teacher
from training.precision import Precision


@dataclass(frozen=True)
class EpochMetrics:
    loss: float
    correct: int
    total: int
    seconds: float
    batches: int = 0
    last_batch_loss: float = math.nan

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0

    def bar_line(self) -> str:
        """The finished progress bar as one line, for log files (which keep no bar redraws)."""
        return (f"Loss={self.last_batch_loss:.4f} Batch_id={self.batches - 1} Accuracy={self.accuracy:.2f}: 100% "
                f"{self.batches}/{self.batches} [{self.seconds:.1f}s, {self.batches / self.seconds:.2f}it/s]")


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class TrainingStep:
    """One update on a batch, as PyTorch's MNIST example writes it: zero the gradients, forward, loss, backward,
    step. `forward` is the model or its compiled training forward; the loss is the NLL of the model's
    log-probabilities, against targets smoothed by `label_smoothing` where that is given, blended with the loss on a
    `teacher`'s softened outputs where there is one."""

    def __init__(self, forward: nn.Module, optimizer: torch.optim.Optimizer, precision: Precision,
                 label_smoothing: float = 0.0, teacher: Teacher | None = None) -> None:
        self.forward, self.optimizer, self.precision = forward, optimizer, precision
        self.label_smoothing, self.teacher = label_smoothing, teacher

    def train(self) -> "TrainingStep":
        self.forward.train()
        return self

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's loss and the model's output, both left on the device."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            output = self.forward(images)
            taught = self.teacher(images) if self.teacher is not None else None
        loss = training_loss(output.float(), labels, self.label_smoothing)
        if self.teacher is not None:
            loss = self.teacher.blend(loss, output.float(), taught)
        self.precision.backward_and_step(loss, self.optimizer)
        return loss, output


def running_sums(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeroed sums of loss and of correct predictions on `device`. The loss adds up in float64 as the Python float
    it replaces did (so CPU records are unchanged); MPS has no float64, and adds up in float32."""
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.zeros((), dtype=dtype, device=device), torch.zeros((), dtype=torch.int64, device=device)


def read_every(device: torch.device) -> int:
    """Steps between reads of the running loss and accuracy. A read waits for the device: on a CPU that costs
    nothing, so every step is read (and a diverged batch named exactly); a GPU is read every few dozen steps,
    so the host keeps queueing work ahead of it."""
    return 1 if device.type == "cpu" else 50


def train_epoch(step: TrainingStep, loader: Iterable,
                device: torch.device, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                progress: bool = True, position: int = 0) -> EpochMetrics:
    """Train for one pass over `loader` with `step` (a TrainingStep, or a GraphedStep on CUDA), stepping
    `scheduler` (a per-batch one) after every batch. Loss and accuracy add up on the device and are read
    every `read_every(device)` steps and at the end.

    The bar reads `Loss=0.0810 Batch_id=468 Accuracy=93.30` as published.
    """
    step.train()
    started = time.perf_counter()
    every = read_every(device)
    loss_sum, correct = running_sums(device)
    seen, batches, batch_loss = 0, 0, math.nan
    bar = tqdm(loader, disable=not progress, position=position, leave=position == 0, dynamic_ncols=True)
    for batch_id, (images, labels) in enumerate(bar):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        loss, output = step(images, labels)
        if scheduler is not None:
            scheduler.step()

        loss_sum += loss.detach().to(loss_sum.dtype) * len(labels)
        correct += (output.argmax(dim=1) == labels).sum()
        seen += len(labels)
        batches += 1
        if batches % every == 0 or batches == len(loader):
            batch_loss = loss.item()
            if not math.isfinite(batch_loss) or not math.isfinite(loss_sum.item()):
                bar.close()
                raise Diverged(f"training loss became {batch_loss} {'at' if every == 1 else 'by'} batch {batch_id}")
            bar.set_description(f"Loss={batch_loss:.4f} Batch_id={batch_id} "
                                f"Accuracy={100.0 * correct.item() / seen:.2f}", refresh=False)
    bar.close()
    return EpochMetrics(loss_sum.item() / max(seen, 1), int(correct.item()), seen, time.perf_counter() - started,
                        batches, loss.item() if batches else batch_loss)


def training_loss(log_probabilities: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """NLL against the labels or, with smoothing s, against targets of 1 - s + s/C for the label and s/C elsewhere.
    cross_entropy's log_softmax leaves log-probabilities as they are, so it smooths the models' outputs exactly."""
    if label_smoothing:
        return F.cross_entropy(log_probabilities, labels, label_smoothing=label_smoothing)
    return F.nll_loss(log_probabilities, labels)


def evaluate(model: nn.Module, loader: Iterable, device: torch.device,
             precision: Precision | None = None) -> EpochMetrics:
    """Average NLL loss and accuracy over `loader`, in eval mode, without autograd; the sums stay on the device
    until the end."""
    precision = precision or Precision("fp32", device)
    model.eval()
    started = time.perf_counter()
    loss_sum, correct = running_sums(device)
    seen, batches = 0, 0
    with torch.inference_mode():
        for batches, (images, labels) in enumerate(loader, start=1):
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with precision.autocast():
                output = model(images)
            loss_sum += F.nll_loss(output.float(), labels, reduction="sum").to(loss_sum.dtype)
            correct += (output.argmax(dim=1) == labels).sum()
            seen += len(labels)
    return EpochMetrics(loss_sum.item() / max(seen, 1), int(correct.item()), seen, time.perf_counter() - started,
                        batches)


def test_line(metrics: EpochMetrics, name: str = "Test set") -> str:
    """The published test line: `Test set: Average loss: 0.0769, Accuracy: 9750/10000 (97.50%)`."""
    return (f"{name}: Average loss: {metrics.loss:.4f}, "
            f"Accuracy: {metrics.correct}/{metrics.total} ({metrics.accuracy:.2f}%)")
