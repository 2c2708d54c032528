"""Training methods: the one-cycle schedule's rate per batch; the moving average of the weights is what is evaluated
and kept when a recipe asks for it; label smoothing changes the training loss and nothing else; the clean epochs
at the end train on the images as they are."""
import pytest
import torch

import models
from experiment.configs import config_for
from data.loaders import make_loaders
from run_experiments import run_experiment
from core.settings import SGDRecipe
from training import evaluate
from training.loops import training_loss
from training.checkpoint import load_state
from training.optim import exponential_average, sgd
from tests.conftest import loader_config


def test_the_average_follows_each_step_with_its_decay():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    average = exponential_average(model, optimizer, decay=0.75)
    after = []
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(8, 3)).pow(2).sum().backward()
        optimizer.step()
        after.append({name: value.detach().clone() for name, value in model.state_dict().items()})
    # the first step's weights are taken as they are; then average <- 0.75 average + 0.25 weights
    kept = average.module.state_dict()
    for name in ("0.weight", "0.bias", "1.weight", "1.bias"):
        expected = 0.75 * after[0][name] + 0.25 * after[1][name]
        assert torch.allclose(kept[name], expected), name
        assert not torch.allclose(kept[name], after[1][name]), name
    # batch norm's statistics are not averaged: the model's are copied until they are recomputed for the averaged
    # weights (test_distillation.py)
    for name in ("1.running_mean", "1.running_var"):
        assert torch.equal(kept[name], after[1][name]), name


@pytest.mark.parametrize("warmup", [0.25, 0.5])
def test_one_cycle_rises_to_lr_over_the_warmup_then_falls_to_nearly_0_with_the_momentum_fixed(warmup):
    recipe = models.get_recipe("model3").with_overrides({"schedule": "one-cycle", "warmup": warmup, "epochs": 4,
                                                          "cycle_epochs": 0, "floor": 1e-5})  # the cycle: the run
    method = sgd(models.get_model("model3"), recipe, batches_per_epoch=10)
    assert method.step == "batch" and method.epoch_scheduler is None
    rates, momenta = [], []
    for _ in range(40):
        rates.append(method.lr)
        momenta.append(method.optimizer.param_groups[0]["momentum"])
        method.optimizer.step()
        method.batch_scheduler.step()
    peak = rates.index(max(rates))
    assert peak == round(40 * warmup) - 1 and rates[peak] == pytest.approx(recipe.lr, rel=1e-2)
    assert rates[0] == pytest.approx(recipe.lr / 25)
    assert all(a < b for a, b in zip(rates[:peak], rates[1:peak + 1]))
    assert all(a > b for a, b in zip(rates[peak:], rates[peak + 1:]))
    assert rates[-1] < recipe.lr / 1000
    assert set(momenta) == {recipe.momentum}


@pytest.mark.parametrize("steps, warmup", [(4, 0.25), (2, 0.5), (10, 0.1), (1, 0.25)])
def test_one_cycle_over_a_few_steps_with_a_one_step_warmup_trains(steps, warmup):
    """A short run (one epoch of a few batches) whose warmup is a single step: OneCycleLR alone divides by zero."""
    recipe = models.get_recipe("model3").with_overrides({"schedule": "one-cycle", "warmup": warmup, "epochs": 1})
    method = sgd(models.get_model("model3"), recipe, batches_per_epoch=steps)
    rates = []
    for _ in range(steps):
        rates.append(method.lr)
        method.optimizer.step()
        method.batch_scheduler.step()
    assert all(0 < rate <= recipe.lr for rate in rates)
    if steps > 1:
        assert max(rates) == pytest.approx(recipe.lr)


@pytest.mark.parametrize("cycle_epochs, cycle_steps", [(3, 30), (9, 40)])  # a cycle longer than the run: the run
def test_one_cycle_ends_at_its_floor_and_holds_it_after_a_shorter_cycle(cycle_epochs, cycle_steps):
    recipe = models.get_recipe("model3").with_overrides({"schedule": "one-cycle", "epochs": 4,
                                                          "cycle_epochs": cycle_epochs, "floor": 0.01})
    method = sgd(models.get_model("model3"), recipe, batches_per_epoch=10)
    rates = []  # the rate of each step, and after the run's 40
    for _ in range(41):
        rates.append(method.lr)
        method.optimizer.step()
        method.batch_scheduler.step()
    assert rates[cycle_steps - 2] > recipe.lr * 0.01
    assert rates[cycle_steps - 1:] == pytest.approx([recipe.lr * 0.01] * (42 - cycle_steps))


def test_step_lr_is_the_default_schedule_stepped_per_epoch():
    recipe = SGDRecipe(epochs=4, batch_size=8, lr=0.1, momentum=0.9, step_size=1, gamma=0.5, augment=False)
    method = sgd(models.get_model("model3"), recipe, batches_per_epoch=10)
    assert recipe.schedule == "step" and method.batch_scheduler is None
    assert isinstance(method.epoch_scheduler, torch.optim.lr_scheduler.StepLR)


def test_sgd_keeps_an_average_only_when_the_recipe_asks():
    model = models.get_model("model3")
    recipe = models.get_recipe("model3")
    plain = sgd(model, recipe.with_overrides({"ema_decay": 0.0}), 10)
    averaged = sgd(model, recipe.with_overrides({"ema_decay": 0.99}), 10)
    assert plain.average is None and plain.evaluated(model) is model
    assert averaged.evaluated(model) is averaged.average.module and averaged.evaluated(model) is not model


def test_the_averaged_weights_are_evaluated_and_saved(mnist_dir, tmp_path):
    config = config_for("model3", 1, {"epochs": 2, "ema_decay": 0.9}, limit_train=1024, limit_test=500,
                        device="cpu", data_dir=str(mnist_dir), out=str(tmp_path), progress=False)
    record = run_experiment(config, quiet=True)
    [folder] = list(tmp_path.glob("*-model3-seed1"))
    state = load_state(folder)
    averaged = {name.removeprefix("module."): value for name, value in state.average.items() if name != "n_averaged"}
    best = torch.load(folder / "best.pt", weights_only=True)
    assert set(best) == set(state.model) == set(averaged)
    assert any(not torch.equal(state.model[name], averaged[name]) for name in averaged)  # two different networks
    if record.best_epoch == 1:  # the last epoch was the best: its checkpoint is the average, not the weights
        assert all(torch.equal(best[name], averaged[name]) for name in best)
    model = models.get_model("model3")
    model.load_state_dict(best)
    _, evaluation = make_loaders(mnist_dir, loader_config(64, 128, False, limit_train=1024, limit_test=500),
                                 torch.device("cpu"))
    assert evaluate(model, evaluation, torch.device("cpu")).accuracy == record.best_eval_acc


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_label_smoothing_is_the_nll_against_smoothed_targets(smoothing):
    torch.manual_seed(0)
    log_probabilities = torch.log_softmax(torch.randn(6, 10), dim=1)
    labels = torch.tensor([0, 3, 9, 9, 1, 5])
    targets = torch.full((6, 10), smoothing / 10).scatter(1, labels[:, None], 1 - smoothing + smoothing / 10)
    expected = -(targets * log_probabilities).sum(dim=1).mean()
    assert torch.allclose(training_loss(log_probabilities, labels, smoothing), expected)


def test_sgd_passes_label_smoothing_to_the_loop(mnist_dir, tmp_path):
    model, recipe = models.get_model("model3"), models.get_recipe("model3")
    assert sgd(model, recipe, 10).label_smoothing == 0
    assert sgd(model, recipe.with_overrides({"label_smoothing": "0.1"}), 10).label_smoothing == 0.1
    runs = {}
    for smoothing in (0.0, 0.2):
        config = config_for("model3", 1, {"epochs": 1, "label_smoothing": smoothing}, limit_train=512,
                            limit_test=256, device="cpu", data_dir=str(mnist_dir), out=str(tmp_path / str(smoothing)),
                            progress=False)
        runs[smoothing] = run_experiment(config, quiet=True).epochs[0]
    # the same draws and the same first batch, a different loss: training goes another way
    assert runs[0.0].train_loss != runs[0.2].train_loss


def test_clean_epochs_train_the_last_epochs_on_the_images_as_they_are(mnist_dir, tmp_path):
    def epochs(name, **recipe):
        config = config_for("model3", 1, {"epochs": 2, **recipe}, limit_train=512, limit_test=256, device="cpu",
                            data_dir=str(mnist_dir), out=str(tmp_path / name), progress=False)
        return [(e.train_loss, e.eval_acc) for e in run_experiment(config, quiet=True).epochs]

    augmented, plain = epochs("augmented", augment=True, clean_epochs=0), epochs("plain", augment=False)
    last_clean = epochs("last-clean", augment=True, clean_epochs=1)
    assert last_clean[0] == augmented[0] and last_clean[1] != augmented[1]
    assert epochs("all-clean", augment=True, clean_epochs=2) == plain  # the same draws, no augmentation
    first, second = next((tmp_path / "last-clean").glob("*/log.txt")).read_text().split("EPOCH: 1")
    assert "images as they are" not in first and "images as they are" in second
