"""The training step as one CUDA graph: captured once, then replayed for every full batch.

A training step of these models is a few hundred small kernels; on a GPU, launching them takes longer than
running them. Captured as a CUDA graph, the whole step (forward, loss, backward, update) is one launch.
What a graph asks for, and how the run stays the same run:
- Static buffers: each batch is copied into the tensors the graph was captured with. The smaller batch that
  ends an epoch runs eagerly, on the same parameters and optimizer state.
- The learning rate as a device tensor, which the schedulers fill in place, so every replay uses the current
  rate: SGD then runs its fused kernel, Adam and AdamW their `capturable` form.
- Capture needs a few steps beforehand (on a side stream); the weights, batch-norm statistics, optimizer state
  and random state are put back after them, so the first replayed step is the run's first step.
A method that keeps an average of the weights, or fp16's gradient scaler, decides on the host every step;
those runs step eagerly (`why_not_graphed`).
"""
import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import torch

from training.loops import TrainingStep
from training.optim import TrainingMethod

WARM_UP_STEPS = 3  # before capture: libraries pick their kernels and allocate their workspaces on these
CAPTURABLE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


def why_not_graphed(method: TrainingMethod, step: TrainingStep) -> str | None:
    """Why this run's step cannot be one CUDA graph, or None when it can."""
    if method.average is not None:
        return "the method keeps an average of the weights"
    if step.precision.scaler is not None:
        return "fp16's gradient scaler"
    if not isinstance(method.optimizer, CAPTURABLE):
        return f"{type(method.optimizer).__name__} has no capturable form"
    return None


def make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """The learning rate as a tensor on `device` (schedulers fill it in place) and an update with no host
    decisions in it: fused SGD, or Adam's capturable form."""
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]), device=device)
        if isinstance(optimizer, torch.optim.SGD):
            group["foreach"], group["fused"] = False, device.type == "cuda"
        else:
            group["capturable"] = True


@dataclass
class TrainingState:
    """Copies of what a step changes: parameters, buffers, the optimizer's state, the random generators."""
    tensors: list[torch.Tensor]
    saved: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    optimizer_saved: dict[int, torch.Tensor]
    rng: torch.Tensor
    cuda_rng: torch.Tensor | None

    @classmethod
    def save(cls, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> "TrainingState":
        tensors = [*module.parameters(), *module.buffers()]
        cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(tensors, [t.detach().clone() for t in tensors], optimizer,
                   {id(t): t.clone() for t in optimizer_tensors(optimizer)}, torch.get_rng_state(), cuda)

    def restore(self) -> None:
        """Everything back in place (the same tensors, which a captured graph refers to); optimizer state created
        since (SGD's momentum on its first step) is zeroed, which steps exactly as the state not yet made."""
        with torch.no_grad():
            for tensor, saved in zip(self.tensors, self.saved):
                tensor.copy_(saved)
            for tensor in optimizer_tensors(self.optimizer):
                saved = self.optimizer_saved.get(id(tensor))
                tensor.copy_(saved) if saved is not None else tensor.zero_()
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state(self.cuda_rng)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> Iterator[torch.Tensor]:
    for state in optimizer.state.values():
        yield from (value for value in state.values() if isinstance(value, torch.Tensor))


class Graph(Protocol):
    def warm_up(self) -> contextlib.AbstractContextManager: ...
    def capture(self, work: Callable[[], tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]: ...
    def replay(self) -> None: ...


class CudaGraph:
    """torch.cuda's capture and replay, warm-up on a side stream as capture requires."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.graph = torch.cuda.CUDAGraph()

    @contextlib.contextmanager
    def warm_up(self) -> Iterator[None]:
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            yield
        torch.cuda.current_stream(self.device).wait_stream(stream)

    def capture(self, work: Callable[[], tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        with torch.cuda.graph(self.graph):
            return work()

    def replay(self) -> None:
        self.graph.replay()


class GraphedStep:
    """A TrainingStep whose full batches replay one captured graph (see the module's notes).

    Built from the first batch of the run; the step's parameters and optimizer are the run's own, so checkpoints,
    evaluation and resuming see no difference.
    """

    def __init__(self, step: TrainingStep, images: torch.Tensor, labels: torch.Tensor,
                 graph: Graph | None = None) -> None:
        self.step = step
        self.graph = graph or CudaGraph(images.device)
        self.images, self.labels = images.clone(), labels.clone()
        make_capturable(step.optimizer, images.device)
        step.train()
        before = TrainingState.save(step.forward, step.optimizer)
        with self.graph.warm_up():
            for _ in range(WARM_UP_STEPS):
                step(self.images, self.labels)
        before.restore()
        self.loss, self.output = self.graph.capture(lambda: step(self.images, self.labels))

    def train(self) -> "GraphedStep":
        self.step.train()
        return self

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape != self.images.shape:
            return self.step(images, labels)
        self.images.copy_(images)
        self.labels.copy_(labels)
        self.graph.replay()
        return self.loss, self.output
