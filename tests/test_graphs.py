"""The CUDA-graph step: on a CPU, with capture and replay stood in for by re-running the captured work, a graphed
step trains exactly as the eager step (warm-up undone, the rate a tensor the schedule fills, the odd last batch
eager); what cannot be captured is said. The graph itself runs only on CUDA (benchmarks/gpu.sh)."""
import contextlib

import pytest
import torch
from torch import nn

import models
from configs import config_for
from settings import ConfigError
from training import TrainingStep, train_epoch
from training.graphs import GraphedStep, TrainingState, why_not_graphed
from training.optim import TrainingMethod, exponential_average, sgd
from training.precision import Precision

CPU = torch.device("cpu")


class RerunGraph:
    """Capture records the work and leaves the model as it was, as a CUDA graph capture does (it runs nothing);
    replay runs the work again and writes its results into the captured outputs."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.module, self.optimizer = module, optimizer

    def warm_up(self):
        return contextlib.nullcontext()

    def capture(self, work):
        before = TrainingState.save(self.module, self.optimizer)
        self.work, self.outputs = work, work()
        before.restore()
        return self.outputs

    def replay(self) -> None:
        results = self.work()
        with torch.no_grad():
            for captured, new in zip(self.outputs, results):
                captured.copy_(new)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(),
                         nn.Linear(4 * 26 * 26, 10), nn.LogSoftmax(dim=1))


def batches(sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(n, 1, 28, 28, generator=generator), torch.randint(0, 10, (n,), generator=generator))
            for n in sizes]


def train(graphed: bool) -> tuple[list[float], dict[str, torch.Tensor]]:
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)  # rates exact in float32
    step = TrainingStep(model, optimizer, Precision("fp32", CPU), label_smoothing=0.1)
    if graphed:
        images, labels = torch.zeros(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)
        step = GraphedStep(step, images, labels, graph=RerunGraph(model, optimizer))
    torch.manual_seed(2)  # the dropout draws
    losses = []
    for data in (batches([8, 8, 8, 5]), batches([8, 8, 3])):
        losses.append(train_epoch(step, data, CPU, scheduler, progress=False).loss)
    return losses, {name: value.clone() for name, value in model.state_dict().items()}


def test_a_graphed_step_trains_exactly_as_the_eager_step():
    eager_losses, eager_weights = train(graphed=False)
    graphed_losses, graphed_weights = train(graphed=True)
    assert graphed_losses == eager_losses
    assert all(torch.equal(eager_weights[name], graphed_weights[name]) for name in eager_weights)


def test_the_graphed_rate_is_a_tensor_the_schedule_fills_in_place():
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    step = GraphedStep(TrainingStep(model, optimizer, Precision("fp32", CPU)), torch.zeros(8, 1, 28, 28),
                       torch.zeros(8, dtype=torch.long), graph=RerunGraph(model, optimizer))
    rate = optimizer.param_groups[0]["lr"]
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] is rate and rate.item() == 0.25
    assert TrainingMethod(optimizer, scheduler).lr == 0.25
    assert step.loss.shape == () and step.output.shape == (8, 10)


def test_the_one_cycle_schedule_fills_the_graphed_rate_in_place_every_batch_and_holds_its_floor():
    """Model3's one-cycle recipe, its cycle 12 batches here, stepped 14 times: the graphed step's rate tensor is the
    one the schedule fills, and it takes the eager schedule's rates (rounded to float32), the floor held at the end."""
    recipe = models.get_recipe("model3").with_overrides({"epochs": 2})

    def rates(graphed: bool) -> list[float]:
        model = small_net()
        method = sgd(model, recipe, batches_per_epoch=6)
        if graphed:
            GraphedStep(TrainingStep(model, method.optimizer, Precision("fp32", CPU)), torch.zeros(8, 1, 28, 28),
                        torch.zeros(8, dtype=torch.long), graph=RerunGraph(model, method.optimizer))
        rate, seen = method.optimizer.param_groups[0]["lr"], []
        for _ in range(14):
            seen.append(method.lr)
            method.optimizer.step()
            method.batch_scheduler.step()
        assert not graphed or method.optimizer.param_groups[0]["lr"] is rate
        return seen

    eager, graphed = rates(graphed=False), rates(graphed=True)
    assert graphed == pytest.approx(eager, rel=1e-6) and len(set(eager)) > 10
    assert eager[-3:] == pytest.approx([recipe.lr * recipe.floor] * 3)


def test_what_cannot_be_captured_is_named():
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = TrainingStep(model, optimizer, Precision("fp32", CPU))
    assert why_not_graphed(TrainingMethod(optimizer), step) is None
    averaged = TrainingMethod(optimizer, average=exponential_average(model, optimizer, 0.9))
    assert why_not_graphed(averaged, step) == "the method keeps an average of the weights"
    lbfgs = torch.optim.LBFGS(model.parameters())
    assert why_not_graphed(TrainingMethod(lbfgs), TrainingStep(model, lbfgs, step.precision)) == \
        "LBFGS has no capturable form"


def test_cpu_runs_are_not_graphed_and_asking_for_a_graph_there_is_an_error(tmp_path):
    config = config_for("model3", 1, limit_train=256, device="cpu", out=str(tmp_path))
    assert not config.execution.graphed
    with pytest.raises(ConfigError, match="--cuda-graph on: it needs CUDA; use --cuda-graph off"):
        config_for("model3", 1, limit_train=256, device="cpu", cuda_graph="on", out=str(tmp_path))
    assert models.available()  # the registry is untouched by the checks
