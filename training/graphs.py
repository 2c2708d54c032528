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
A method that keeps an average of the weights, fp16's gradient scaler, an optimizer of another type or with
hooks (host code around every update) and a schedule that cycles the momentum cannot be one graph: those runs
step eagerly (`why_not_graphed`). If capture itself fails (a driver, a library, a kernel that cannot be
captured), everything it touched is put back and `CaptureFailed` says why: the run then steps eagerly.
A capture that succeeds is checked before it is used: one replayed step against one eager step from the same
state, on a batch and at a rate other than the capture's (a graph that froze either would replay the capture's);
if they disagree beyond float32's reordering, `ReplayDisagreed` says by how much and the run steps eagerly.
"""
import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import torch

from core.settings import Recipe
from training.loops import TrainingStep
from training.optim import TrainingMethod
from utils import CLASSES

WARM_UP_STEPS = 3  # before capture: libraries pick their kernels and allocate their workspaces on these
# A replayed step may order its float32 sums otherwise than the eager one, and differ by that much; a replay that
# skipped a copy or froze a value differs by orders more.
REPLAY_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
# Exactly these types: a subclass may add host logic to step() that a replay would skip.
CAPTURABLE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
MOMENTUM_CYCLING = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


class CaptureFailed(RuntimeError):
    """Capture raised; the training state is as it was before the attempt."""


class ReplayDisagreed(CaptureFailed):
    """The captured graph's step differs from the eager step; the training state is as it was before capture."""


def one_line(error: BaseException) -> str:
    """An exception as its type and the first line of its message (CUDA's errors run to many lines)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def has_hooks(optimizer: torch.optim.Optimizer) -> bool:
    from torch.optim import optimizer as module

    return any((optimizer._optimizer_step_pre_hooks, optimizer._optimizer_step_post_hooks,
                module._global_optimizer_pre_hooks, module._global_optimizer_post_hooks))


def why_not_graphed_by_settings(device: torch.device, recipe: Recipe, precision: str) -> str | None:
    """Why a run with these settings cannot be one CUDA graph, known before anything is built (so that such a run
    can compile instead), or None; why_not_graphed then checks the method as built."""
    if device.type != "cuda":
        return "it needs CUDA"
    if getattr(recipe, "ema_decay", 0):  # a field of SGD recipes only
        return "the moving average (--ema-decay) updates on the host"
    if precision == "fp16":
        return "fp16 scales the loss on the host"
    if recipe.teacher:
        return "a teacher's forward pass runs beside the step, outside the captured graph"
    return None


def why_not_graphed(method: TrainingMethod, step: TrainingStep) -> str | None:
    """Why this run's step, as built, cannot be one CUDA graph (a model file's own method included), or None."""
    if method.average is not None:
        return "the method keeps an average of the weights"
    if step.precision.scaler is not None:
        return "fp16's gradient scaler"
    if type(method.optimizer) not in CAPTURABLE:
        return f"{type(method.optimizer).__name__} has no capturable form"
    if has_hooks(method.optimizer):
        return "the optimizer has step hooks (host code around every update)"
    if isinstance(method.scheduler, MOMENTUM_CYCLING) and getattr(method.scheduler, "cycle_momentum", False):
        return "the schedule cycles the momentum, which a graph holds fixed"
    return None


@dataclass
class OptimizerSettings:
    """What make_capturable changes in each parameter group, to put back if capture fails."""
    groups: list[dict]

    @classmethod
    def save(cls, optimizer: torch.optim.Optimizer) -> "OptimizerSettings":
        keys = ("lr", "foreach", "fused", "capturable")
        return cls([{key: group[key] for key in keys if key in group} for group in optimizer.param_groups])

    def restore(self, optimizer: torch.optim.Optimizer) -> None:
        for group, saved in zip(optimizer.param_groups, self.groups):
            group.update(saved)


def make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> list[torch.Tensor]:
    """The learning rate as a tensor on `device` (schedulers fill it in place) and an update with no host
    decisions in it: fused SGD, or Adam's capturable form. Returns the rate tensors, one per group."""
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]), device=device)
        if isinstance(optimizer, torch.optim.SGD):
            group["foreach"], group["fused"] = False, device.type == "cuda"
        else:
            group["capturable"] = True
    return [group["lr"] for group in optimizer.param_groups]


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
    def discard(self) -> None: ...


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
        first: BaseException | None = None  # ending a broken capture can raise again and hide the cause
        try:
            with torch.cuda.graph(self.graph):
                try:
                    return work()
                except Exception as error:
                    first = error
                    raise
        except Exception as error:
            raise CaptureFailed(one_line(first or error)) from None

    def replay(self) -> None:
        self.graph.replay()

    def discard(self) -> None:
        """After a failed capture: let the device finish what was queued and free what the graph holds."""
        torch.cuda.synchronize(self.device)
        self.graph.reset()


class StandInGraph:
    """A CPU stand-in for CudaGraph: capture records the work and leaves the training state as it was (a CUDA
    capture runs nothing); replay runs the work again and writes its results into the captured outputs. What the
    tests and the GPU script's dry run use to check everything around the graph without a GPU."""

    def __init__(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.module, self.optimizer = module, optimizer

    def warm_up(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def capture(self, work: Callable[[], tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        before = TrainingState.save(self.module, self.optimizer)
        self.work, self.outputs = work, work()
        before.restore()
        return self.outputs

    def replay(self) -> None:
        results = self.work()
        with torch.no_grad():
            for captured, new in zip(self.outputs, results):
                captured.copy_(new)

    def discard(self) -> None:
        pass


def disagreement(pairs: list[tuple[str, torch.Tensor, torch.Tensor]]) -> str | None:
    """The first (name, replayed, eager) pair that differs beyond REPLAY_TOLERANCE, in words; None if none does."""
    for name, replayed, eager in pairs:
        replayed, eager = replayed.detach().double(), eager.detach().double()
        if not torch.allclose(replayed, eager, **REPLAY_TOLERANCE):
            what = "the loss" if name == "loss" else f"{name} after the update"
            if replayed.numel() == 1:
                return f"{what} {replayed.item():.6g} against {eager.item():.6g}"
            return f"{what} differs by up to {(replayed - eager).abs().max().item():.3g}"
    return None


class GraphedStep:
    """A TrainingStep whose full batches replay one captured graph (see the module's notes), captured on `images`
    and `labels` (blank ones: a loader's batches would advance its random draws).

    The step's parameters and optimizer are the run's own, so checkpoints, evaluation and resuming see no
    difference. If capture raises, the state is put back as it was and CaptureFailed raised.
    """

    def __init__(self, step: TrainingStep, images: torch.Tensor, labels: torch.Tensor,
                 graph: Graph | None = None) -> None:
        self.step = step
        self.graph = graph or CudaGraph(images.device)
        self.images, self.labels = images.clone(), labels.clone()
        settings = OptimizerSettings.save(step.optimizer)
        self.rates = make_capturable(step.optimizer, images.device)
        step.train()
        before = TrainingState.save(step.forward, step.optimizer)
        try:
            with self.graph.warm_up():
                for _ in range(WARM_UP_STEPS):
                    step(self.images, self.labels)
            before.restore()
            self.loss, self.output = self.graph.capture(lambda: step(self.images, self.labels))
            self.check_replay()
        except Exception as error:
            self.graph.discard()
            before.restore()
            settings.restore(step.optimizer)
            raise error if isinstance(error, CaptureFailed) else CaptureFailed(one_line(error)) from None

    def check_replay(self) -> None:
        """One replayed and one eager step from the same state, random state included, on a random batch at half the
        current rate; ReplayDisagreed names the first of the loss, the parameters and the buffers that differ (beyond
        REPLAY_TOLERANCE). The state and the rate are left as they were."""
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(self.images.shape, generator=generator).to(self.images.device)
        labels = torch.randint(0, CLASSES, self.labels.shape, generator=generator).to(self.labels.device)
        module = self.step.forward
        names = [name for name, _ in (*module.named_parameters(), *module.named_buffers())]
        state = TrainingState.save(module, self.step.optimizer)
        rates = [rate.clone() for rate in self.rates]
        try:
            for rate in self.rates:
                rate.mul_(0.5)
            eager_loss = self.step(images, labels)[0].detach().clone()
            eager = [tensor.detach().clone() for tensor in state.tensors]
            state.restore()
            self.images.copy_(images)
            self.labels.copy_(labels)
            self.graph.replay()
            found = disagreement([("loss", self.loss, eager_loss)]
                                 + list(zip(names, state.tensors, eager)))
        finally:
            state.restore()
            for rate, saved in zip(self.rates, rates):
                rate.copy_(saved)
        if found:
            raise ReplayDisagreed(found)

    def train(self) -> "GraphedStep":
        self.step.train()
        return self

    def keep_rates(self) -> None:
        """A rate put in a group since capture (a schedule or model file assigning it) goes into the captured tensor,
        which the graph reads: an identity check per group, and a device-side copy only when one was replaced."""
        for group, rate in zip(self.step.optimizer.param_groups, self.rates):
            if group["lr"] is not rate:
                rate.fill_(group["lr"])
                group["lr"] = rate

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.keep_rates()
        if images.shape != self.images.shape:
            return self.step(images, labels)
        self.images.copy_(images)
        self.labels.copy_(labels)
        self.graph.replay()
        return self.loss, self.output
