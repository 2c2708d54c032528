"""A teacher in a recipe, and the average of the weights with batch-norm statistics recomputed for it: tiny models,
small data."""
import json

import pytest
import torch
from torch import nn

import models
from experiment.configs import config_for, teacher_config
from commands.planning import run_experiments
from run_experiments import finished_teacher, run_experiment
from core.settings import ConfigError
from training.checkpoint import save_best, save_state
from training.distillation import Teacher, load_final_weights, softened_loss
from training.loops import TrainingStep
from training.optim import exponential_average, recompute_statistics, sgd
from training.precision import Precision
from tests.conftest import main_cli

CPU = torch.device("cpu")
SMALL = {"device": "cpu", "compile": "off", "limit_train": 256, "limit_test": 100, "progress": False}


def tiny_step(teacher: Teacher | None, seed: int = 0) -> tuple[TrainingStep, nn.Module]:
    torch.manual_seed(seed)
    student = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.LogSoftmax(dim=1))
    optimizer = torch.optim.SGD(student.parameters(), lr=0.0)
    return TrainingStep(student, optimizer, Precision("fp32", CPU), teacher=teacher), student


def frozen(logits: torch.Tensor) -> nn.Module:
    """A teacher that answers every batch with these log-probabilities."""
    class Fixed(nn.Module):
        def forward(self, images):
            return torch.log_softmax(logits.expand(len(images), -1), dim=1)
    return Fixed().eval()


def test_the_students_loss_moves_with_the_teachers_outputs():
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    plain, student = tiny_step(None)
    label_loss, output = plain(images, labels)
    confident, unsure = torch.zeros(10), torch.zeros(10)
    confident[3] = 8.0
    losses = []
    for logits in (confident, unsure):
        step, _ = tiny_step(Teacher(frozen(logits), temperature=4.0, share=0.5))
        loss, _ = step(images, labels)
        losses.append(loss.item())
        teacher_output = frozen(logits)(images)
        expected = 0.5 * label_loss + 0.5 * softened_loss(output, teacher_output, 4.0)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert losses[0] != pytest.approx(losses[1], rel=1e-3)
    # a teacher that says what the student says adds nothing but the labels' share
    assert softened_loss(output, output, 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_the_teachers_final_weights_are_loaded_not_best_pt(tmp_path):
    final, best = nn.Linear(4, 2), nn.Linear(4, 2)
    with torch.no_grad():
        final.weight.fill_(1.0)
        best.weight.fill_(-1.0)
    method = sgd(final, models.get_recipe("model4"), batches_per_epoch=1)
    save_best(best, tmp_path)
    save_state(tmp_path, 14, final, method, [], [])
    loaded = load_final_weights(nn.Linear(4, 2), tmp_path, CPU)
    assert torch.equal(loaded.weight, final.weight) and not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    # a teacher whose method kept an average: what it evaluated, the averaged weights
    averaged = sgd(final, models.get_recipe("model4").with_overrides({"ema_decay": 0.5}), batches_per_epoch=1)
    with torch.no_grad():
        averaged.average.module.weight.fill_(0.25)
    save_state(tmp_path, 14, final, averaged, [], [])
    assert torch.equal(load_final_weights(nn.Linear(4, 2), tmp_path, CPU).weight, torch.full((2, 4), 0.25))


def test_a_teacher_is_named_as_a_model_and_recipe_and_checked_before_training(tmp_path):
    config = config_for("model5", 1, {"teacher": "model4:step"}, validation=True, out=str(tmp_path), **SMALL)
    teacher = teacher_config(config)
    assert (teacher.model, teacher.recipe_name, teacher.seed, teacher.validation, teacher.limit_train) == \
        ("model4", "step", 1, True, 256)
    assert teacher.recipe == models.get_recipe("model4", "step")  # the student's recipe flags are not the teacher's
    for bad, message in (("resnet", "--teacher resnet: unknown model 'resnet'"),
                         ("model4:fancy", "--teacher model4:fancy: model4 has no recipe 'fancy'")):
        with pytest.raises(ConfigError, match=message):
            config_for("model5", 1, {"teacher": bad}, **SMALL)
    done = main_cli("--models", "model5", "--teacher", "resnet", "--out", str(tmp_path / "none"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--teacher resnet: unknown model" in done.stderr


def test_a_student_trains_its_teacher_first_and_never_uses_one_of_another_split_or_size(tmp_path, mnist_dir):
    """The teacher's run is its own record; the student's names it and counts its time. A teacher trained on other
    images (another split, other image limits) is not the student's teacher: its own is trained."""
    def student(**settings):
        return config_for("model5", 1, {"epochs": 1, "teacher": "model4"}, data_dir=str(mnist_dir),
                          out=str(tmp_path), **(SMALL | settings))

    trained = {r.model: r for r in run_experiments([student()])}
    teacher, record = trained["model4"], trained["model5"]
    assert (teacher.split, teacher.config["limit_train"], teacher.status) == ("test", 256, "completed")
    assert record.teacher_run == str(tmp_path / teacher.run_id) and record.teacher_seconds == teacher.total_seconds
    assert record.total_seconds == record.seconds + teacher.total_seconds
    assert finished_teacher(student())[1].run_id == teacher.run_id
    assert finished_teacher(student(validation=True)) is None  # another split: its own teacher would be trained
    assert finished_teacher(student(limit_train=320)) is None  # other image limits: likewise
    again = run_experiments([student()])  # a finished teacher is found, not trained again
    assert [r.model for r in again] == ["model5"] and again[0].teacher_run == record.teacher_run


def test_a_resumed_student_gives_the_same_metrics(tmp_path, mnist_dir):
    def student(out):
        return config_for("model5", 2, {"epochs": 3, "teacher": "model4"}, data_dir=str(mnist_dir), out=str(out),
                          teachers=str(tmp_path / "teachers"), **SMALL)

    whole = next(r for r in run_experiments([student(tmp_path / "whole")]) if r.model == "model5")

    def stop_after_one(record):
        if len(record.epochs) == 1:
            raise KeyboardInterrupt

    stopped = run_experiment(student(tmp_path / "resumed"), on_epoch=stop_after_one)
    assert stopped.status == "interrupted" and len(stopped.epochs) == 1
    resumed = run_experiment(student(tmp_path / "resumed"), resume=tmp_path / "resumed" / stopped.run_id)
    assert resumed.teacher_run == whole.teacher_run
    same = [(e.train_loss, e.train_acc, e.eval_loss, e.eval_acc) for e in whole.epochs]
    assert [(e.train_loss, e.train_acc, e.eval_loss, e.eval_acc) for e in resumed.epochs] == same


def test_the_average_is_evaluated_with_statistics_recomputed_for_it():
    """After recompute_statistics over one batch, the averaged network in eval mode normalises as it does in train
    mode on that batch: its running statistics are its own, not the trained model's nor an average of them."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    average = exponential_average(model, optimizer, decay=0.5)
    images = torch.randn(64, 1, 28, 28) * 3 + 1
    for _ in range(3):
        optimizer.zero_grad()
        model(images).logsumexp(dim=1).mean().backward()
        optimizer.step()
    generator = torch.Generator().manual_seed(1)
    start = generator.get_state()
    torch.rand(5, generator=generator)
    after = generator.get_state()
    recompute_statistics(average, [(images, None)], [generator], [start], CPU)
    assert torch.equal(generator.get_state(), after)  # the next epoch draws as it would have
    average.eval()
    with torch.no_grad():
        evaluated = average(images)
        average.train()
        in_train_mode = average(images)
    assert torch.allclose(evaluated, in_train_mode, atol=1e-3)
    bn, own = average.module[1], model[1]
    assert not torch.allclose(bn.running_mean, own.running_mean)


def test_an_averaged_run_records_how_its_statistics_were_made(tmp_path, mnist_dir):
    config = config_for("model5", 1, {"epochs": 2, "ema_decay": 0.9}, data_dir=str(mnist_dir), out=str(tmp_path),
                        **SMALL)
    record = run_experiment(config)
    assert record.status == "completed" and record.average_statistics == "recomputed"
    log = (tmp_path / record.run_id / "log.txt").read_text()
    assert log.count("Batch-norm statistics recomputed for the averaged weights over 4 training batches") == 2
    assert json.loads((tmp_path / record.run_id / "metrics.json").read_text())["average_statistics"] == "recomputed"
