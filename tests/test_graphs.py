"""The CUDA-graph step: on a CPU, with capture and replay stood in for by re-running the captured work, a graphed
step trains exactly as the eager step (warm-up undone, the rate a tensor the schedule fills, the odd last batch
eager); what cannot be captured is said. The graph itself runs only on CUDA (benchmarks/gpu.py runs
these tests there)."""
import json
from dataclasses import replace

import pytest
import torch
from torch import nn

import models
from experiment.configs import config_for
from core.settings import ConfigError
from training import TrainingStep, evaluate, train_epoch
import training.graphs
from main import main
from run_experiments import run_experiment
from training.graphs import GraphedStep, StandInGraph, why_not_graphed
from training.optim import TrainingMethod, exponential_average, sgd
from training.precision import Precision

CPU = torch.device("cpu")


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
        step = GraphedStep(step, images, labels, graph=StandInGraph(model, optimizer))
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
                       torch.zeros(8, dtype=torch.long), graph=StandInGraph(model, optimizer))
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
                        torch.zeros(8, dtype=torch.long), graph=StandInGraph(model, method.optimizer))
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

    class MySGD(torch.optim.SGD):  # a subclass may do host work in step() that a replay would skip
        pass

    mine = MySGD(model.parameters(), lr=0.1)
    assert why_not_graphed(TrainingMethod(mine), TrainingStep(model, mine, step.precision)) == \
        "MySGD has no capturable form"
    hooked = torch.optim.SGD(model.parameters(), lr=0.1)
    hooked.register_step_pre_hook(lambda *args: None)
    assert "step hooks" in why_not_graphed(TrainingMethod(hooked), TrainingStep(model, hooked, step.precision))
    plain = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    cycling = torch.optim.lr_scheduler.OneCycleLR(plain, max_lr=0.1, total_steps=10)  # cycle_momentum=True
    assert "cycles the momentum" in why_not_graphed(TrainingMethod(plain, cycling, step="batch"),
                                                    TrainingStep(model, plain, step.precision))


def test_a_rate_assigned_after_capture_goes_into_the_captured_tensor():
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    step = GraphedStep(TrainingStep(model, optimizer, Precision("fp32", CPU)), torch.zeros(8, 1, 28, 28),
                       torch.zeros(8, dtype=torch.long), graph=StandInGraph(model, optimizer))
    rate = optimizer.param_groups[0]["lr"]
    optimizer.param_groups[0]["lr"] = 0.125  # what a model file's own schedule might do
    step(*batches([8])[0])
    assert optimizer.param_groups[0]["lr"] is rate and rate.item() == 0.125


def test_the_one_cycle_schedule_reads_no_rate_back_once_its_cycle_is_over(monkeypatch):
    """Held at its floor, the schedule never converts the rate tensor to a number: under a CUDA graph each such read
    would wait for the device, every step."""
    model = small_net()
    method = sgd(model, models.get_recipe("model3").with_overrides({"epochs": 2, "cycle_epochs": 1}), 4)
    [rate] = training.graphs.make_capturable(method.optimizer, CPU)
    method.optimizer.step()  # no gradients yet: steps nothing, but the schedule expects a step before its own
    reads = []
    for name in ("__float__", "item"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, original=original: (
            reads.append(1) if self is rate else None, original(self))[1])
    for _ in range(4):  # the cycle
        method.batch_scheduler.step()
    reads.clear()
    for _ in range(6):
        method.batch_scheduler.step()
    monkeypatch.undo()
    assert reads == [] and rate.item() == pytest.approx(method.optimizer.param_groups[0]["min_lr"])


class FailingGraph(StandInGraph):
    """A capture that raises after its work ran, as a CUDA capture can (an operation not allowed while capturing)."""

    def __init__(self, device: torch.device) -> None:
        pass

    def capture(self, work):
        work()
        raise RuntimeError("operation not permitted when stream is capturing\nCUDA kernel errors ...")


def small_config(out, mnist_dir, graphed: bool):
    """A small Model3 run on the CPU; `graphed`: its config asks for a CUDA graph (what `auto` gives on a GPU)."""
    config = config_for("model3", 1, {"epochs": 1}, limit_train=256, limit_test=100, device="cpu", compile="off",
                        out=str(out), data_dir=str(mnist_dir), progress=False)
    return replace(config, execution=replace(config.execution, graphed=graphed))


def test_a_capture_that_fails_leaves_the_run_to_train_eagerly_and_says_so(tmp_path, mnist_dir, monkeypatch):
    eager = run_experiment(small_config(tmp_path / "eager", mnist_dir, graphed=False), quiet=True)
    monkeypatch.setattr(training.graphs, "CudaGraph", FailingGraph)
    record = run_experiment(small_config(tmp_path / "graphed", mnist_dir, graphed=True), quiet=True)
    assert record.status == "completed" and record.graphed is False
    assert record.graph_reason == "capture failed: RuntimeError: operation not permitted when stream is capturing"
    log = (tmp_path / "graphed" / record.run_id / "log.txt").read_text()
    assert ("CUDA graph capture failed (RuntimeError: operation not permitted when stream is capturing): the step "
            "runs eagerly") in log
    assert [e.train_loss for e in record.epochs] == [e.train_loss for e in eager.epochs]  # the state was put back
    assert [e.eval_acc for e in record.epochs] == [e.eval_acc for e in eager.epochs]


def test_a_capture_that_fails_under_cuda_graph_on_is_one_line_and_exit_2(tmp_path, mnist_dir, monkeypatch, capsys):
    from experiment import configs

    monkeypatch.setattr(training.graphs, "CudaGraph", FailingGraph)
    monkeypatch.setattr(configs, "should_graph", lambda setting, *args: True)  # as on a GPU
    code = main(["--models", "model3", "--epochs", "1", "--limit-train", "256", "--limit-test", "100", "--device",
                 "cpu", "--compile", "off", "--cuda-graph", "on", "--data-dir", str(mnist_dir), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("main.py: error: --cuda-graph on: CUDA graph capture failed (RuntimeError: operation not "
                          "permitted when stream is capturing); use --cuda-graph off")
    [record] = [json.loads(path.read_text()) for path in tmp_path.glob("*/metrics.json")]
    assert record["status"] == "failed" and "CUDA graph capture failed" in record["reason"] and not record["epochs"]


def test_cpu_runs_are_not_graphed_and_asking_for_a_graph_there_is_an_error(tmp_path):
    config = config_for("model3", 1, limit_train=256, device="cpu", out=str(tmp_path))
    assert not config.execution.graphed
    with pytest.raises(ConfigError, match="--cuda-graph on: it needs CUDA; use --cuda-graph off"):
        config_for("model3", 1, limit_train=256, device="cpu", cuda_graph="on", out=str(tmp_path))
    assert models.available()  # the registry is untouched by the checks


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the real graph (benchmarks/gpu.py runs this)")
def test_on_cuda_the_graphed_step_trains_as_the_eager_step():
    """Both sides fused SGD with the rate a device tensor, on a per-batch one-cycle schedule, dropout on, an odd last
    batch, evaluation between epochs: the graph replays what the eager step does, to float32 rounding (the graph
    may order its kernels otherwise); batch norm counts every batch."""
    cuda = torch.device("cuda")
    recipe = models.get_recipe("model3").with_overrides({"epochs": 2, "cycle_epochs": 1})

    def train(graphed: bool):
        model = small_net().to(cuda)
        method = sgd(model, recipe, batches_per_epoch=4)
        step = TrainingStep(model, method.optimizer, Precision("fp32", cuda))
        if graphed:
            step = GraphedStep(step, torch.zeros(8, 1, 28, 28, device=cuda), torch.zeros(8, dtype=torch.long,
                                                                                       device=cuda))
        else:
            training.graphs.make_capturable(method.optimizer, cuda)
        torch.manual_seed(2)
        torch.cuda.manual_seed(2)
        losses = []
        for data in (batches([8, 8, 8, 5]), batches([8, 8, 8, 3])):
            losses.append(train_epoch(step, [(x.to(cuda), y.to(cuda)) for x, y in data], cuda,
                                      method.batch_scheduler, progress=False).loss)
            evaluate(model, [(x.to(cuda), y.to(cuda)) for x, y in batches([6])], cuda)
        return losses, model.state_dict(), method.lr

    eager, graphed = train(graphed=False), train(graphed=True)
    assert graphed[0] == pytest.approx(eager[0], rel=1e-4) and graphed[2] == pytest.approx(eager[2], rel=1e-6)
    for name, value in eager[1].items():
        assert torch.allclose(graphed[1][name].float(), value.float(), rtol=1e-4, atol=1e-5), name
    assert graphed[1]["1.num_batches_tracked"].item() == eager[1]["1.num_batches_tracked"].item() == 8


class FrozenRateGraph(StandInGraph):
    """A replay that uses the rate of the capture, not the rate now: what a graph that copied the rate would do."""

    def capture(self, work):
        self.frozen = [group["lr"].clone() for group in self.optimizer.param_groups]
        return super().capture(work)

    def replay(self):
        rates = [group["lr"] for group in self.optimizer.param_groups]
        now = [rate.clone() for rate in rates]
        for rate, frozen in zip(rates, self.frozen):
            rate.copy_(frozen)
        super().replay()
        for rate, value in zip(rates, now):
            rate.copy_(value)


class StaleGraph(StandInGraph):
    """A replay that runs nothing new: the outputs and weights stay as they were (a buffer never refreshed)."""

    def replay(self):
        pass


@pytest.mark.parametrize("graph,found", [(FrozenRateGraph, "0.weight after the update differs by up to"),
                                         (StaleGraph, "the loss ")])
def test_a_replay_that_disagrees_with_the_eager_step_is_refused_and_the_state_kept(graph, found):
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    rng = torch.get_rng_state()
    with pytest.raises(training.graphs.ReplayDisagreed, match=found):
        GraphedStep(TrainingStep(model, optimizer, Precision("fp32", CPU)), torch.zeros(8, 1, 28, 28),
                    torch.zeros(8, dtype=torch.long), graph=graph(model, optimizer))
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng) and optimizer.param_groups[0]["lr"] == 0.5  # a float again


def with_graph(graph_class):
    class Stepped(GraphedStep):
        def __init__(self, step, images, labels):
            super().__init__(step, images, labels, graph=graph_class(step.forward, step.optimizer))
    return Stepped


def test_a_run_whose_replay_disagrees_trains_eagerly_and_says_why(tmp_path, mnist_dir, monkeypatch):
    import run_experiments

    eager = run_experiment(small_config(tmp_path / "eager", mnist_dir, graphed=False), quiet=True)
    monkeypatch.setattr(run_experiments, "GraphedStep", with_graph(FrozenRateGraph))
    record = run_experiment(small_config(tmp_path / "frozen", mnist_dir, graphed=True), quiet=True)
    assert record.status == "completed" and record.graphed is False
    assert record.graph_reason.startswith("replay disagreed: ") and "after the update differs by up to" in \
        record.graph_reason
    log = (tmp_path / "frozen" / record.run_id / "log.txt").read_text()
    assert "CUDA graph replay disagreed with the eager step (" in log and "): the step runs eagerly" in log
    assert [e.train_loss for e in record.epochs] == [e.train_loss for e in eager.epochs]  # the state was put back

    monkeypatch.setattr(run_experiments, "GraphedStep", with_graph(StandInGraph))
    agreed = run_experiment(small_config(tmp_path / "agreed", mnist_dir, graphed=True), quiet=True)
    assert agreed.graphed is True and agreed.graph_reason is None
